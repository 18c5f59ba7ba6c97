// `eectl capacity targets set|list`, `capacity orders list`, `capacity reservations list`, `capacity reconcile`
// and `capacity sizes`: the admin's view of warm capacity over /api/v2/capacity (docs/capacity.md).
import { Command, Option } from "clipanion";
import type { ReconcileResult, SizePreset } from "../../contract/capacity.ts";
import type { CapacityTargetJson, LaunchOrderJson } from "../../contract/rest-responses.ts";
import { ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { table } from "../table.ts";

const CATEGORY = "Capacity";

export class CapacityTargetsSetCommand extends OperatorCommand {
  static override paths = [["capacity", "targets", "set"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "Keep MIN_WARM attested, undeployed agents of a node size in a datacenter",
    details:
      "The reconciler runs at once: it reserves warm agents and creates launch orders for the shortfall, which launchers (`eectl launcher run`) claim. 0 keeps none warm.",
    examples: [
      [
        "Two warm tiny agents in local:a",
        "eectl capacity targets set --datacenter local:a --node-size tiny --min-warm 2",
      ],
    ],
  });
  datacenter = Option.String("--datacenter", { required: true, description: "provider:zone" });
  nodeSize = Option.String("--node-size", { required: true, description: "A configured node size" });
  minWarm = Option.String("--min-warm", { required: true, description: "Warm agents to keep (0..10000)" });
  asJson = jsonFlag("Print the target as JSON");

  async run(): Promise<number> {
    if (!/^\d{1,5}$/.test(this.minWarm))
      throw new ValidationError("EE-CONFIG-INVALID", `--min-warm: expected 0..10000, got "${this.minWarm}"`);
    const target = await this.client().put<CapacityTargetJson>("/api/v2/capacity/targets", {
      datacenter: this.datacenter,
      node_size: this.nodeSize,
      min_warm: Number(this.minWarm),
    });
    this.print(
      this.asJson,
      target,
      (t) => `target: ${t.min_warm} warm ${t.node_size} agent(s) in ${t.datacenter}\n`,
    );
    return 0;
  }
}

export class CapacityTargetsListCommand extends OperatorCommand {
  static override paths = [["capacity", "targets", "list"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "List the warm targets",
    examples: [["As JSON", "eectl capacity targets list --json"]],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ targets: CapacityTargetJson[] }>("/api/v2/capacity/targets");
    this.print(this.asJson, body, ({ targets }) =>
      table(
        ["DATACENTER", "NODE SIZE", "MIN WARM", "UPDATED"],
        targets.map((t) => [t.datacenter, t.node_size, String(t.min_warm), t.updated_at]),
      ),
    );
    return 0;
  }
}

export class CapacityOrdersListCommand extends OperatorCommand {
  static override paths = [["capacity", "orders", "list"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "List launch orders (open, claimed, provisioning, registered, fulfilled, failed)",
    examples: [["As JSON", "eectl capacity orders list --json"]],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ orders: LaunchOrderJson[] }>("/api/v2/capacity/orders");
    this.print(this.asJson, body, ({ orders }) =>
      table(
        ["ORDER", "DATACENTER", "NODE SIZE", "STATUS", "AGENT", "REASON"],
        orders.map((o) => [
          o.order_id,
          o.datacenter,
          o.node_size,
          o.status,
          o.agent_id ?? "-",
          o.reason ?? "-",
        ]),
      ),
    );
    return 0;
  }
}

export class CapacityReservationsListCommand extends OperatorCommand {
  static override paths = [["capacity", "reservations", "list"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "List the warm agents the reconciler holds for targets",
    examples: [["As JSON", "eectl capacity reservations list --json"]],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{
      reservations: { agent_id: string; datacenter: string; node_size: string; created_at: string }[];
    }>("/api/v2/capacity/reservations");
    this.print(this.asJson, body, ({ reservations }) =>
      table(
        ["AGENT", "DATACENTER", "NODE SIZE", "SINCE"],
        reservations.map((r) => [r.agent_id, r.datacenter, r.node_size, r.created_at]),
      ),
    );
    return 0;
  }
}

export class CapacityReconcileCommand extends OperatorCommand {
  static override paths = [["capacity", "reconcile"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "Run the capacity reconciler now and show what it did",
    examples: [["As JSON", "eectl capacity reconcile --json"]],
  });
  asJson = jsonFlag("Print the reconcile result as JSON");

  async run(): Promise<number> {
    const body = await this.client().post<ReconcileResult>("/api/v2/capacity/reconcile", {});
    this.print(
      this.asJson,
      body,
      (r) =>
        table(
          ["DATACENTER", "NODE SIZE", "MIN WARM", "WARM", "IN FLIGHT"],
          r.targets.map((t) => [
            t.datacenter,
            t.node_size,
            String(t.min_warm),
            String(t.warm),
            String(t.in_flight),
          ]),
        ) +
        `orders created ${r.created.length}, cancelled ${r.cancelled.length}, leases expired ${r.expired.length}\n`,
    );
    return 0;
  }
}

export class CapacitySizesCommand extends OperatorCommand {
  static override paths = [["capacity", "sizes"]];
  static override usage = Command.Usage({
    category: CATEGORY,
    description: "Show the control plane's node sizes and their presets (vCPUs, memory, GPUs)",
    examples: [["As JSON", "eectl capacity sizes --json"]],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ sizes: ({ node_size: string } & SizePreset)[] }>(
      "/api/v2/capacity/sizes",
    );
    this.print(this.asJson, body, ({ sizes }) =>
      table(
        ["NODE SIZE", "VCPUS", "MEMORY MB", "GPUS"],
        sizes.map((s) => [s.node_size, String(s.vcpus), String(s.memory_mb), String(s.gpus)]),
      ),
    );
    return 0;
  }
}
