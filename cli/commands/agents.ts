// `eectl agents list|show|watch|drain|undrain`: operators inspecting live agent state through the CP's REST API,
// and taking an agent out of placement (a drain) or putting it back.
import { setTimeout as sleep } from "node:timers/promises";
import { Command, Option } from "clipanion";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { RestError } from "../rest-client.ts";
import { abortOnSignal } from "../signals.ts";
import { age, table } from "../table.ts";

interface AgentJson {
  agent_id: string;
  vm_name: string | null;
  node_size: string | null;
  datacenter: string | null;
  state: string;
  connected: boolean;
  last_heartbeat_at: string | null;
  deployment_id: string | null;
  reason: string | null;
  rehydrated: boolean;
  drained?: boolean;
  machine?: { value: unknown; context: unknown };
  [k: string]: unknown;
}

export const agentPath = (id: string) => `/api/v2/agents/${encodeURIComponent(id)}`;

export class AgentsListCommand extends OperatorCommand {
  static override paths = [["agents", "list"]];
  static override usage = Command.Usage({
    description: "List the agents the control plane knows, with their live state",
    examples: [
      ["Table", "eectl agents list --cp http://127.0.0.1:8080 --token $EE_TOKEN"],
      ["Only stale agents as JSON", "eectl agents list --state stale --json"],
    ],
  });
  state = Option.String("--state", { description: "Only agents in this state" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const client = this.client();
    const q = this.state ? `?state=${encodeURIComponent(this.state)}` : "";
    const { agents } = await client.get<{ agents: AgentJson[] }>(`/api/v2/agents${q}`);
    // A federated CP says which dc CP each agent is behind (docs/federation.md).
    const federated = agents.some((a) => typeof a.dc_id === "string");
    this.print(this.asJson, { agents }, () =>
      table(
        [
          "AGENT",
          ...(federated ? ["DC"] : []),
          "VM",
          "SIZE",
          "DATACENTER",
          "STATE",
          "HEARTBEAT",
          "DEPLOYMENT",
          "REASON",
        ],
        agents.map((a) => [
          a.agent_id,
          ...(federated ? [String(a.dc_id ?? "-")] : []),
          a.vm_name ?? "-",
          a.node_size ?? "-",
          a.datacenter ?? "-",
          a.state + (a.rehydrated ? " (rehydrated)" : ""),
          age(a.last_heartbeat_at),
          a.deployment_id ?? "-",
          a.reason ?? "",
        ]),
      ),
    );
    return 0;
  }
}

export class AgentsShowCommand extends OperatorCommand {
  static override paths = [["agents", "show"]];
  static override usage = Command.Usage({
    description: "Show one agent, including its live machine state and context",
    examples: [["Show an agent", "eectl agents show agt_0123456789abcdef01234567"]],
  });
  id = Option.String({ name: "AGENT_ID" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const a = await this.client().get<AgentJson>(agentPath(this.id));
    this.print(this.asJson, a, showText);
    return 0;
  }
}

/** `eectl agents drain ID` and `eectl agents undrain ID`: one command class, two verbs. */
function drainCommand(verb: "drain" | "undrain", description: string, details: string) {
  return class extends OperatorCommand {
    static override paths = [["agents", verb]];
    static override usage = Command.Usage({
      description,
      details,
      examples: [
        [
          `${verb[0]!.toUpperCase()}${verb.slice(1)} an agent`,
          `eectl agents ${verb} agt_0123456789abcdef01234567`,
        ],
        ["The agent as JSON", `eectl agents ${verb} agt_0123456789abcdef01234567 --json`],
      ],
    });
    id = Option.String({ name: "AGENT_ID" });
    asJson = jsonFlag("Print the agent as JSON");

    async run(): Promise<number> {
      const a = await this.client().post<AgentJson>(`${agentPath(this.id)}/${verb}`, {});
      this.print(this.asJson, a, () =>
        a.drained
          ? `agent ${a.agent_id} is drained: it keeps what it runs and gets no new deployment\n`
          : `agent ${a.agent_id} is not drained: placement may choose it again\n`,
      );
      return 0;
    }
  };
}

export const AgentsDrainCommand = drainCommand(
  "drain",
  "Take an agent out of placement; what it runs keeps running",
  "New deployments skip it with EE-PLACE-AGENT-DRAINED (preflight shows it). Admin only. On a federation master a dc's agent can be drained too: the drain reaches the dc in the signed desired state.",
);
export const AgentsUndrainCommand = drainCommand(
  "undrain",
  "Put a drained agent back into placement",
  "Lifts this control plane's own drain; on a dc, a drain from the federation master stays until the master lifts it.",
);

/** `eectl agents show` for people: one `key: value` line per field, the live machine last. */
function showText({ machine, ...fields }: AgentJson): string {
  const lines = Object.entries(fields).map(
    ([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`,
  );
  lines.push(
    `machine.value: ${JSON.stringify(machine?.value)}`,
    `machine.context: ${JSON.stringify(machine?.context, null, 2)}`,
  );
  return `${lines.join("\n")}\n`;
}

export class AgentsWatchCommand extends OperatorCommand {
  static override paths = [["agents", "watch"]];
  static override usage = Command.Usage({
    description: "Stream agent state transitions, one line each, until interrupted",
    details:
      "Reconnects (with backoff) when the control plane goes away, so it can watch across CP restarts.",
    examples: [
      ["Watch", "eectl agents watch"],
      ["As JSON lines", "eectl agents watch --json"],
    ],
  });
  asJson = jsonFlag("One JSON object per line");
  initial = Option.Boolean("--initial", false, {
    description: "First print every known agent's current state",
  });

  async run(): Promise<number> {
    const client = this.client();
    await abortOnSignal(async (signal) => {
      let delay = 500;
      while (!signal.aborted) {
        try {
          const path = `/api/v2/agents/events${this.initial ? "?initial=1" : ""}`;
          const events = await client.events(path, signal);
          delay = 500;
          for await (const { event, data } of events) this.#event(event, data);
        } catch (err) {
          if (signal.aborted) break;
          // Authentication and bad requests will not fix themselves: report them instead of looping.
          if (err instanceof RestError && (err.status === 401 || err.status === 400)) throw err;
          this.context.stderr.write(
            `eectl: stream lost (${err instanceof Error ? err.message : String(err)}); retrying in ${delay} ms\n`,
          );
        }
        if (signal.aborted) break;
        await sleep(delay).catch(() => {});
        delay = Math.min(delay * 2, 10_000);
      }
    });
    return 0;
  }

  #event(event: string, data: string): void {
    if (event !== "transition" && event !== "agent") return;
    const d = JSON.parse(data) as Record<string, string | null>;
    if (this.asJson) {
      this.context.stdout.write(`${JSON.stringify({ event, ...d })}\n`);
      return;
    }
    const line =
      event === "agent"
        ? `${new Date().toISOString()} ${d.agent_id} ${d.vm_name ?? "-"} is ${d.state}`
        : `${d.at} ${d.agent_id} ${d.vm_name ?? "-"} ${d.from ?? "(new)"} -> ${d.to}${d.reason ? ` (${d.reason})` : ""}`;
    this.context.stdout.write(`${line}\n`);
  }
}
