// What an agent's answer quote binds besides the caller's nonce and the agent's key: while a workload runs, its
// compose hash too (purpose `deployed`), so the quote also proves which workload the TD runs. The CP link's
// re-attestation and the HTTP API's health quotes both bind through here, so they cannot drift apart.
// May import attestation/report-data.ts.
import { reportDataFor } from "../attestation/report-data.ts";

export interface QuoteBinding<P extends "refresh" | "health"> {
  purpose: P | "deployed";
  /** The running workload's compose hash (hex) the quote binds; only with purpose `deployed`. */
  compose_hash?: string;
  reportData: Uint8Array;
}

/** Purpose `plain` when no workload runs (`composeHash` undefined), else `deployed` over its compose hash. */
export function bindQuote<P extends "refresh" | "health">(
  plain: P,
  nonce: Uint8Array,
  agentPubkey: Uint8Array,
  composeHash: string | undefined,
): QuoteBinding<P> {
  if (composeHash === undefined)
    return { purpose: plain, reportData: reportDataFor(plain, nonce, agentPubkey) };
  return {
    purpose: "deployed",
    compose_hash: composeHash,
    reportData: reportDataFor("deployed", nonce, agentPubkey, Buffer.from(composeHash, "hex")),
  };
}
