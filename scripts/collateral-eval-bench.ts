// `npx tsx scripts/collateral-eval-bench.ts`: what evaluating collateral costs per quote, with the per-collateral
// cache (steady state: the same collateral object for every quote of a platform) and without (a fresh object each
// call, parse included), on a genuine Intel quote from ../shared/tdx-quotes (EE_SHARED_QUOTES overrides the dir).
import { readFileSync } from "node:fs";
import { evaluateCollateral, parseCollateral } from "../attestation/collateral.ts";
import { createTrustAnchors } from "../attestation/trust.ts";
import { verifyQuote } from "../attestation/verify.ts";

const shared = process.env.EE_SHARED_QUOTES ?? new URL("../../shared/tdx-quotes", import.meta.url).pathname;
const q = `${shared}/dcapqvl-near-gas-test_v4`;
const bytes = new Uint8Array(readFileSync(`${q}.bin`));
const text = readFileSync(`${shared}/collateral/dcapqvl-fmspc20a06f000000-2025-09.collateral.json`, "utf8");
const at = new Date("2025-09-15T00:00:00Z");
const trust = createTrustAnchors({});
const v = verifyQuote(bytes, { trust, at });
const time = (label: string, f: () => void, n: number) => {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  console.log(label, (((performance.now() - t0) / n) * 1000).toFixed(0), "µs per call");
};
time(
  "fresh collateral object each call (no cache):",
  () => evaluateCollateral(bytes, v, parseCollateral(text), at),
  200,
);
const c = parseCollateral(text);
evaluateCollateral(bytes, v, c, at);
time("same collateral object (steady state):", () => evaluateCollateral(bytes, v, c, at), 2000);
time("parseCollateral alone:", () => parseCollateral(text), 200);
