// Bounded concurrency for the agent API's costly work (health quotes, write bodies held before verification): a few
// tasks at once, a short FIFO queue, and past that an immediate refusal with the caller's typed error, so a flood
// costs neither TD quoting capacity nor unbounded memory. May import spec/errors (types).
import type { EeError } from "../../spec/errors.ts";

export interface Limits {
  /** Tasks (quotes requested from the provider, bodies read) at once. */
  inFlight: number;
  /** Requests waiting (FIFO) for a slot; past this they are refused at once. */
  waiting: number;
}

// A TD's quoting (TSM → QGS) is slow and shared with the CP link's register/refresh quotes, and the health
// endpoint is public. A few quotes run at once; a short queue absorbs bursts from honest monitors rather than
// failing them; past that the caller is refused at once, so a flood costs neither TD quoting capacity nor
// unbounded memory. Only health quotes go through this limiter: CP-link quotes never wait behind it.
export const HEALTH_QUOTE_LIMITS: Limits = { inFlight: 4, waiting: 16 };
// A write body is held whole until its signature verifies (up to MAX_WRITE_BODY_BYTES, about 6 MiB), and only
// requests whose headers could be signed get that far. Writes come from the CP's operators, rarely and one at a
// time; four at once bound what forged headers can make the agent hold to about 25 MiB, and the fifth is refused
// at once (EE-BUSY) rather than queued with its socket open.
export const BODY_READ_LIMITS: Limits = { inFlight: 4, waiting: 0 };

export interface Limiter {
  /** Runs `task` when a slot is free; throws what `busy` makes when the queue is full. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createLimiter(limits: Limits, busy: () => EeError): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (active < limits.inFlight) active++;
      else if (waiting.length < limits.waiting) await new Promise<void>((resolve) => waiting.push(resolve));
      else throw busy();
      try {
        return await task();
      } finally {
        // Hand the slot straight to the next waiter so `active` never drops below the queue's demand.
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}
