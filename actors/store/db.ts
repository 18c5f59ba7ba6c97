// Opens the CP's SQLite databases (better-sqlite3, WAL) under the data dir and brings their schema up to date:
// the disposable runtime DB (easyenclave.db) and the durable business DB (business.db, actors/business/). The
// only module that knows the pragmas and the migration mechanism; everything else receives the open handle.
// Each database, its WAL and its shared-memory file are 0600 whatever the umask (see ownerOnly).
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS, type Migration } from "./migrations.ts";

export type Db = Database.Database;

/** The runtime DB: what the DB-wipe drill may delete (rebuilt from agents as they reconnect). */
export const DB_FILE = "easyenclave.db";

/** Opens (creating) the runtime DB, or with `file` another database of the data dir with its own migrations. */
export function openDatabase(
  dataDir: string,
  migrations: readonly Migration[] = MIGRATIONS,
  file: string = DB_FILE,
): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, file);
  ownerOnly(path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, migrations);
  return db;
}

/**
 * SQLite creates the -wal and -shm files with the database file's permission bits, so the database file is made
 * (or, written by an older version, tightened to) 0600 before SQLite opens it, and so are leftovers of the others.
 */
function ownerOnly(file: string): void {
  closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

export function schemaVersion(db: Db): number {
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Applies each migration whose version is not recorded yet. Checked per version, not against the highest:
 * other modules bring their own lists in their own version ranges (capacity: 200–249) onto the same table, so
 * a later core migration numbered below them must still run.
 */
export function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const applied = new Set(
    (db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
  // Sorted, so the order entries sit in the array can never skip one.
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    })();
  }
}
