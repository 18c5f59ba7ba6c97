// The audit chain's arithmetic, pure: how a record is hashed onto its predecessor and how a stored chain is
// checked. hash = SHA-256(prev_hash ‖ canonical JSON of {seq, at, principal, client, action, target, outcome,
// details}), both hashes lowercase hex, the first record's prev_hash 64 zeros. Imports node:crypto and lib/ only.
import { createHash } from "node:crypto";
import type { AuditEntry, AuditRecord } from "../../contract/identity.ts";
import { canonicalJson } from "../../lib/canonical-json.ts";

export type { AuditEntry, AuditRecord } from "../../contract/identity.ts";

export const GENESIS_HASH = "0".repeat(64);

/** The record that follows `last` (the chain's head; none for the first) for `e`, at `at`. */
export function nextRecord(
  last: { seq: number; hash: string } | undefined,
  e: AuditEntry,
  at: number,
): AuditRecord {
  const base = {
    seq: (last?.seq ?? 0) + 1,
    at,
    principal: e.principal,
    client: e.client ?? null,
    action: e.action,
    target: e.target ?? null,
    outcome: e.outcome,
    details: e.details ?? null,
  };
  const prev_hash = last?.hash ?? GENESIS_HASH;
  return { ...base, prev_hash, hash: chainHash(prev_hash, base) };
}

export function chainHash(prevHash: string, r: Omit<AuditRecord, "hash" | "prev_hash">): string {
  const canonical = canonicalJson({
    seq: r.seq,
    at: r.at,
    principal: r.principal,
    client: r.client,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    details: r.details,
  });
  return createHash("sha256").update(prevHash, "utf8").update(canonical, "utf8").digest("hex");
}

export interface ChainCheck {
  ok: boolean;
  records: number;
  /** The first record that was edited, reordered, or (for a removed record) the seq that is missing. */
  first_bad_seq?: number;
  reason?: string;
}

/** Checks records in stored order: consecutive seqs from 1, each linked to and hashed over its predecessor. */
export function verifyChain(records: Iterable<AuditRecord>): ChainCheck {
  let prev = GENESIS_HASH;
  let expected = 1;
  let n = 0;
  for (const r of records) {
    n++;
    const bad = (reason: string): ChainCheck => ({ ok: false, records: n, first_bad_seq: expected, reason });
    if (r.seq !== expected)
      return bad(`expected seq ${expected}, found ${r.seq}: a record was removed or moved`);
    if (r.prev_hash !== prev) return bad(`record ${r.seq} does not link to its predecessor`);
    if (chainHash(prev, r) !== r.hash) return bad(`record ${r.seq} was edited: its hash does not match`);
    prev = r.hash;
    expected++;
  }
  return { ok: true, records: n };
}
