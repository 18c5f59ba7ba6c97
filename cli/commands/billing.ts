// `eectl billing balance|ledger|rates|deposit|verify`: operators keeping the ledger over REST (admin), and accounts
// reading their own balance and statement with their key. `verify` may instead read a stopped or running CP's
// business.db directly with `--data-dir` (read only; it then loads SQLite).
import { Command, Option } from "clipanion";
import type { VerifyReport } from "../../billing/ledger-store.ts";
import type { LedgerEntryJson, RateCardJson } from "../../contract/rest-responses.ts";
import { CliError, ValidationError } from "../../spec/errors.ts";
import { OperatorCommand } from "../operator-command.ts";
import { jsonFlag } from "../options.ts";
import { table } from "../table.ts";

/** The ACCOUNT argument: an account id (acc_…), or (admin) platform or external. */
const account = () => Option.String({ name: "ACCOUNT", required: true });

export class BillingBalanceCommand extends OperatorCommand {
  static override paths = [["billing", "balance"]];
  static override usage = Command.Usage({
    description: "Show an account's balance in micro-units",
    details:
      "ACCOUNT is an account id (acc_…): a tenant's balance, or a provider's earnings. The admin may also name platform or external. An account's key reads its own only (a tenant's with read, a provider's with agents:read).",
    examples: [
      ["A tenant", "eectl billing balance acc_0123456789abcdef01234567"],
      ["The platform's fees, as JSON", "eectl billing balance platform --json"],
    ],
  });
  account = account();
  asJson = jsonFlag();

  async run(): Promise<number> {
    const body = await this.client().get<{ balance_micros: number }>(
      `/api/v2/accounts/${encodeURIComponent(this.account)}/balance`,
    );
    this.print(this.asJson, body, (b) => `${b.balance_micros}\n`);
    return 0;
  }
}

export class BillingLedgerCommand extends OperatorCommand {
  static override paths = [["billing", "ledger"]];
  static override usage = Command.Usage({
    description: "List an account's ledger entries, oldest first",
    details: "ACCOUNT as for `eectl billing balance`, with the same rules of who may read it.",
    examples: [
      ["A tenant's last 50 entries", "eectl billing ledger acc_0123456789abcdef01234567 --limit 50"],
    ],
  });
  account = account();
  limit = Option.String("--limit", { description: "The most recent N entries (default 1000)" });
  asJson = jsonFlag();

  async run(): Promise<number> {
    const q = this.limit === undefined ? "" : `?limit=${encodeURIComponent(this.limit)}`;
    const body = await this.client().get<{ entries: LedgerEntryJson[] }>(
      `/api/v2/accounts/${encodeURIComponent(this.account)}/ledger${q}`,
    );
    this.print(this.asJson, body, ({ entries }) =>
      table(
        ["AT", "KIND", "AMOUNT", "JOURNAL", "DEPLOYMENT", "PERIOD"],
        entries.map((e) => [
          e.at,
          e.kind,
          String(e.amount_micros),
          e.journal_id,
          e.deployment_id ?? "-",
          e.period === null ? "-" : String(e.period),
        ]),
      ),
    );
    return 0;
  }
}

export class BillingRatesCommand extends OperatorCommand {
  static override paths = [["billing", "rates"]];
  static override usage = Command.Usage({
    description: "Show the rate card, or replace it with --set and --platform-fee-bps",
    details:
      "Rates are integer micro-units per hour by node_size. Setting replaces the whole card: give every size that is charged.",
    examples: [
      ["Show", "eectl billing rates"],
      [
        "Set (70/30 split)",
        "eectl billing rates --set tiny=1000000 --set standard=4000000 --platform-fee-bps 3000",
      ],
    ],
  });
  set = Option.Array("--set", { description: "SIZE=MICROS_PER_HOUR (repeatable)" });
  fee = Option.String("--platform-fee-bps", {
    description: "The platform's share in basis points (0..10000)",
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    let body: RateCardJson;
    if (this.set === undefined && this.fee === undefined) {
      body = await this.client().get<RateCardJson>("/api/v2/billing/rates");
    } else {
      if (this.set === undefined || this.fee === undefined)
        throw new CliError(
          "EE-CLI-USAGE",
          "setting rates takes both --set SIZE=MICROS and --platform-fee-bps",
        );
      body = await this.client().put<RateCardJson>("/api/v2/billing/rates", {
        rates: Object.fromEntries(this.set.map(parseRate)),
        platform_fee_bps: integerFlag(this.fee, "--platform-fee-bps"),
      });
    }
    this.print(
      this.asJson,
      body,
      (r) =>
        `period: ${r.period_s} s, platform fee: ${r.platform_fee_bps ?? "-"} bps\n` +
        table(
          ["NODE SIZE", "MICROS/HOUR"],
          Object.entries(r.rates).map(([size, rate]) => [size, String(rate)]),
        ),
    );
    return 0;
  }
}

export class BillingDepositCommand extends OperatorCommand {
  static override paths = [["billing", "deposit"]];
  static override usage = Command.Usage({
    description: "Credit a tenant account (admin); the same --idempotency-key again credits nothing more",
    examples: [
      [
        "Deposit 5 units",
        "eectl billing deposit acc_0123456789abcdef01234567 --amount-micros 5000000 --idempotency-key inv-42",
      ],
    ],
  });
  account = account();
  amount = Option.String("--amount-micros", { required: true, description: "Integer micro-units" });
  key = Option.String("--idempotency-key", {
    required: true,
    description: "Unique per deposit (1..128 chars)",
  });

  async run(): Promise<number> {
    this.json(
      await this.client().post(`/api/v2/accounts/${encodeURIComponent(this.account)}/deposits`, {
        amount_micros: integerFlag(this.amount, "--amount-micros"),
        idempotency_key: this.key,
      }),
    );
    return 0;
  }
}

export class BillingVerifyCommand extends OperatorCommand {
  static override paths = [["billing", "verify"]];
  static override usage = Command.Usage({
    description: "Check that every journal sums to zero and every balance equals its entries",
    details:
      "Asks the control plane (GET /api/v2/billing/verify), or with --data-dir (--business-db) reads that data dir's store (that PostgreSQL business database) directly. Exits 1 when the ledger does not verify.",
    examples: [
      ["Through the CP", "eectl billing verify --json"],
      ["From the store", "eectl billing verify --data-dir ./.easyenclave"],
      ["From PostgreSQL", "eectl billing verify --business-db postgres://ee@db.internal/easyenclave"],
    ],
  });
  dataDir = Option.String("--data-dir", {
    description: "Read the ledger from this CP data dir instead of REST",
  });
  businessDb = Option.String("--business-db", {
    description: "postgres://… : read the ledger from the CP's --business-db instead of REST",
  });
  asJson = jsonFlag();

  async run(): Promise<number> {
    if (this.businessDb !== undefined && this.dataDir !== undefined)
      throw new CliError("EE-CLI-USAGE", "give --data-dir DIR or --business-db URL, not both");
    const body =
      this.businessDb !== undefined
        ? await verifyPg(this.businessDb)
        : this.dataDir === undefined
          ? await this.client().get<Verified>("/api/v2/billing/verify")
          : await verifyStore(this.dataDir);
    this.print(this.asJson, body, (v) =>
      v.ok ? `ok: ${v.journals} journals balance\n` : `NOT OK: ${JSON.stringify(v.problems)}\n`,
    );
    return body.ok ? 0 : 1;
  }
}

interface Verified {
  ok: boolean;
  journals: number;
  problems?: unknown;
}

async function verifyStore(dataDir: string): Promise<Verified> {
  const [{ existsSync }, { join }, { default: Database }, { BUSINESS_DB_FILE }, { SqliteLedgerStore }] =
    await Promise.all([
      import("node:fs"),
      import("node:path"),
      import("better-sqlite3"),
      import("../../cp/offline-stores.ts"),
      import("../../billing/sqlite-ledger-store.ts"),
    ]);
  // Read only, never created or migrated: a mistyped path must not "verify" an empty ledger, and a store that was
  // tampered with is evidence, not something to fix (as `eectl audit verify`).
  const file = join(dataDir, BUSINESS_DB_FILE);
  if (!existsSync(file)) throw new CliError("EE-CLI-FILE", `--data-dir: ${file} does not exist`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'ledger_journals'").get())
      throw new CliError(
        "EE-CLI-FILE",
        `--data-dir: ${file} has no ledger yet (a CP of this version adds it)`,
      );
    return verified(await new SqliteLedgerStore(db).verify());
  } finally {
    db.close();
  }
}

const verified = (r: VerifyReport): Verified => ({
  ok: r.ok,
  journals: r.journals,
  ...(r.ok ? {} : { problems: { unbalanced: r.unbalanced, mismatched: r.mismatched } }),
});

/** The same checks on a PostgreSQL business database, in one read-only snapshot, without migrating it. */
async function verifyPg(url: string): Promise<Verified> {
  const [{ readPg }, { PgLedgerStore }] = await Promise.all([
    import("../../cp/offline-stores.ts"),
    import("../../billing/pg-ledger-store.ts"),
  ]);
  return readPg(url, async (pool) => verified(await new PgLedgerStore(pool).verify()));
}

function parseRate(v: string): [string, number] {
  const eq = v.indexOf("=");
  if (eq <= 0) throw new CliError("EE-CLI-USAGE", `--set: expected SIZE=MICROS_PER_HOUR, got "${v}"`);
  return [v.slice(0, eq), integerFlag(v.slice(eq + 1), "--set")];
}

/** A non-negative integer flag, sent as a number (the CP checks its range). */
function integerFlag(v: string, flag: string): number {
  if (!/^\d{1,16}$/.test(v))
    throw new ValidationError("EE-CONFIG-INVALID", `${flag}: expected an integer, got "${v}"`);
  return Number(v);
}
