// The dev provider: the shared provider contract, plus its own option checks.
import test from "ava";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { AttestationError } from "../../spec/errors.ts";
import { devSetup } from "./fixtures.ts";
import { providerContract } from "./provider-contract.ts";

providerContract("dev", async (t) => {
  const dev = await devSetup(t);
  return {
    provider: createDevQuoteProvider({ dir: dev.dir }),
    verify: (quote) => verifyQuote(quote, { trust: dev.trust }),
  };
});

const badOptions: [string, object][] = [
  ["an uppercase MRTD", { mrtd: "AB".repeat(48) }],
  ["a short MRTD", { mrtd: "ab".repeat(47) }],
  ["an MRTD with 0x", { mrtd: `0x${"ab".repeat(47)}` }],
  ["three RTMRs", { rtmr: ["00".repeat(48), "00".repeat(48), "00".repeat(48)] }],
  ["a malformed RTMR", { rtmr: ["00".repeat(48), "00".repeat(48), "zz".repeat(48), "00".repeat(48)] }],
];

for (const [what, options] of badOptions) {
  test(`refuses ${what} with EE-ATT-PROVIDER`, async (t) => {
    const dev = await devSetup(t);
    const err = t.throws(() => createDevQuoteProvider({ dir: dev.dir, ...options }), {
      instanceOf: AttestationError,
    });
    t.is(err?.code, "EE-ATT-PROVIDER");
  });
}

test("refuses a directory without a dev PKI with EE-CONFIG-INVALID naming dev-init", (t) => {
  const err = t.throws(() => createDevQuoteProvider({ dir: "/nonexistent/ee-dev" }));
  t.like(err, { code: "EE-CONFIG-INVALID" });
  t.regex(err?.message ?? "", /attest dev-init/);
});
