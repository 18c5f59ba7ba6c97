// Opens the CP's durable business state (accounts, keys, owners, apps, the audit chain, the ledger, capacity)
// behind its ports, choosing the adapter: PostgreSQL for a `postgres://` URL (`--business-db`), else SQLite in
// DATA_DIR/business.db. Either way the runtime DB (easyenclave.db) stays apart, so the DB-wipe drill never
// touches it. The only module that knows both adapters.

import type { LedgerStore } from "../../billing/ledger-store.ts";
import { PgLedgerStore } from "../../billing/pg-ledger-store.ts";
import { SqliteLedgerStore } from "../../billing/sqlite-ledger-store.ts";
import { ValidationError } from "../../spec/errors.ts";
import { PgCapacityStore } from "../capacity/pg-store.ts";
import { CAPACITY_MIGRATIONS, SqliteCapacityStore } from "../capacity/sqlite-store.ts";
import type { CapacityStore } from "../capacity/store.ts";
import { type Db, migrate } from "../store/db.ts";
import type { TextSealer } from "../store/sealed-text.ts";
import { BUSINESS_MIGRATIONS } from "./migrations.ts";
import { openPgPool } from "./pg-db.ts";
import { PgBusinessStore } from "./pg-store.ts";
import { openBusinessDb, SqliteBusinessStore } from "./sqlite-store.ts";
import type { AppRegistry, BusinessStore } from "./store.ts";

export interface BusinessState {
  business: BusinessStore & AppRegistry;
  ledger: LedgerStore;
  capacity: CapacityStore;
  /** Copies the apps a runtime DB of before the business store holds, once (see SqliteBusinessStore.importApps). */
  importApps(runtimeDb: Db): Promise<number>;
  /** Where it lives, for the log: the file, or the URL without its password. */
  where: string;
  close(): Promise<void>;
}

export interface BusinessStateOptions {
  dataDir: string;
  /** `postgres://…` or `postgresql://…`; undefined: SQLite under the data dir. */
  url?: string;
  sealer: TextSealer;
  /** The audit records' clock (tests move it by hand). */
  now?: () => number;
  /** Hears an idle PostgreSQL connection the server dropped (the pool reconnects on next use). */
  onError?: (err: unknown) => void;
}

export async function openBusinessState(opts: BusinessStateOptions): Promise<BusinessState> {
  if (opts.url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(opts.url))
      throw new ValidationError("EE-CONFIG-INVALID", "--business-db takes a postgres:// URL");
    const onError = opts.onError ?? (() => {});
    const pool = await openPgPool(opts.url, [...BUSINESS_MIGRATIONS, ...CAPACITY_MIGRATIONS], onError).catch(
      (err) => {
        // pg's messages name the host and database, never the password.
        throw new ValidationError(
          "EE-CONFIG-INVALID",
          `--business-db ${redact(opts.url as string)}: ${(err as Error).message}`,
        );
      },
    );
    const business = await PgBusinessStore.open(pool, opts.sealer, opts.now).catch(async (err) => {
      await pool.end();
      throw err;
    });
    return {
      business,
      ledger: new PgLedgerStore(pool, opts.now),
      capacity: new PgCapacityStore(pool),
      importApps: (runtimeDb) => business.importApps(runtimeDb),
      where: redact(opts.url),
      close: () => pool.end(),
    };
  }
  const db = openBusinessDb(opts.dataDir);
  // Capacity's own migration list (versions 200–249) on the same file.
  migrate(db, CAPACITY_MIGRATIONS);
  const business = new SqliteBusinessStore(db, opts.sealer, opts.now);
  return {
    business,
    ledger: new SqliteLedgerStore(db, opts.now),
    capacity: new SqliteCapacityStore(db),
    importApps: async (runtimeDb) => business.importApps(runtimeDb),
    where: db.name,
    async close() {
      business.close();
    },
  };
}

/** The URL with its password masked: it goes to the log. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://(unparsable)";
  }
}
