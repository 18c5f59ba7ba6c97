// Audit rows and counters for refused agent connections, in aggregate: a flood of refusals (pending caps,
// handshake timeouts, bad frames, gate failures) from one source must not write one event row each. Per source and
// reason, the first refusal in an interval is written at once (a lone refusal is visible while an operator looks
// for it); further ones in the same interval are summed into one `agent.refused` row with their count when the
// interval ends; while a flood goes on, each further interval is that one row (no new first row). Totals by
// reason feed /metrics. Imports the event log's types and lib/source-address.

import { sourceOf } from "../lib/source-address.ts";
import type { ErrorCode } from "../spec/errors.ts";
import type { NewEvent } from "./store/event-log.ts";

export interface RefusalAuditOptions {
  append: (event: NewEvent) => void;
  /** The aggregation interval (CP_DEFAULTS.refusalAuditMs). */
  intervalMs: number;
  /** Sources tracked within one interval; refusals from further sources are summed under source "other". */
  maxSources?: number;
}

interface Tally {
  source: string;
  reason: ErrorCode;
  /** Refusals this interval not yet in a row (the first of a flood has its own). */
  more: number;
  firstAt: number;
  lastAt: number;
}

export class RefusalAudit {
  readonly #o: Required<RefusalAuditOptions>;
  readonly #tallies = new Map<string, Tally>();
  readonly #totals = new Map<ErrorCode, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: RefusalAuditOptions) {
    this.#o = { maxSources: 10_000, ...opts };
  }

  start(): void {
    this.#timer = setInterval(() => this.flush(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Writes what the interval summed; called at stop too, so no count is lost. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.flush();
  }

  refused(connId: number | null, reason: ErrorCode, remote: string | undefined, at = Date.now()): void {
    this.#totals.set(reason, (this.#totals.get(reason) ?? 0) + 1);
    let source = sourceOf(remote);
    if (this.#tallies.size >= this.#o.maxSources && !this.#tallies.has(`${source} ${reason}`))
      source = "other";
    const key = `${source} ${reason}`;
    const tally = this.#tallies.get(key);
    if (tally) {
      if (tally.more === 0) tally.firstAt = at;
      tally.more++;
      tally.lastAt = at;
      return;
    }
    this.#tallies.set(key, { source, reason, more: 0, firstAt: at, lastAt: at });
    this.#o.append({ at, kind: "agent.refused", data: { conn: connId, reason, remote: source, count: 1 } });
  }

  /** Refusals since start by reason code (a Prometheus counter: never reset). */
  totals(): ReadonlyMap<ErrorCode, number> {
    return this.#totals;
  }

  /**
   * One row per source and reason with refusals not yet written; then a new interval starts. A source refused this
   * interval stays known for the next, so a flood that goes on is one row per interval; a quiet one is forgotten.
   */
  flush(): void {
    for (const [key, t] of this.#tallies) {
      if (t.more === 0) {
        this.#tallies.delete(key);
        continue;
      }
      this.#o.append({
        at: t.lastAt,
        kind: "agent.refused",
        data: {
          conn: null,
          reason: t.reason,
          remote: t.source,
          count: t.more,
          first_at: t.firstAt,
          last_at: t.lastAt,
        },
      });
      t.more = 0;
    }
  }
}
