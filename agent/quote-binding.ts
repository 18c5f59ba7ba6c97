// What an agent's answer quote binds besides the caller's nonce and the agent's key: while a workload runs, its
// workload hash too (purpose `deployed`: the compose hash and every image digest, compose/images.ts
// workloadHash), so the quote also proves which workload, down to the image bytes, the TD runs. The CP link's re-attestation and
// the HTTP API's health quotes both bind through here, so they cannot drift apart.
// May import attestation/report-data.ts, compose/images.ts and spec/images.ts (types).
import { reportDataFor } from "../attestation/report-data.ts";
import { workloadHash } from "../compose/images.ts";
import type { ImageRef } from "../spec/images.ts";

export interface QuoteBinding<P extends "refresh" | "health"> {
  purpose: P | "deployed";
  /** The running workload's compose hash (hex); only with purpose `deployed`. */
  compose_hash?: string;
  /** What the quote binds with purpose `deployed`: workloadHash(compose_hash, images), hex. */
  workload_hash?: string;
  reportData: Uint8Array;
}

/** What runs: its compose hash and resolved images. */
export interface RunningWorkload {
  compose_hash: string;
  images: readonly ImageRef[];
}

/** Purpose `plain` when no workload runs (`workload` undefined), else `deployed` over its workload hash. */
export function bindQuote<P extends "refresh" | "health">(
  plain: P,
  nonce: Uint8Array,
  agentPubkey: Uint8Array,
  workload: RunningWorkload | undefined,
): QuoteBinding<P> {
  if (workload === undefined) return { purpose: plain, reportData: reportDataFor(plain, nonce, agentPubkey) };
  const hash = workloadHash(workload.compose_hash, workload.images);
  return {
    purpose: "deployed",
    compose_hash: workload.compose_hash,
    workload_hash: hash,
    reportData: reportDataFor("deployed", nonce, agentPubkey, Buffer.from(hash, "hex")),
  };
}
