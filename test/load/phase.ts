// The plug-in shape of a benchmark phase: what bench.ts hands a phase and what a phase gives back for the table
// and the JSON line. A phase is a module exporting a Phase and one entry in bench.ts's PHASES.

export interface BenchOptions {
  /** Seconds per throughput measurement. */
  seconds: number;
  /** Simulated agents for the load phases. */
  agents: number;
  /** The simulated agents' heartbeat interval. */
  heartbeatMs: number;
  /** Runs of each command in the cli phase. */
  runs: number;
  /** Progress and notes; stderr, so that stdout stays machine-readable. */
  log(line: string): void;
}

/** One row of the human-readable table. */
export interface Figure {
  label: string;
  value: number | null;
  unit: string;
  /** The JSON key of the figure this one is compared with, if any. */
  baseline?: string;
}

export interface PhaseResult {
  /** Merged into the final JSON object. */
  metrics: Record<string, number | null>;
  /** Keyed by the metric they show. */
  figures: Record<string, Figure>;
  notes: string[];
}

export interface Phase {
  name: string;
  run(opts: BenchOptions): Promise<PhaseResult>;
}
