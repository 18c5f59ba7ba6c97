// REPORTDATA binding: what a quote's 64-byte REPORTDATA must hold so that it proves freshness (the CP's nonce)
// and identity (the agent's key). SHA-512("easyenclave/v1/" + purpose + ":" ‖ nonce ‖ agent_pubkey), and for
// purpose `deployed` also ‖ workload_hash (32 bytes, compose/images.ts): the quote then proves which workload the TD runs.
import { createHash, timingSafeEqual } from "node:crypto";

/** Why a quote was produced; each purpose binds a different prefix so one quote cannot stand in for another. */
export type BindingPurpose = "register" | "refresh" | "health" | "cp-envelope" | "deployed";

export function reportDataFor(
  purpose: BindingPurpose,
  nonce: Uint8Array,
  pubkey: Uint8Array,
  composeHash?: Uint8Array,
): Uint8Array {
  const h = createHash("sha512").update(`easyenclave/v1/${purpose}:`).update(nonce).update(pubkey);
  if (purpose === "deployed") {
    if (composeHash?.length !== 32) throw new TypeError("purpose deployed binds a 32-byte compose hash");
    h.update(composeHash);
  }
  return h.digest();
}

/** Exact, constant-time comparison of a quote's REPORTDATA with the expected binding. */
export function reportDataMatches(actual: Uint8Array, expected: Uint8Array): boolean {
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
