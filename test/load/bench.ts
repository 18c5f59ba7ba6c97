// `npm run bench [-- PHASE... --seconds N --agents N --heartbeat-ms N --runs N]`: the load benchmark's entry
// point; `npm run bench -- federation [--dcs N --dc-agents M --outage-s S]` is opt-in (it needs nats-server). Parses the CLI, runs the chosen phases in order, prints a table on stderr and, as the last line of
// stdout, one JSON object (the keys in /work/shared/CONTRACT.md) so scripts can read the figures without
// parsing the table.
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { attestPhase } from "./attest-phase.ts";
import { cliPhase } from "./cli-phase.ts";
import { FEDERATION_DEFAULTS, federationPhase } from "./federation-phase.ts";
import type { BenchOptions, Figure, Phase } from "./phase.ts";
import { scalePhase } from "./scale-phase.ts";

/** What a run without phase names runs. */
const PHASES: readonly Phase[] = [attestPhase, scalePhase, cliPhase];
/** Run only when named. */
const OPT_IN = ["federation"] as const;
/** Without --agents: small enough that the default run takes about a minute. */
const DEFAULT_AGENTS = 1_000;
const DEFAULT_HEARTBEAT_MS = 5_000;
const DEFAULT_RUNS = 21;

function usage(message: string): never {
  process.stderr.write(
    `bench: ${message}\nusage: bench [${[...PHASES.map((p) => p.name), ...OPT_IN].join("|")}]... [--seconds N] [--agents N] [--heartbeat-ms N] [--runs N] [--dcs N] [--dc-agents N] [--outage-s N]\n`,
  );
  process.exit(2);
}

const OPTIONS = {
  seconds: { type: "string" },
  agents: { type: "string" },
  "heartbeat-ms": { type: "string" },
  runs: { type: "string" },
  dcs: { type: "string" },
  "dc-agents": { type: "string" },
  "outage-s": { type: "string" },
} as const;

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  const n = value === undefined ? fallback : Number(value);
  if (!(Number.isInteger(n) && n > 0)) usage(`--${flag} must be a positive integer`);
  return n;
}

function parseCli(argv: string[]): Omit<BenchOptions, "log"> & { phases: Phase[] } {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  const seconds = values.seconds === undefined ? 3 : Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) usage(`--seconds must be a positive number`);
  const agents = values.agents === undefined ? DEFAULT_AGENTS : Number(values.agents);
  if (!(Number.isInteger(agents) && agents > 0)) usage(`--agents must be a positive integer`);
  const heartbeatMs =
    values["heartbeat-ms"] === undefined ? DEFAULT_HEARTBEAT_MS : Number(values["heartbeat-ms"]);
  if (!(Number.isInteger(heartbeatMs) && heartbeatMs >= 100))
    usage(`--heartbeat-ms must be an integer ≥ 100`);
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!(Number.isInteger(runs) && runs > 0)) usage(`--runs must be a positive integer`);
  const federation = federationPhase({
    ...FEDERATION_DEFAULTS,
    dcs: positiveInt(values.dcs, FEDERATION_DEFAULTS.dcs, "dcs"),
    agentsPerDc: positiveInt(values["dc-agents"], FEDERATION_DEFAULTS.agentsPerDc, "dc-agents"),
    outageS: positiveInt(values["outage-s"], FEDERATION_DEFAULTS.outageS, "outage-s"),
  });
  const phases =
    positionals.length === 0
      ? [...PHASES]
      : positionals.map((name) => {
          const phase = [...PHASES, federation].find((p) => p.name === name);
          if (phase === undefined) usage(`unknown phase "${name}"`);
          return phase;
        });
  return { phases, seconds, agents, heartbeatMs, runs };
}

function formatValue(value: number | null, unit: string): string {
  if (value === null) return "n/a";
  // Small figures (seconds, milliseconds, KB) keep a decimal; rates are whole numbers.
  const digits = Math.abs(value) < 100 ? 1 : 0;
  return `${value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}${unit}`;
}

function table(figures: Record<string, Figure>): string {
  const rows = Object.values(figures).map((f) => {
    const base = f.baseline === undefined ? undefined : figures[f.baseline]?.value;
    const isBaseline = Object.values(figures).some(
      (o) => o.baseline !== undefined && figures[o.baseline] === f,
    );
    const ratio =
      f.value !== null && base
        ? (f.value / base).toFixed(3)
        : f.baseline
          ? "n/a"
          : isBaseline
            ? "1 (baseline)"
            : "";
    return [f.label, formatValue(f.value, f.unit), ratio];
  });
  const all = [["figure", "value", "ratio to baseline"], ...rows];
  const widths = [0, 1, 2].map((c) => Math.max(...all.map((r) => r[c]!.length)));
  return all
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const opts: BenchOptions = {
    seconds: cli.seconds,
    agents: cli.agents,
    heartbeatMs: cli.heartbeatMs,
    runs: cli.runs,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const metrics: Record<string, number | null> = {};
  const figures: Record<string, Figure> = {};
  for (const phase of cli.phases) {
    const result = await phase.run(opts);
    Object.assign(metrics, result.metrics);
    Object.assign(figures, result.figures);
    for (const note of result.notes) opts.log(`note: ${note}`);
  }
  opts.log(`\n${table(figures)}\n`);
  const out = {
    ...metrics,
    agents: cli.agents,
    heartbeat_ms: cli.heartbeatMs,
    phases: cli.phases.map((p) => p.name),
    seconds: cli.seconds,
    cpus: cpus().length,
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
