// Single use of OIDC tokens: a token's jti is remembered until the token could no longer be accepted anyway
// (its exp, or iat + the maximum age, whichever is first, plus the clock tolerance), so a replay is refused for
// as long as the token would verify. `ReplayStore` is the seam for a durable store (the business DB); the
// in-memory one here is bounded: when full of unexpired jtis it refuses new tokens rather than forget one early,
// which would reopen a replay window. identity/ may import jose, node:*, lib/ and spec/ only.
import { DueQueue } from "../lib/due-queue.ts";
import { OidcError } from "../spec/errors.ts";

export interface ReplayStore {
  /**
   * Records `jti` until `until` (ms epoch) and answers true, or answers false when it is already recorded (a
   * replay). Atomic: of two concurrent calls with one jti, one gets true. Throws EE-OIDC-REPLAY-FULL when it
   * cannot record more.
   */
  remember(jti: string, until: number, now: number): boolean | Promise<boolean>;
}

export const DEFAULT_REPLAY_CAPACITY = 100_000;

export class MemoryReplayStore implements ReplayStore {
  readonly #until = new DueQueue<string>();
  #size = 0;
  readonly #capacity: number;

  constructor(capacity = DEFAULT_REPLAY_CAPACITY) {
    this.#capacity = capacity;
  }

  /** How many jtis are held (expired ones go at the next `remember`). */
  get size(): number {
    return this.#size;
  }

  remember(jti: string, until: number, now: number): boolean {
    for (const _ of this.#until.takeDue(now)) this.#size--;
    if (this.#until.has(jti)) return false;
    if (this.#size >= this.#capacity)
      throw new OidcError(
        "EE-OIDC-REPLAY-FULL",
        `${this.#size} unexpired OIDC tokens are remembered already; retry later`,
      );
    this.#until.schedule(jti, until);
    this.#size++;
    return true;
  }
}

/** Until when a verified token's jti must be remembered: as long as the verifier would still accept it. */
export function replayHorizon(
  claims: { exp: number; iat: number },
  maxTokenAgeS: number,
  clockToleranceS: number,
): number {
  // One second more: the verifier accepts a token at exactly its limit, whose due time takeDue would reach.
  return (Math.min(claims.exp, claims.iat + maxTokenAgeS) + clockToleranceS + 1) * 1000;
}
