// Picks the quote provider the config names: `dev` (development PCK chain from `eectl attest dev-init`) or
// `tsm` (ConfigFS-TSM on a real TD, not wired yet). May import attestation/providers/ and spec/.
import { createDevQuoteProvider } from "../attestation/providers/dev.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { ValidationError } from "../spec/errors.ts";
import type { AttestationConfig } from "./config.ts";

export function quoteProviderFor(att: AttestationConfig): QuoteProvider {
  if (att.provider === "dev") {
    return createDevQuoteProvider(
      att.mrtd === undefined ? { dir: att.dir } : { dir: att.dir, mrtd: att.mrtd },
    );
  }
  throw new ValidationError("EE-CONFIG-INVALID", "attestation.provider: tsm provider not available yet", {
    key: "attestation.provider",
  });
}
