// Timing for the load benchmark: a warmed-up, fixed-duration throughput loop on process.hrtime.bigint.

export interface Rate {
  ops: number;
  seconds: number;
  per_s: number;
}

/** One operation; `i` counts calls, so an op can cycle through a pool of inputs. */
export type Op = (i: number) => void;

// Reading the clock costs about as much as a cheap op, so it is read once per batch.
const BATCH = 64;

// Short runs (the test's 0.2 s) still need long enough a warm-up for V8 to optimise the loop.
const MIN_WARMUP_S = 0.1;

// Slices per measurement in measureInterleaved.
const ROUNDS = 3;

/**
 * Measures several ops in the same run, alternating between them in ROUNDS slices of `seconds / ROUNDS` each, and
 * keeps each op's best slice. On a shared machine a burst of foreign load then lowers one slice, not one op's
 * whole figure, so ratios between the ops stay meaningful.
 */
export function measureInterleaved<T extends Record<string, Op | undefined>>(
  ops: T,
  seconds: number,
): { [K in keyof T]: undefined extends T[K] ? Rate | undefined : Rate } {
  const entries = Object.entries(ops).filter((e): e is [string, Op] => e[1] !== undefined);
  for (const [, op] of entries) runFor(op, Math.max(seconds / 4, MIN_WARMUP_S));
  const best: Record<string, Rate> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, op] of entries) {
      const rate = runFor(op, seconds / ROUNDS);
      const prev = best[name];
      if (prev === undefined || rate.per_s > prev.per_s) best[name] = rate;
    }
  }
  return best as { [K in keyof T]: undefined extends T[K] ? Rate | undefined : Rate };
}

function runFor(op: Op, seconds: number): Rate {
  const budget = BigInt(Math.max(1, Math.round(seconds * 1e9)));
  const start = process.hrtime.bigint();
  let ops = 0;
  let elapsed = 0n;
  do {
    for (let j = 0; j < BATCH; j++) op(ops++);
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  const secs = Number(elapsed) / 1e9;
  return { ops, seconds: secs, per_s: ops / secs };
}

/** The q-quantile (0..1) of samples by nearest rank; null for no samples. */
export function quantile(samples: readonly number[], q: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function round<T extends number | null>(n: T, digits = 0): T {
  if (n === null) return n;
  const f = 10 ** digits;
  return (Math.round(n * f) / f) as T;
}
