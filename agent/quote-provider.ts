// Picks the quote provider the config names: `dev` (development PCK chain from `eectl attest dev-init`) or
// `tsm` (ConfigFS-TSM on a real TD, at the kernel's default report root). May import attestation/providers/ and
// spec/.
import { createDevQuoteProvider } from "../attestation/providers/dev.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { createTsmQuoteProvider } from "../attestation/providers/tsm.ts";
import type { AttestationConfig } from "./config.ts";

export function quoteProviderFor(att: AttestationConfig): QuoteProvider {
  if (att.provider === "dev") {
    return createDevQuoteProvider(
      att.mrtd === undefined ? { dir: att.dir } : { dir: att.dir, mrtd: att.mrtd },
    );
  }
  // No configfs check here: a missing report root surfaces as EE-ATT-PROVIDER on the first quote, which the
  // agent logs and retries with its connection, so the local API still comes up to say what is wrong.
  return createTsmQuoteProvider();
}
