// Collateral from a PCCS: a local node:http server serves the real collateral pieces of shared/tdx-quotes the way
// a PCCS does (DER and hex CRLs, URL-encoded issuer chains, signed JSON bodies), and the fetched collateral must
// evaluate exactly like the stored file; then the memory and disk caches, refetch on expiry, fallback when the
// server is down, and byte-exact signed bodies. Skipped, with a notice, where the samples are absent.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { verifyBoundQuote } from "../../actors/registration.ts";
import { evaluateCollateral, parseCollateral } from "../../attestation/collateral.ts";
import { collateralQueryOf } from "../../attestation/collateral-store.ts";
import { PccsCollateralSource, rawJsonMember } from "../../attestation/pccs.ts";
import { DEFAULT_POLICY } from "../../attestation/policy.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { waitFor } from "../helpers/cluster.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";
import { devSetup, SHARED_QUOTES, sharedQuotesAvailable } from "./fixtures.ts";

const available = sharedQuotesAvailable();
if (!available)
  console.log(`real TDX quote samples not found at ${SHARED_QUOTES.pathname}; skipping PCCS tests`);
const maybe = available ? test : test.skip;

const QUOTE = "dcapqvl-tdx_quote_v4.bin";
const COLLATERAL = "collateral/dcapqvl-fmspcB0C06F000000-2025-06.collateral.json";
const CURRENT = new Date("2025-06-20T00:00:00Z");
const EXPIRED = new Date("2025-08-01T00:00:00Z");

interface V3 {
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_crl: string;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
}

const read = (name: string) => readFileSync(new URL(name, SHARED_QUOTES));
const sample = () => {
  const bytes = new Uint8Array(read(QUOTE));
  const text = read(COLLATERAL).toString("utf8");
  const verified = verifyQuote(bytes, { trust: createTrustAnchors(), at: CURRENT });
  return { bytes, verified, text, v3: JSON.parse(text) as V3, query: collateralQueryOf(verified) };
};

interface FakePccs {
  url: string;
  requests: string[];
  /** Replaces the body of the TCB info response. */
  tcbBody?: string;
  failWith?: number;
  /** Each path answers 503 to its first `flaky` requests. */
  flaky?: number;
}

/** Serves one platform's collateral as a PCCS does: PCK CRL as DER, Root CA CRL as hex text. */
async function fakePccs(t: ExecutionContext, v3: V3): Promise<FakePccs> {
  const pccs: FakePccs = { url: "", requests: [] };
  const send = (res: ServerResponse, body: string | Buffer, headers: Record<string, string> = {}) => {
    res.writeHead(200, headers);
    res.end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    pccs.requests.push(`${url.pathname}${url.search}`);
    if (pccs.failWith) {
      res.writeHead(pccs.failWith).end();
      return;
    }
    const path = `${url.pathname}${url.search}`;
    if (pccs.requests.filter((r) => r === path).length <= (pccs.flaky ?? 0)) {
      res.writeHead(503).end();
      return;
    }
    switch (`${url.pathname}${url.search}`) {
      case "/sgx/certification/v4/pckcrl?ca=platform&encoding=der":
        return send(res, Buffer.from(v3.pck_crl, "hex"), {
          "SGX-PCK-CRL-Issuer-Chain": encodeURIComponent(v3.pck_crl_issuer_chain),
        });
      case "/sgx/certification/v4/rootcacrl":
        return send(res, v3.root_ca_crl);
      case "/tdx/certification/v4/tcb?fmspc=b0c06f000000":
        return send(
          res,
          pccs.tcbBody ?? `{"tcbInfo":${v3.tcb_info},"signature":"${v3.tcb_info_signature}"}`,
          {
            "TCB-Info-Issuer-Chain": encodeURIComponent(v3.tcb_info_issuer_chain),
          },
        );
      case "/tdx/certification/v4/qe/identity":
        return send(res, `{"enclaveIdentity":${v3.qe_identity},"signature":"${v3.qe_identity_signature}"}`, {
          "SGX-Enclave-Identity-Issuer-Chain": encodeURIComponent(v3.qe_identity_issuer_chain),
        });
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  pccs.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return pccs;
}

const codeOf = (err: unknown) => (err as { code?: string }).code;

maybe("fetched collateral evaluates exactly like the stored file", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  // A base URL given with the API path and a trailing slash is accepted.
  const source = new PccsCollateralSource({
    url: `${pccs.url}/tdx/certification/v4/`,
    cacheDir: tempDir(t),
  });
  const fetched = await source.forQuote(s.query, CURRENT);
  t.truthy(fetched);
  const viaPccs = evaluateCollateral(s.bytes, s.verified, fetched!, CURRENT);
  const viaFile = evaluateCollateral(s.bytes, s.verified, parseCollateral(s.text), CURRENT);
  t.deepEqual(viaPccs, viaFile);
  t.true(viaPccs.ok);
  t.is(viaPccs.tcb_status, "UpToDate");
  t.is(s.query.pckCa, "platform");
});

maybe("later and concurrent requests for one platform are served by one fetch", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  const source = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
  const all = await Promise.all([1, 2, 3].map(() => source.forQuote(s.query, CURRENT)));
  t.is(pccs.requests.length, 4, "PCK CRL, Root CA CRL, TCB info, QE identity once");
  t.is(all[0], all[2]);
  t.is(await source.forQuote(s.query, CURRENT), all[0]);
  t.is(pccs.requests.length, 4);
});

maybe("a new source reads the disk cache without asking the server", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  const cacheDir = tempDir(t);
  await new PccsCollateralSource({ url: pccs.url, cacheDir }).forQuote(s.query, CURRENT);
  const file = join(cacheDir, "b0c06f000000-platform.collateral.json");
  t.true(existsSync(file));
  t.is(parseCollateral(readFileSync(file, "utf8")).tcbInfoJson, s.v3.tcb_info);
  const offline = new PccsCollateralSource({ url: `http://127.0.0.1:${await closedPort()}`, cacheDir });
  const cached = await offline.forQuote(s.query, CURRENT);
  t.true(evaluateCollateral(s.bytes, s.verified, cached!, CURRENT).ok);
  t.is(pccs.requests.length, 4);
});

maybe("a damaged disk cache file is reported and fetched again", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  const cacheDir = tempDir(t);
  const file = join(cacheDir, "b0c06f000000-platform.collateral.json");
  writeFileSync(file, "{not json");
  const warnings: string[] = [];
  const source = new PccsCollateralSource({ url: pccs.url, cacheDir, warn: (m) => warnings.push(m) });
  const fetched = await source.forQuote(s.query, CURRENT);
  t.true(evaluateCollateral(s.bytes, s.verified, fetched!, CURRENT).ok);
  t.deepEqual(warnings, [`ignoring unreadable collateral cache ${file}`]);
  t.is(pccs.requests.length, 4);
  t.is(parseCollateral(readFileSync(file, "utf8")).tcbInfoJson, s.v3.tcb_info, "the file is replaced");
});

maybe("past the earliest nextUpdate the collateral is fetched again", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  const source = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t), minRefetchMs: 0 });
  await source.forQuote(s.query, CURRENT);
  t.is(pccs.requests.length, 4);
  const later = await source.forQuote(s.query, EXPIRED);
  t.is(pccs.requests.length, 8);
  // The server still has nothing newer: evaluation names the real problem.
  t.is(evaluateCollateral(s.bytes, s.verified, later!, EXPIRED).reason, "EE-ATT-COLLATERAL-EXPIRED");
});

maybe(
  "with the server failing, a cached copy is used; without one the quote's collateral is unavailable",
  async (t) => {
    const s = sample();
    const pccs = await fakePccs(t, s.v3);
    const cacheDir = tempDir(t);
    const source = new PccsCollateralSource({ url: pccs.url, cacheDir, minRefetchMs: 0 });
    const first = await source.forQuote(s.query, CURRENT);
    pccs.failWith = 503;
    t.is(await source.forQuote(s.query, EXPIRED), first);
    t.true(pccs.requests.length > 4, "the refetch was tried");
    const down = `http://127.0.0.1:${await closedPort()}`;
    const restarted = new PccsCollateralSource({ url: down, cacheDir });
    const cached = await restarted.forQuote(s.query, EXPIRED);
    t.is(evaluateCollateral(s.bytes, s.verified, cached!, EXPIRED).reason, "EE-ATT-COLLATERAL-EXPIRED");

    const empty = new PccsCollateralSource({ url: down, cacheDir: tempDir(t) });
    const err = await t.throwsAsync(empty.forQuote(s.query, CURRENT));
    t.is(codeOf(err), "EE-ATT-COLLATERAL-UNAVAILABLE");
    const failing = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
    const http = await t.throwsAsync(failing.forQuote(s.query, CURRENT));
    t.is(codeOf(http), "EE-ATT-COLLATERAL-UNAVAILABLE");
    t.regex(http?.message ?? "", /HTTP 503/);
  },
);

maybe("a PCCS that fails twice then answers is asked again; a third failure or a 4xx is final", async (t) => {
  const s = sample();
  const pccs = await fakePccs(t, s.v3);
  pccs.flaky = 2;
  const source = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
  const fetched = await source.forQuote(s.query, CURRENT);
  t.true(evaluateCollateral(s.bytes, s.verified, fetched!, CURRENT).ok);
  t.is(pccs.requests.length, 12, "each of the 4 GETs: two 503s, then the answer");

  pccs.requests.length = 0;
  pccs.flaky = 3;
  const unlucky = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
  const err = await t.throwsAsync(unlucky.forQuote(s.query, CURRENT));
  t.is(codeOf(err), "EE-ATT-COLLATERAL-UNAVAILABLE");
  t.regex(err?.message ?? "", /HTTP 503 \(3 attempts\)/);
  // The other GETs may still be on their last attempt when the first one gives up.
  const perPath = () => [...new Set(pccs.requests)].map((p) => pccs.requests.filter((r) => r === p).length);
  await waitFor("every GET to make its attempts", () => pccs.requests.length >= 12, 10_000);
  t.deepEqual(perPath(), [3, 3, 3, 3], "3 attempts per GET, no more");

  pccs.requests.length = 0;
  pccs.flaky = 0;
  pccs.failWith = 404;
  const missing = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
  const notFound = await t.throwsAsync(missing.forQuote(s.query, CURRENT));
  t.regex(notFound?.message ?? "", /HTTP 404$/);
  // The first 404 ends forQuote while the other GETs may still be in flight: wait until each was made, then give
  // a retry three times its first delay (200 ms) to show up. Proving an absence takes a wait; a slow machine
  // only makes it more lenient, never flaky.
  await waitFor("every GET to be made", () => new Set(pccs.requests).size === 4, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.deepEqual(perPath(), [1, 1, 1, 1], "a 4xx is not asked again");
});

maybe(
  "registration gets PCCS collateral: checks pass up to the binding, or it is refused as unavailable",
  async (t) => {
    const s = sample();
    const pccs = await fakePccs(t, s.v3);
    const q = {
      quote: s.bytes,
      purpose: "register" as const,
      nonce: new Uint8Array(32),
      pubkey: new Uint8Array(32),
      nodeSize: "tiny",
      at: CURRENT.getTime(),
    };
    const base = { trust: createTrustAnchors(), measurement: DEFAULT_POLICY };
    const up = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
    t.is(
      codeOf(await t.throwsAsync(verifyBoundQuote({ ...base, collateral: up }, q))),
      "EE-ATT-REPORTDATA-MISMATCH",
    );
    const expired = { ...q, at: EXPIRED.getTime() };
    t.is(
      codeOf(await t.throwsAsync(verifyBoundQuote({ ...base, collateral: up }, expired))),
      "EE-ATT-COLLATERAL-EXPIRED",
    );
    const down = new PccsCollateralSource({
      url: `http://127.0.0.1:${await closedPort()}`,
      cacheDir: tempDir(t),
    });
    t.is(
      codeOf(await t.throwsAsync(verifyBoundQuote({ ...base, collateral: down }, q))),
      "EE-ATT-COLLATERAL-UNAVAILABLE",
    );
  },
);

maybe(
  "signed bodies are taken byte for byte: spacing around them is fine, a changed byte inside is not",
  async (t) => {
    const s = sample();
    const pccs = await fakePccs(t, s.v3);
    const evaluate = async () => {
      const source = new PccsCollateralSource({ url: pccs.url, cacheDir: tempDir(t) });
      return evaluateCollateral(s.bytes, s.verified, (await source.forQuote(s.query, CURRENT))!, CURRENT);
    };
    const sig = s.v3.tcb_info_signature;
    pccs.tcbBody = `{\n  "signature" : "${sig}",\n  "tcbInfo" :\t${s.v3.tcb_info}\n}\n`;
    t.true((await evaluate()).checks.tcb_info_signature);
    // Whitespace inside the signed value: a parser that re-serialised the JSON would drop it and still verify.
    pccs.tcbBody = `{"tcbInfo":${s.v3.tcb_info.replace("{", "{ ")},"signature":"${sig}"}`;
    t.is((await evaluate()).reason, "EE-ATT-COLLATERAL-SIGNATURE");
    pccs.tcbBody = `{"tcbInfo":${s.v3.tcb_info.replace('"issueDate":"2025-06-19T10:16:03Z"', '"issueDate":"2025-06-19T10:16:04Z"')},"signature":"${sig}"}`;
    t.not(pccs.tcbBody.indexOf("10:16:04Z"), -1);
    t.is((await evaluate()).reason, "EE-ATT-COLLATERAL-SIGNATURE");
  },
);

test("rawJsonMember returns a member's exact text, skipping strings with braces and escapes", (t) => {
  const text = '{ "a\\"}" : "{", "x" : { "s" : "}\\"{" ,"n":[1, {"b":2}] } , "y":  12 ,"z":null}';
  t.is(rawJsonMember(text, "x"), '{ "s" : "}\\"{" ,"n":[1, {"b":2}] }');
  t.is(rawJsonMember(text, 'a"}'), '"{"');
  t.is(rawJsonMember(text, "y"), "12");
  t.is(rawJsonMember(text, "z"), "null");
  t.is(rawJsonMember(text, "s"), undefined, "only top-level members");
  t.is(rawJsonMember("[1]", "x"), undefined);
  t.throws(() => rawJsonMember('{"x":{},"x":{"y":1}}', "x"), { message: /twice/ });
});

test("a development quote names no Intel PCK CA, so no PCCS is asked about it", async (t) => {
  const dev = await devSetup(t);
  const verified = verifyQuote(await dev.quote(), { trust: dev.trust, at: new Date() });
  t.is(collateralQueryOf(verified).pckCa, null);
  const source = new PccsCollateralSource({
    url: `http://127.0.0.1:${await closedPort()}`,
    cacheDir: tempDir(t),
  });
  t.is(await source.forQuote(collateralQueryOf(verified), new Date()), undefined);
});
