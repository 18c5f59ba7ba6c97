// The quote provider port: what the agent asks for a quote over 64 bytes of REPORTDATA. Adapters: dev (signs
// real-format quotes with a development PCK chain) and tsm (ConfigFS-TSM on a real TD). All adapters pass the
// shared contract suite in test/attestation/provider-contract.ts.

export interface QuoteProvider {
  /** "dev" or "tsm": reported in logs and health so nobody mistakes a dev agent for a real TD. */
  readonly name: string;
  /** Returns the raw quote bytes whose TD report carries `reportData` (exactly 64 bytes). */
  getQuote(reportData: Uint8Array): Promise<Uint8Array>;
}
