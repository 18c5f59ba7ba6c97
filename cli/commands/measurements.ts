// `eectl measurements list|add|remove|approve`: operators managing admin-approved measurements (MRTD/RTMRs per
// node_size, accepted alongside the policy file) and approving the baselines of refused agents.
import { Command, Option } from "clipanion";
import type {
  MeasurementBaselineJson as Baseline,
  TrustedMeasurementJson as TrustedEntry,
} from "../../contract/rest-responses.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { table } from "../table.ts";

const short = (hex: string) => `${hex.slice(0, 16)}…`;

export class MeasurementsListCommand extends OperatorCommand {
  static override paths = [["measurements", "list"]];
  static override usage = Command.Usage({
    description: "List trusted measurements and the baselines of refused agents",
    examples: [
      ["Tables", "eectl measurements list"],
      ["As JSON", "eectl measurements list --json"],
    ],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ trusted: TrustedEntry[]; baselines: Baseline[] }>(
      "/api/v2/measurements",
    );
    this.print(this.asJson, body, listText);
    return 0;
  }
}

/** `eectl measurements list` for people: a table of trusted entries, then one of refused baselines. */
function listText({ trusted, baselines }: { trusted: TrustedEntry[]; baselines: Baseline[] }): string {
  return (
    "trusted:\n" +
    table(
      ["ID", "SIZE", "MRTD", "RTMR", "ADDED", "BY", "NOTE"],
      trusted.map((e) => [
        String(e.id),
        e.node_size,
        short(e.mrtd),
        e.rtmr ? "pinned" : "any",
        e.added_at,
        e.added_by,
        e.note ?? "",
      ]),
    ) +
    "baselines (refused):\n" +
    table(
      ["ID", "SIZE", "MRTD", "COUNT", "LAST SEEN", "LAST VM", "LAST AGENT"],
      baselines.map((b) => [
        String(b.id),
        b.node_size,
        short(b.mrtd),
        String(b.count),
        b.last_seen,
        b.last_vm_name ?? "-",
        b.last_agent_id ?? "-",
      ]),
    )
  );
}

export class MeasurementsAddCommand extends OperatorCommand {
  static override paths = [["measurements", "add"]];
  static override usage = Command.Usage({
    description: "Trust an MRTD (and optionally exact RTMR0..3) for a node_size",
    examples: [
      ["Any RTMRs", "eectl measurements add --node-size tiny --mrtd <96 hex>"],
      ["Pinned RTMRs", "eectl measurements add --node-size '*' --mrtd <hex> --rtmr <r0>,<r1>,<r2>,<r3>"],
    ],
  });
  nodeSize = Option.String("--node-size", { required: true, description: 'node_size, or "*" for all' });
  mrtd = Option.String("--mrtd", { required: true, description: "MRTD, 96 hex characters" });
  rtmr = Option.String("--rtmr", { description: "RTMR0..3, comma-separated (default: any)" });
  note = Option.String("--note", { description: "Why this measurement is trusted" });

  async run(): Promise<number> {
    const entry = await this.client().post<TrustedEntry>("/api/v2/measurements", {
      node_size: this.nodeSize,
      mrtd: this.mrtd,
      ...(this.rtmr ? { rtmr: this.rtmr.split(",").map((s) => s.trim()) } : {}),
      ...(this.note ? { note: this.note } : {}),
    });
    this.json(entry);
    return 0;
  }
}

export class MeasurementsRemoveCommand extends OperatorCommand {
  static override paths = [["measurements", "remove"]];
  static override usage = Command.Usage({
    description: "Stop trusting a measurement; agents presenting it are refused from their next attestation",
    examples: [["Remove entry 3", "eectl measurements remove 3"]],
  });
  id = Option.String({ name: "ID" });

  async run(): Promise<number> {
    await this.client().delete(`/api/v2/measurements/${encodeURIComponent(this.id)}`);
    this.context.stdout.write(`removed trusted measurement ${this.id}\n`);
    return 0;
  }
}

export class MeasurementsApproveCommand extends OperatorCommand {
  static override paths = [["measurements", "approve"]];
  static override usage = Command.Usage({
    description: "Trust the exact measurements of a refused agent's baseline",
    examples: [["Approve baseline 1", "eectl measurements approve 1"]],
  });
  id = Option.String({ name: "BASELINE_ID" });

  async run(): Promise<number> {
    const entry = await this.client().post<TrustedEntry>(
      `/api/v2/measurements/baselines/${encodeURIComponent(this.id)}/approve`,
      {},
    );
    this.json(entry);
    return 0;
  }
}
