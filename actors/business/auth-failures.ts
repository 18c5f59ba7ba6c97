// Failed authentication per source address: counted in a fixed window so that a flood costs one audit record
// per source and window (the first failure, then a summary of the rest), not one per request; a source past the
// limit is refused (429 EE-AUTH-THROTTLED with Retry-After) until its window ends. Memory is bounded: at most
// MAX_SOURCES sources are tracked (least recently failing dropped first). Pure apart from the report callback.
import { BoundedCache } from "../../lib/bounded-cache.ts";

export interface AuthFailureOptions {
  windowMs: number;
  /** Failures a source may have within a window; the next request from it is throttled. */
  limit: number;
  /** Writes one aggregated audit record. */
  report: (source: string, count: number, first: boolean, codes: Record<string, number>) => void;
}

interface Window {
  start: number;
  count: number;
  unreported: number;
  codes: Record<string, number>;
}

const MAX_SOURCES = 10_000;

export class AuthFailures {
  readonly #o: AuthFailureOptions;
  readonly #sources = new BoundedCache<string, Window>(MAX_SOURCES);

  constructor(o: AuthFailureOptions) {
    this.#o = o;
  }

  /** Seconds the source must wait, or 0 when it may try. */
  retryAfterS(source: string, now: number): number {
    const w = this.#current(source, now);
    if (!w || w.count < this.#o.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.#o.windowMs - now) / 1000));
  }

  failed(source: string, code: string, now: number): void {
    let w = this.#current(source, now);
    const first = !w;
    if (!w) {
      w = { start: now, count: 0, unreported: 0, codes: {} };
      this.#sources.set(source, w);
    }
    w.count++;
    w.codes[code] = (w.codes[code] ?? 0) + 1;
    if (first) this.#o.report(source, 1, true, { [code]: 1 });
    else w.unreported++;
  }

  /** Reports what ended windows still hold (called by a timer and at shutdown). */
  sweep(now: number, all = false): void {
    for (const [source, w] of [...this.#sources.entries()]) {
      if (!all && now < w.start + this.#o.windowMs) continue;
      this.#settle(source, w);
      this.#sources.delete(source);
    }
  }

  #current(source: string, now: number): Window | undefined {
    const w = this.#sources.get(source);
    if (!w || now < w.start + this.#o.windowMs) return w;
    this.#settle(source, w);
    this.#sources.delete(source);
    return undefined;
  }

  #settle(source: string, w: Window): void {
    if (w.unreported > 0) this.#o.report(source, w.unreported, false, w.codes);
    w.unreported = 0;
  }
}
