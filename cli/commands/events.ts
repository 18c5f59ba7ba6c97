// `eectl events`: the control plane's event log (registrations, refusals, re-attestations, deployments, starts),
// its recent part or everything after a sequence number, optionally followed as it is written until Ctrl-C.
import { Command, Option } from "clipanion";
import type { EventRecord } from "../../contract/events.ts";
import { ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { abortOnSignal } from "../signals.ts";

/** The log's page size (GET /api/v2/events caps `limit` and `tail` there). */
const PAGE = 1000;
const DEFAULT_TAIL = 20;

export class EventsCommand extends OperatorCommand {
  static override paths = [["events"]];
  static override usage = Command.Usage({
    description: "Print the control plane's event log; with --follow, keep printing new events",
    details: `
      One line per event: \`TIME #SEQ KIND AGENT key=value…\`. SEQ is the event's \`id\`, increasing by event:
      \`--after SEQ\` prints every event after it (resume from the last one you saw), otherwise the last
      \`--tail\` events are printed. \`--follow\` then keeps streaming new events until Ctrl-C (exit 0).
      \`--json\` prints one JSON object per event and line (ndjson), as \`GET /api/v2/events\` returns them.

      Environment: EE_CP_URL (for --cp), EE_TOKEN (for --token).
    `,
    examples: [
      ["The last 20 events", "eectl events"],
      [
        "Follow registrations and refusals of one agent",
        "eectl events -f --agent agt_0123456789abcdef01234567",
      ],
      ["Everything after event 1200, as JSON lines", "eectl events --after 1200 --json"],
      ["Only new refusals, as they happen", "eectl events -f --tail 0 --kind agent.rejected"],
    ],
  });
  follow = Option.Boolean("-f,--follow", false, { description: "Keep printing new events until Ctrl-C" });
  after = Option.String("--after", { description: "Only events after this sequence number (an event's id)" });
  tail = Option.String("--tail", {
    description: `Without --after: the last N events first (default ${DEFAULT_TAIL}; 0 with --follow: only new ones)`,
  });
  agent = Option.String("--agent", { description: "Only events of this agent id" });
  kind = Option.String("--kind", { description: "Only events of this kind (e.g. agent.registered)" });
  asJson = jsonFlag("One JSON object per event and line (ndjson)");

  async run(): Promise<number> {
    const q = new URLSearchParams();
    if (this.agent) q.set("agent_id", this.agent);
    if (this.kind) q.set("kind", this.kind);
    if (this.after !== undefined)
      q.set("after", String(count("--after", this.after, Number.MAX_SAFE_INTEGER)));
    const tail = this.tail === undefined ? undefined : count("--tail", this.tail, PAGE);
    if (tail !== undefined && tail > 0) q.set("tail", String(tail));
    else if (tail === undefined && this.after === undefined) q.set("tail", String(DEFAULT_TAIL));
    const client = this.client();
    if (this.follow) {
      q.set("follow", "true");
      await abortOnSignal(async (signal) => {
        try {
          for await (const e of await client.ndjson<EventRecord>(`/api/v2/events?${q}`, signal))
            this.#print(e);
        } catch (err) {
          if (!signal.aborted) throw err;
        }
      });
      return 0;
    }
    if (tail === 0) return 0;
    if (q.has("tail")) {
      for (const e of (await client.get<{ events: EventRecord[] }>(`/api/v2/events?${q}`)).events)
        this.#print(e);
      return 0;
    }
    // Everything after --after, a page at a time.
    q.set("limit", String(PAGE));
    for (;;) {
      const { events } = await client.get<{ events: EventRecord[] }>(`/api/v2/events?${q}`);
      for (const e of events) this.#print(e);
      if (events.length < PAGE) return 0;
      q.set("after", String(events.at(-1)!.id));
    }
  }

  #print(e: EventRecord): void {
    this.context.stdout.write(`${this.asJson ? JSON.stringify(e) : eventLine(e)}\n`);
  }
}

/** An event for people: time, sequence, kind, agent, then its data as key=value (nested values as JSON). */
export function eventLine(e: EventRecord): string {
  const fields = Object.entries(e.data).map(
    ([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`,
  );
  return [new Date(e.at).toISOString(), `#${e.id}`, e.kind, e.agent_id ?? "-", ...fields].join(" ");
}

function count(flag: string, value: string, max: number): number {
  if (!/^\d{1,15}$/.test(value) || Number(value) > max)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${flag}: expected a whole number up to ${max}, got "${value}"`,
    );
  return Number(value);
}
