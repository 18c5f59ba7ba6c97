// `eectl datacenters`: a federation master's datacenter CPs with their sync state (GET /api/v2/datacenters).
import { Command } from "clipanion";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { table } from "../table.ts";

interface DatacenterJson {
  dc_id: string;
  status: string;
  lag_s: number | null;
  last_seq: number;
  pending?: number | null;
  agents: { total: number; connected: number };
}

export class DatacentersCommand extends OperatorCommand {
  static override paths = [["datacenters"]];
  static override usage = Command.Usage({
    category: "Federation",
    description: "List a federation master's datacenter CPs: healthy or degraded, sync lag, agents",
    details: `
      On a master (\`eectl control-plane --role master\`), each dc it follows: \`degraded\` once the newest state
      it holds from the dc is older than the master's --dc-degraded-after-ms (placement then skips the dc), the
      lag in seconds, the last applied sequence of the dc's stream, the messages the hub's mirror is behind, and
      the dc's agents. The master itself is the row \`master\` (its direct agents, on the same path). Empty on a
      standalone or dc CP. docs/federation.md.
    `,
    examples: [
      ["Table", "eectl datacenters --cp http://127.0.0.1:8080"],
      ["JSON", "eectl datacenters --json"],
    ],
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ datacenters: DatacenterJson[] }>("/api/v2/datacenters");
    this.print(this.asJson, body, () =>
      table(
        ["DC", "STATUS", "LAG", "LAST SEQ", "PENDING", "AGENTS", "CONNECTED"],
        body.datacenters.map((d) => [
          d.dc_id,
          d.status,
          d.lag_s === null ? "-" : `${d.lag_s}s`,
          String(d.last_seq),
          d.pending == null ? "-" : String(d.pending),
          String(d.agents.total),
          String(d.agents.connected),
        ]),
      ),
    );
    return 0;
  }
}
