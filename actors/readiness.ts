// When the CP is ready (`/readyz` 200, deploys accepted): its runtime state must be rebuilt from the agents
// first. With a surviving database, the agents live at the last checkpoint are known and a quorum of them must
// be back; with an empty (new or lost) database nothing is known, so the CP waits for a settle window with no
// new registrations. Either way it never waits longer than maxWaitMs. Pure apart from the injected clock; the
// checkpoint itself lives in actors/store/checkpoint.ts.

export interface ReadinessOptions {
  /** Agents live at the previous run's last checkpoint; null when the database had none (empty or new). */
  knownBefore: ReadonlySet<string> | null;
  /** Fraction of knownBefore that must be back, 0..1. */
  quorum: number;
  /** Empty database: ready once no agent registered for this long. */
  settleMs: number;
  /** Ready regardless after this long, with the reason saying so. */
  maxWaitMs: number;
  startedAt: number;
}

export const READINESS_DEFAULTS = { quorum: 0.5, settleMs: 3000, maxWaitMs: 60_000 };

export interface ReadinessStatus {
  ready: boolean;
  reason: string;
  rule: "quorum" | "settle";
  known_before: number | null;
  back: number;
  needed: number | null;
}

export class Readiness {
  readonly #o: ReadinessOptions;
  readonly #back = new Set<string>();
  /** How many of #back are in knownBefore, counted as they register: status() runs on every deploy. */
  #backKnown = 0;
  #lastRegistrationAt: number;
  #readyAt: number | null = null;
  #reason = "";

  constructor(o: ReadinessOptions) {
    this.#o = o;
    this.#lastRegistrationAt = o.startedAt;
  }

  /** An agent registered (or re-registered) and is live. */
  registered(agentId: string, at: number): void {
    if (!this.#back.has(agentId)) {
      this.#back.add(agentId);
      if (this.#o.knownBefore?.has(agentId)) this.#backKnown++;
    }
    if (this.#readyAt === null) this.#lastRegistrationAt = Math.max(this.#lastRegistrationAt, at);
  }

  /** Evaluates the rule at `now`; once ready, stays ready. */
  status(now: number): ReadinessStatus {
    const known = this.#o.knownBefore;
    const rule = known && known.size > 0 ? "quorum" : "settle";
    const back = this.#backKnown;
    const needed = rule === "quorum" ? Math.max(1, Math.ceil(this.#o.quorum * known!.size)) : null;
    const base = {
      rule,
      known_before: known?.size ?? null,
      back: rule === "quorum" ? back : this.#back.size,
      needed,
    } as const;
    if (this.#readyAt !== null) return { ready: true, reason: this.#reason, ...base };
    const waited = now - this.#o.startedAt;
    if (rule === "quorum" && back >= needed!) {
      return this.#become(
        now,
        `${back} of ${known!.size} agents known before are back (quorum ${needed})`,
        base,
      );
    }
    if (rule === "settle" && now - this.#lastRegistrationAt >= this.#o.settleMs) {
      return this.#become(
        now,
        `no database state to wait for; ${this.#back.size} agent(s) registered, none new for ${this.#o.settleMs} ms`,
        base,
      );
    }
    if (waited >= this.#o.maxWaitMs) {
      return this.#become(
        now,
        `serving after ${this.#o.maxWaitMs} ms without reaching the readiness rule`,
        base,
      );
    }
    const reason =
      rule === "quorum"
        ? `waiting for agents to reconnect: ${back} of ${known!.size} known before are back, ${needed} needed`
        : `rebuilding runtime state from agents: settle window of ${this.#o.settleMs} ms with no new registrations`;
    return { ready: false, reason, ...base };
  }

  #become(now: number, reason: string, base: Omit<ReadinessStatus, "ready" | "reason">): ReadinessStatus {
    this.#readyAt = now;
    this.#reason = reason;
    return { ready: true, reason, ...base };
  }
}
