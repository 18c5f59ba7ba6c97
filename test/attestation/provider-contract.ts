// The contract every QuoteProvider adapter passes (attestation/providers/provider.ts). Each adapter's test file
// calls providerContract with a factory that makes a provider and the verification a CP configured for it runs.
import test, { type ExecutionContext } from "ava";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { parseQuote } from "../../attestation/quote.ts";
import type { VerifiedQuote } from "../../attestation/verify.ts";
import { AttestationError } from "../../spec/errors.ts";

export interface ProviderUnderTest {
  provider: QuoteProvider;
  /** Verifies a quote from `provider` as a CP that trusts it would. */
  verify(quote: Uint8Array): VerifiedQuote;
}

/** `create` runs once per contract test; `t` is that test, for temp dirs and teardown. */
export function providerContract(
  name: string,
  create: (t: ExecutionContext) => Promise<ProviderUnderTest>,
): void {
  const reportData = (seed: number) => Uint8Array.from({ length: 64 }, (_, i) => (seed * 31 + i) & 0xff);

  test(`${name} provider contract: names itself`, async (t) => {
    const { provider } = await create(t);
    t.regex(provider.name, /^[a-z][a-z0-9-]*$/);
  });

  test(`${name} provider contract: returns a parseable quote whose REPORTDATA is the input`, async (t) => {
    const { provider, verify } = await create(t);
    const input = reportData(1);
    const quote = await provider.getQuote(input);
    t.true(quote instanceof Uint8Array);
    t.deepEqual(parseQuote(quote).body.reportData, input);
    t.deepEqual(verify(quote).reportData, input);
  });

  test(`${name} provider contract: concurrent requests each get their own REPORTDATA`, async (t) => {
    const { provider, verify } = await create(t);
    const inputs = [2, 3, 4, 5].map(reportData);
    const quotes = await Promise.all(inputs.map((input) => provider.getQuote(input)));
    t.deepEqual(
      quotes.map((quote) => verify(quote).reportData),
      inputs,
    );
  });

  test(`${name} provider contract: refuses REPORTDATA that is not 64 bytes with EE-ATT-PROVIDER`, async (t) => {
    const { provider } = await create(t);
    for (const length of [0, 32, 63, 65, 128]) {
      const err = await t.throwsAsync(provider.getQuote(new Uint8Array(length)), {
        instanceOf: AttestationError,
      });
      t.is(err?.code, "EE-ATT-PROVIDER", `length ${length}`);
    }
  });
}
