// The CP's collateral store and its use at registration: quotes from covered platforms must pass collateral
// checks before their binding is even looked at; the TCB status then feeds the measurement policy.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { verifyBoundQuote } from "../../actors/registration.ts";
import { loadCollateralStore } from "../../attestation/collateral-store.ts";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import { DEFAULT_POLICY, policySchema } from "../../attestation/policy.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { devRoot, tempDir } from "../helpers/cluster.ts";

const SHARED = fileURLToPath(new URL("../../../shared/tdx-quotes/", import.meta.url));
const COLLATERAL = join(SHARED, "collateral");
const shared = existsSync(COLLATERAL);
if (!shared)
  console.log(`notice: ${SHARED} is absent; collateral store tests against real samples are skipped`);
const maybe = shared ? test : test.skip;

const intel = { trust: createTrustAnchors(), measurement: DEFAULT_POLICY };
const nonce = new Uint8Array(32);
const pubkey = new Uint8Array(32);

maybe("a directory is indexed by FMSPC", (t) => {
  const store = loadCollateralStore(COLLATERAL);
  t.true(store.size >= 4);
  t.truthy(store.forFmspc("b0c06f000000"));
  t.truthy(store.forFmspc("B0C06F000000"), "FMSPC case does not matter");
  t.is(store.forFmspc("ee0000000000"), undefined);
  t.is(store.forFmspc(null), undefined);
});

maybe(
  "collateral is checked before the binding: current collateral passes, expired is refused",
  async (t) => {
    const collateral = loadCollateralStore(
      join(COLLATERAL, "dcapqvl-fmspcB0C06F000000-2025-06.collateral.json"),
    );
    const quote = new Uint8Array(readFileSync(join(SHARED, "dcapqvl-tdx_quote_v4.bin")));
    const q = { quote, purpose: "register" as const, nonce, pubkey, nodeSize: "tiny" };
    // Inside the collateral window the quote gets as far as the nonce binding, which a sample cannot carry.
    const current = await t.throwsAsync(
      verifyBoundQuote({ ...intel, collateral }, { ...q, at: Date.parse("2025-06-20T00:00:00Z") }),
    );
    t.is((current as { code?: string }).code, "EE-ATT-REPORTDATA-MISMATCH");
    const expired = await t.throwsAsync(
      verifyBoundQuote({ ...intel, collateral }, { ...q, at: Date.parse("2025-08-01T00:00:00Z") }),
    );
    t.is((expired as { code?: string }).code, "EE-ATT-COLLATERAL-EXPIRED");
  },
);

test("a TCB policy refuses quotes whose platform has no collateral (status unknown)", async (t) => {
  const dir = await devRoot();
  const policy = {
    trust: createTrustAnchors({ devRootPem: loadDevRootPem(dir) }),
    measurement: policySchema.parse({ tcb: { mode: "strict" } }),
    collateral: shared ? loadCollateralStore(COLLATERAL) : undefined,
  };
  const quote = await createDevQuoteProvider({ dir }).getQuote(reportDataFor("register", nonce, pubkey));
  const err = await t.throwsAsync(
    verifyBoundQuote(policy, { quote, purpose: "register", nonce, pubkey, nodeSize: "tiny", at: Date.now() }),
  );
  t.is((err as { code?: string }).code, "EE-ATT-TCB-STATUS");
  await t.notThrowsAsync(
    verifyBoundQuote(
      { ...policy, measurement: DEFAULT_POLICY },
      { quote, purpose: "register", nonce, pubkey, nodeSize: "tiny", at: Date.now() },
    ),
  );
});

test("bad collateral paths and files are config errors naming them", (t) => {
  const dir = tempDir(t);
  t.throws(() => loadCollateralStore(join(dir, "nope")), { message: /nope cannot be read/ });
  const bad = join(dir, "x.collateral.json");
  writeFileSync(bad, "{}");
  t.throws(() => loadCollateralStore(dir), { message: /x\.collateral\.json/ });
});
