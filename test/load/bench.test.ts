// `npm run bench` smoke test: the attest phase run as a child process with short measurements; the last stdout
// line must be the JSON object scripts read, with plausible figures.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function bench(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "test/load/bench.ts", ...args],
      { cwd: REPO },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

test("attest phase prints one JSON object as the last stdout line", async (t) => {
  const { stdout, stderr } = await bench("attest", "--seconds", "0.2", "--agents", "3");
  const last = stdout.trimEnd().split("\n").at(-1) ?? "";
  const out = JSON.parse(last) as Record<string, unknown>;
  for (const key of ["ecdsa_verify_per_s", "quote_verify_per_s"]) {
    t.true(typeof out[key] === "number" && out[key] > 0, `${key} = ${String(out[key])}`);
  }
  const ratio = out.quote_verify_ratio;
  t.true(typeof ratio === "number" && ratio > 0 && ratio < 2, `quote_verify_ratio = ${String(ratio)}`);
  t.is(out.agents, 3);
  t.deepEqual(out.phases, ["attest"]);
  t.true(typeof out.cpus === "number" && typeof out.node === "string");
  t.true(
    out.intel_quote_verify_per_s === null ||
      (typeof out.intel_quote_verify_per_s === "number" && out.intel_quote_verify_per_s > 0),
  );
  // The table goes to stderr so stdout stays machine-readable.
  t.regex(stderr, /ratio to baseline/);
});

test("an unknown phase is a usage error", async (t) => {
  const err = await t.throwsAsync(bench("nope"));
  t.regex(err?.message ?? "", /unknown phase "nope"/);
});
