// `eectl audit list` (GET /api/v2/audit, admin) and `eectl audit verify --data-dir DIR`, which checks the chain
// in the store itself, with no CP, and exits 1 when a record was edited, removed or moved.
import { Command, Option } from "clipanion";
import { CliError } from "../../spec/errors.ts";
import type { auditJson } from "../../transport/rest/accounts.ts";
import { EeCommand } from "../base.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag, parsePositiveInt } from "../options.ts";
import { table } from "../table.ts";

type AuditJson = ReturnType<typeof auditJson>;

export class AuditListCommand extends OperatorCommand {
  static override paths = [["audit", "list"]];
  static override usage = Command.Usage({
    description: "List audit records after a seq (admin only)",
    examples: [
      ["From the start", "eectl audit list"],
      ["After 100, as JSON", "eectl audit list --after 100 --json"],
    ],
  });
  after = Option.String("--after", { description: "Records after this seq (default 0)" });
  limit = Option.String("--limit", { description: "At most this many (default 100, at most 1000)" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const after =
      this.after === undefined || this.after === "0" ? 0 : parsePositiveInt(this.after, "--after");
    const limit = parsePositiveInt(this.limit, "--limit");
    const body = await this.client().get<{ records: AuditJson[] }>(
      `/api/v2/audit?after=${after}${limit ? `&limit=${limit}` : ""}`,
    );
    this.print(this.asJson, body, ({ records }) =>
      table(
        ["SEQ", "AT", "PRINCIPAL", "CLIENT", "ACTION", "TARGET", "OUTCOME"],
        records.map((r) => [
          String(r.seq),
          r.at,
          r.principal,
          r.client ?? "-",
          r.action,
          r.target ?? "-",
          r.outcome,
        ]),
      ),
    );
    return 0;
  }
}

export class AuditVerifyCommand extends EeCommand {
  static override paths = [["audit", "verify"]];
  static override usage = Command.Usage({
    description:
      "Check the audit chain in a control plane's business store; exit 1 when it was tampered with",
    details: `
      Reads DATA_DIR/business.db, or with --business-db the PostgreSQL business database, read-only (the CP may be
      running) and recomputes every record's hash over its predecessor's. Prints {ok, records, first_bad_seq?}: the first record that was edited, or the seq of the
      first one removed or moved.
    `,
    examples: [
      ["As JSON", "eectl audit verify --data-dir ./.easyenclave --json"],
      ["In PostgreSQL", "eectl audit verify --business-db postgres://ee@db.internal/easyenclave"],
    ],
  });
  dataDir = Option.String("--data-dir", { description: "The control plane's data dir (its business.db)" });
  businessDb = Option.String("--business-db", {
    description: "postgres://… : the CP's --business-db instead of --data-dir",
  });
  asJson = jsonFlag("Print {ok, records, first_bad_seq?, reason?} as JSON");

  async run(): Promise<number> {
    const { verifyAuditStore, verifyAuditPg } = await import("../../cp/offline-stores.ts");
    if (this.businessDb !== undefined && this.dataDir !== undefined)
      throw new CliError("EE-CLI-USAGE", "give --data-dir DIR or --business-db URL, not both");
    if (this.businessDb === undefined && this.dataDir === undefined)
      throw new CliError("EE-CLI-USAGE", "give --data-dir DIR or --business-db URL");
    const check = await (this.businessDb !== undefined
      ? verifyAuditPg(this.businessDb)
      : verifyAuditStore(this.dataDir as string));
    this.print(this.asJson, check, (c) =>
      c.ok ? `ok: ${c.records} records chain\n` : `TAMPERED at seq ${c.first_bad_seq}: ${c.reason}\n`,
    );
    return check.ok ? 0 : 1;
  }
}
