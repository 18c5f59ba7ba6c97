// Challenge nonces: 32 random bytes, single use, short TTL, bound to the connection that asked. Remembers
// recently used nonces (bounded) so a replay is refused with its own reason code rather than "unknown".
import { randomBytes } from "node:crypto";
import type { CodeOf } from "../spec/errors.ts";

export interface IssuedNonce {
  nonce: Uint8Array;
  expiresAt: number;
}

export type NonceVerdict = "ok" | CodeOf<"EE-ATT-NONCE-">;

export class NonceBook {
  readonly #ttlMs: number;
  readonly #maxUsed: number;
  readonly #pending = new Map<number, IssuedNonce>();
  // Insertion-ordered, so the oldest entries are evicted first when the cap is reached.
  readonly #used = new Map<string, number>();

  constructor(opts: { ttlMs: number; maxRemembered?: number }) {
    this.#ttlMs = opts.ttlMs;
    this.#maxUsed = opts.maxRemembered ?? 100_000;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** A fresh nonce for connection connId, replacing any it had. */
  issue(connId: number, now: number): IssuedNonce {
    const issued = { nonce: new Uint8Array(randomBytes(32)), expiresAt: now + this.#ttlMs };
    this.#pending.set(connId, issued);
    return issued;
  }

  /** Checks and consumes: the nonce is spent whatever the later checks decide. */
  consume(connId: number, nonce: Uint8Array, now: number): NonceVerdict {
    const key = Buffer.from(nonce).toString("hex");
    const issued = this.#pending.get(connId);
    if (issued && Buffer.from(issued.nonce).equals(nonce)) {
      this.#pending.delete(connId);
      this.#remember(key, now);
      return now > issued.expiresAt ? "EE-ATT-NONCE-EXPIRED" : "ok";
    }
    const usedAt = this.#used.get(key);
    if (usedAt !== undefined) return "EE-ATT-NONCE-REPLAYED";
    return "EE-ATT-NONCE-UNKNOWN";
  }

  /** The connection closed: its unanswered nonce can never be used. */
  forget(connId: number): void {
    const issued = this.#pending.get(connId);
    if (!issued) return;
    this.#pending.delete(connId);
    this.#remember(Buffer.from(issued.nonce).toString("hex"), issued.expiresAt);
  }

  #remember(key: string, at: number): void {
    this.#used.set(key, at);
    if (this.#used.size > this.#maxUsed) {
      const oldest = this.#used.keys().next().value;
      if (oldest !== undefined) this.#used.delete(oldest);
    }
  }
}
