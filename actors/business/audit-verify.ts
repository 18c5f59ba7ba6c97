// `eectl audit verify --data-dir DIR` / `--business-db URL`: checks the audit chain in DIR/business.db or in a
// PostgreSQL business database read-only, without a running CP and without migrating anything (a store that was
// tampered with is evidence, not something to fix).
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CliError } from "../../spec/errors.ts";
import { type ChainCheck, verifyChain } from "./audit-chain.ts";
import { BUSINESS_DB_FILE } from "./migrations.ts";
import { readPg } from "./pg-db.ts";
import { auditFromRaw } from "./sqlite-store.ts";

export function verifyAuditStore(dataDir: string): ChainCheck {
  const file = join(dataDir, BUSINESS_DB_FILE);
  if (!existsSync(file))
    throw new CliError("EE-CLI-FILE", `--data-dir ${dataDir}: no ${BUSINESS_DB_FILE} there`, {
      flag: "--data-dir",
      path: file,
    });
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT * FROM audit ORDER BY seq").iterate() as Iterable<
      Parameters<typeof auditFromRaw>[0]
    >;
    return verifyChain(mapIter(rows, auditFromRaw));
  } finally {
    db.close();
  }
}

function* mapIter<A, B>(it: Iterable<A>, f: (a: A) => B): Generator<B> {
  for (const a of it) yield f(a);
}

export function verifyAuditPg(url: string): Promise<ChainCheck> {
  return readPg(url, async (pool) => {
    // One statement: one snapshot, whatever the CP writes meanwhile.
    const { rows } = await pool.query("SELECT * FROM audit ORDER BY seq");
    return verifyChain(rows.map(auditFromRaw));
  });
}
