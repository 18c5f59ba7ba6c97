// `eectl inspect agent|deployment ID`: relays a live actor's Stately-inspector events from the control plane
// (GET /api/v2/agents/{id}/inspect, /api/v2/deployments/{id}/inspect) as JSON lines on stdout and/or to the Stately
// inspector in a browser (`--serve HOST:PORT`). `eectl machines list|export`: the machine definitions, for the
// Stately editor and visualizer. Heavy modules (ws, the machines) are imported when a command runs.
import { Command, Option } from "clipanion";
import type { AnyStateMachine } from "xstate";
import { MACHINES } from "../../cp/machine-catalog.ts";
import { ValidationError } from "../../spec/errors.ts";
import type { StatelyEvent } from "../../transport/inspection.ts";
import { EeCommand } from "../base.ts";
import { OperatorCommand } from "../operator-command.ts";
import { hostPortFlag, jsonFlag } from "../options.ts";
import { abortOnSignal } from "../signals.ts";
import { table } from "../table.ts";
import { agentPath } from "./agents.ts";
import { deploymentPath } from "./deployments.ts";

const INSPECT_DETAILS = `
  Streams the live actor's inspection events as the Stately inspector receives them: \`@xstate.actor\` (an actor
  and its machine definition), \`@xstate.snapshot\` (state value and context after each transition) and
  \`@xstate.event\` (each event sent to it). It starts with where the machine is now and runs until Ctrl-C, or
  until the actor ends. Secrets are scrubbed by the control plane before they leave it.

  \`--jsonl\` (the default without \`--serve\`) prints one JSON event a line. \`--serve HOST:PORT\` serves the events
  to the Stately inspector: open http://HOST:PORT/ in a browser; the page embeds https://stately.ai/inspect and
  feeds it from ws://HOST:PORT, which any @statelyai/inspect WebSocket receiver can read too. With \`--serve\` the
  last state stays served after the actor ends, until Ctrl-C.
`;

abstract class InspectCommand extends OperatorCommand {
  id = Option.String({ name: "ID" });
  jsonl = Option.Boolean("--jsonl", false, {
    description: "Print one JSON event a line (the default without --serve)",
  });
  serve = Option.String("--serve", {
    description: "Serve the events to the Stately inspector on HOST:PORT (open http://HOST:PORT/)",
  });

  /** The REST path of the actor's event stream. */
  abstract streamPath(): string;

  async run(): Promise<number> {
    const at = this.serve === undefined ? null : hostPortFlag(this.serve, "--serve");
    const print = this.jsonl || at === null;
    const client = this.client();
    const { stdout, stderr } = this.context;
    await abortOnSignal(async (signal) => {
      const events = await client.ndjson<StatelyEvent>(this.streamPath(), signal);
      const server = at
        ? await (await import("../../transport/inspector-server.ts")).serveInspector(at.host, at.port)
        : null;
      if (server) stderr.write(`Stately inspector: open ${server.url} (events on ${server.wsUrl})\n`);
      try {
        for await (const event of events) {
          if (print) stdout.write(`${JSON.stringify(event)}\n`);
          server?.send(event);
        }
        if (server && !signal.aborted) {
          stderr.write("the actor ended; its last state is served until Ctrl-C\n");
          await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      } finally {
        await server?.close();
      }
    });
    return 0;
  }
}

export class InspectAgentCommand extends InspectCommand {
  static override paths = [["inspect", "agent"]];
  static override usage = Command.Usage({
    category: "Inspect",
    description: "Stream an agent's live session machine to stdout or the Stately inspector",
    details: INSPECT_DETAILS,
    examples: [
      ["JSON lines until Ctrl-C", "eectl inspect agent agt_0123456789abcdef01234567 --jsonl"],
      ["In the Stately inspector", "eectl inspect agent agt_0123456789abcdef01234567 --serve 127.0.0.1:8090"],
    ],
  });
  streamPath(): string {
    return `${agentPath(this.id)}/inspect`;
  }
}

export class InspectDeploymentCommand extends InspectCommand {
  static override paths = [["inspect", "deployment"]];
  static override usage = Command.Usage({
    category: "Inspect",
    description: "Stream a live deployment's machine to stdout or the Stately inspector",
    details: INSPECT_DETAILS,
    examples: [
      ["JSON lines until Ctrl-C", "eectl inspect deployment d-0123456789abcdef --jsonl"],
      ["In the Stately inspector", "eectl inspect deployment d-0123456789abcdef --serve 127.0.0.1:8090"],
    ],
  });
  streamPath(): string {
    return `${deploymentPath(this.id)}/inspect`;
  }
}

export const MACHINE_NAMES = Object.keys(MACHINES);

/**
 * A machine's config as JSON, as createMachine() takes it and as the inspector receives it in `@xstate.actor`:
 * named actions, guards, actors and delays stay names; inline functions become `{type}` objects; the functions that
 * compute context, input, params and output at run time are left out.
 */
export function machineJson(machine: AnyStateMachine): string {
  return JSON.stringify(
    machine.config,
    (key, value: unknown) => {
      if (typeof value !== "function") return value;
      if (key === "context" || key === "input" || key === "params" || key === "output") return undefined;
      const type = (value as { type?: unknown }).type;
      return { type: typeof type === "string" ? type : value.name || "inline" };
    },
    2,
  );
}

export class MachinesListCommand extends EeCommand {
  static override paths = [["machines", "list"]];
  static override usage = Command.Usage({
    category: "Inspect",
    description: "List the state machines `eectl machines export` prints",
    examples: [
      ["Table", "eectl machines list"],
      ["As JSON", "eectl machines list --json"],
    ],
  });
  asJson = jsonFlag("Print the list as JSON");

  async run(): Promise<number> {
    const machines: { name: string; id: string; runs_on: string; states: string[] }[] = [];
    for (const [name, m] of Object.entries(MACHINES)) {
      const machine = await m.load();
      machines.push({ name, id: machine.id, runs_on: m.side, states: Object.keys(machine.root.states) });
    }
    this.print(this.asJson, { machines }, () =>
      table(
        ["NAME", "ID", "RUNS ON", "STATES"],
        machines.map((m) => [m.name, m.id, m.runs_on, m.states.join(" ")]),
      ),
    );
    return 0;
  }
}

export class MachinesExportCommand extends EeCommand {
  static override paths = [["machines", "export"]];
  static override usage = Command.Usage({
    category: "Inspect",
    description: "Print a machine definition (JSON) for the Stately editor and visualizer",
    details: `
      NAME is one of ${MACHINE_NAMES.join(", ")}. The output is the machine's config as createMachine() takes it
      (the same definition the Stately inspector receives): import it in the Stately editor, or paste it into
      \`createMachine(...)\`. Effects are names (they are provided at run time), so the diagram is the whole machine.
    `,
    examples: [
      ["The CP's agent session machine", "eectl machines export agent-session > agent-session.json"],
      ["The agent's deploy gate", "eectl machines export deploy-gate"],
    ],
  });
  name = Option.String({ name: "NAME" });

  async run(): Promise<number> {
    const m = MACHINES[this.name];
    if (!m)
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `unknown machine "${this.name}": expected one of ${MACHINE_NAMES.join(", ")}`,
      );
    this.context.stdout.write(`${machineJson(await m.load())}\n`);
    return 0;
  }
}
