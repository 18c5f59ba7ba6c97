// `eectl logs AGENT_ID` and `eectl stats AGENT_ID`: the workload's container logs and resource use, read
// through the control plane, which relays them over the agent's WebSocket. `logs -f` streams until Ctrl-C.
import { Command, Option } from "clipanion";
import type { ContainerStats, LogLine } from "../../agent/runtime/runtime.ts";
import type { HostStats } from "../../agent/workload.ts";
import { ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { abortOnSignal } from "../signals.ts";
import { table } from "../table.ts";
import { agentPath } from "./agents.ts";

/** What the agent answers to `stats`, relayed as is by the CP. */
interface StatsJson {
  containers: ContainerStats[];
  host: HostStats;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** --since as ms since the epoch: an ISO 8601 time, or a duration back from `now` such as 90s, 10m, 2h, 1d. */
export function parseSince(value: string, now = Date.now()): number {
  const d = /^(\d{1,9})(ms|s|m|h|d)$/.exec(value);
  if (d) return now - Number(d[1]) * UNIT_MS[d[2]!]!;
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at))
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `--since: expected an ISO 8601 time or a duration like 10m, got "${value}"`,
    );
  return at;
}

export class LogsCommand extends OperatorCommand {
  static override paths = [["logs"]];
  static override usage = Command.Usage({
    category: "Agents",
    description: "Print the logs of the workload running on an agent",
    details: `
      One line per log line: \`TS SERVICE STREAM| TEXT\`, where STREAM is stdout or stderr. With \`-f\` it keeps
      streaming new lines until interrupted (Ctrl-C ends it cleanly with exit 0). With \`--json\`, one JSON
      object per line instead (\`{ts, service, stream, text}\`), with or without \`-f\`.
    `,
    examples: [
      ["The last 100 lines", "eectl logs agt_0123456789abcdef01234567 --tail 100"],
      ["Follow from ten minutes ago", "eectl logs agt_0123456789abcdef01234567 -f --since 10m"],
      ["Since a point in time", "eectl logs agt_0123456789abcdef01234567 --since 2025-01-31T12:00:00Z"],
      ["As JSON lines, for jq", "eectl logs agt_0123456789abcdef01234567 -f --json | jq -r .text"],
    ],
  });
  id = Option.String({ name: "AGENT_ID" });
  follow = Option.Boolean("-f,--follow", false, { description: "Keep streaming new lines until Ctrl-C" });
  tail = Option.String("--tail", { description: "Only the last N lines of each container" });
  since = Option.String("--since", {
    description: "Only lines since an ISO 8601 time or a duration (10m, 2h)",
  });
  asJson = jsonFlag("One JSON object per log line (newline-delimited JSON)");

  async run(): Promise<number> {
    const q = new URLSearchParams();
    // 0 is a valid tail (nothing old, only what follows), so this is not parsePositiveInt.
    if (this.tail !== undefined) {
      if (!/^\d{1,6}$/.test(this.tail))
        throw new ValidationError("EE-CONFIG-INVALID", `--tail: expected a line count, got "${this.tail}"`);
      q.set("tail", this.tail);
    }
    if (this.since !== undefined) q.set("since", String(parseSince(this.since)));
    const client = this.client();
    const base = `${agentPath(this.id)}/logs`;
    if (!this.follow) {
      const { lines } = await client.get<{ lines: LogLine[] }>(`${base}?${q}`);
      for (const l of lines) this.#print(l);
      return 0;
    }
    q.set("follow", "true");
    await abortOnSignal(async (signal) => {
      try {
        for await (const l of await client.ndjson<LogLine>(`${base}?${q}`, signal)) this.#print(l);
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    });
    return 0;
  }

  #print(l: LogLine): void {
    this.context.stdout.write(
      this.asJson ? `${JSON.stringify(l)}\n` : `${l.ts} ${l.service} ${l.stream}| ${l.text}\n`,
    );
  }
}

export class StatsCommand extends OperatorCommand {
  static override paths = [["stats"]];
  static override usage = Command.Usage({
    category: "Agents",
    description: "Show the resource use of an agent's workload containers and of its host",
    examples: [
      ["Table", "eectl stats agt_0123456789abcdef01234567"],
      ["As JSON", "eectl stats agt_0123456789abcdef01234567 --json"],
    ],
  });
  id = Option.String({ name: "AGENT_ID" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const s = await this.client().get<StatsJson>(`${agentPath(this.id)}/stats`);
    this.print(this.asJson, s, statsText);
    return 0;
  }
}

/** `eectl stats` for people: a line for the host, a table row per container. */
function statsText({ host, containers }: StatsJson): string {
  return (
    `host: ${host.cpus} cpus, load ${host.load_avg.map((n) => n.toFixed(2)).join(" ")}, ` +
    `memory ${bytes(host.memory_total_bytes - host.memory_free_bytes)} of ${bytes(host.memory_total_bytes)} used, ` +
    `up ${Math.round(host.uptime_s / 60)} min\n` +
    table(
      ["SERVICE", "CONTAINER", "CPU%", "MEMORY", "LIMIT", "NET RX", "NET TX"],
      containers.map((c) => [
        c.service,
        c.id.slice(0, 12),
        c.cpu_percent.toFixed(1),
        bytes(c.memory_bytes),
        bytes(c.memory_limit_bytes),
        bytes(c.network_rx_bytes),
        bytes(c.network_tx_bytes),
      ]),
    )
  );
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
