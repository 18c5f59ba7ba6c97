// `eectl attest verify` run as a child process (bin/eectl.js), as scripts use it: JSON fields and exit status on
// genuine quotes with and without collateral, a tampered copy, and a dev quote under --root. The shared-quote
// cases are skipped, with a notice, where the samples are absent.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { devSetup, flip, SHARED_QUOTES, sharedQuotesAvailable, tempDir } from "./fixtures.ts";

const EECTL = fileURLToPath(new URL("../../bin/eectl.js", import.meta.url));
const Q = fileURLToPath(SHARED_QUOTES);
const available = sharedQuotesAvailable();
if (!available) console.log(`real TDX quote samples not found at ${Q}; skipping those tests`);
const maybe = available ? test : test.skip;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function eectl(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [EECTL, "attest", "verify", ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const hexOf = /^[0-9a-f]+$/;

/** `--json` for one shared quote, checked at `at` against the collateral of the FMSPC B0C06F000000 platform. */
const withCollateral = (quote: string, at: string) =>
  eectl(
    join(Q, quote),
    "--collateral",
    join(Q, "collateral/dcapqvl-fmspcB0C06F000000-2025-06.collateral.json"),
    "--at",
    at,
    "--json",
  );

maybe("a genuine quote without collateral: ok, exit 0, every field lowercase hex", async (t) => {
  const name = "trustee-tdx_quote_4_v4";
  const json = JSON.parse(readFileSync(join(Q, `${name}.json`), "utf8"));
  const r = await eectl(join(Q, `${name}.bin`), "--at", "2025-01-01T00:00:00Z", "--json");
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.true(out.ok);
  t.is(out.version, 4);
  t.is(out.tee_type, 0x81);
  t.is(out.mrtd, json.td_report_body.mr_td);
  t.deepEqual(
    out.rtmr,
    [0, 1, 2, 3].map((i) => json.td_report_body[`rtmr${i}`]),
  );
  t.is(out.report_data, json.td_report_body.report_data);
  t.is(out.mrseam, json.td_report_body.mr_seam);
  t.is(out.td_attributes, json.td_report_body.td_attributes);
  t.is(out.xfam, json.td_report_body.xfam);
  t.is(out.fmspc, json.pck_info.pck_sgx_extension.fmspc);
  for (const value of [out.mrtd, ...out.rtmr, out.report_data, out.mrseam, out.td_attributes, out.xfam]) {
    t.regex(value, hexOf);
  }
  t.true(Object.values(out.checks).every((v) => v === true));
  t.false("tcb_status" in out);
  t.false("reason" in out);
});

maybe("with collateral: tcb_status UpToDate and collateral checks, exit 0", async (t) => {
  const r = await withCollateral("dcapqvl-tdx_quote_v4.bin", "2025-07-01T00:00:00Z");
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.true(out.ok);
  t.is(out.tcb_status, "UpToDate");
  t.true(out.checks.tcb_info_signature);
  t.true(out.checks.not_revoked);
  t.true(Object.values(out.checks).every((v) => v === true));
});

maybe("with collateral whose TCB level does not match: exit 1, reason EE-ATT-TCB-LEVEL", async (t) => {
  const r = await withCollateral("dcapqvl-tdx-quote-hex_v4.bin", "2025-07-01T00:00:00Z");
  t.is(r.code, 1);
  const out = JSON.parse(r.stdout);
  t.false(out.ok);
  t.is(out.reason, "EE-ATT-TCB-LEVEL");
  t.is(out.tcb_status, "TCBLevelNotSupported");
});

maybe("with collateral checked after it expired: exit 1, reason EE-ATT-COLLATERAL-EXPIRED", async (t) => {
  const r = await withCollateral("dcapqvl-tdx_quote_v4.bin", "2025-09-01T00:00:00Z");
  t.is(r.code, 1);
  t.is(JSON.parse(r.stdout).reason, "EE-ATT-COLLATERAL-EXPIRED");
});

maybe("a tampered copy: exit 1, reason EE-ATT-QUOTE-SIGNATURE, fields still reported", async (t) => {
  const bytes = new Uint8Array(readFileSync(join(Q, "trustee-tdx_quote_5_v5.bin")));
  const file = join(tempDir(t), "tampered.bin");
  writeFileSync(file, flip(bytes, 48 + 6 + 200));
  const r = await eectl(file, "--at", "2025-01-01T00:00:00Z", "--json");
  t.is(r.code, 1);
  const out = JSON.parse(r.stdout);
  t.false(out.ok);
  t.is(out.reason, "EE-ATT-QUOTE-SIGNATURE");
  t.false(out.checks.quote_signature);
  t.true(out.checks.pck_chain);
  t.is(out.version, 5);
});

maybe("without --json: a short human summary", async (t) => {
  const r = await eectl(join(Q, "trustee-tdx_quote_4_v4.bin"), "--at", "2025-01-01T00:00:00Z");
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^OK: TDX quote v4 verified \(root intel\)\n/);
  t.regex(r.stdout, /mrtd/);
});

test("a dev quote fails under the Intel root and verifies with --root", async (t) => {
  const dev = await devSetup(t);
  const file = join(tempDir(t), "dev.bin");
  writeFileSync(file, await dev.quote());
  const refused = await eectl(file, "--json");
  t.is(refused.code, 1);
  t.is(JSON.parse(refused.stdout).reason, "EE-ATT-ROOT-UNTRUSTED");
  const r = await eectl(file, "--root", join(dev.dir, "root-ca.pem"), "--json");
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.true(out.ok);
  t.is(out.root, "dev");
});

test("an unreadable file or a bad --at is a usage error on stderr, exit 1", async (t) => {
  const missing = await eectl(join(tempDir(t), "nope.bin"));
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^eectl: EE-REQ-INVALID: cannot read quote file/);
  const file = join(tempDir(t), "q.bin");
  writeFileSync(file, new Uint8Array(8));
  const badAt = await eectl(file, "--at", "yesterday");
  t.is(badAt.code, 1);
  t.regex(badAt.stderr, /EE-REQ-INVALID: --at/);
});

test("garbage bytes: exit 1, reason EE-ATT-QUOTE-MALFORMED, null fields", async (t) => {
  const file = join(tempDir(t), "garbage.bin");
  writeFileSync(file, new Uint8Array(8));
  const r = await eectl(file, "--json");
  t.is(r.code, 1);
  const out = JSON.parse(r.stdout);
  t.is(out.reason, "EE-ATT-QUOTE-MALFORMED");
  t.is(out.mrtd, null);
  t.false(out.checks.structure);
});
