// Opens the business state (actors/business/open.ts) for a test, on SQLite in a temp dir or on a fresh database
// of the file's throwaway PostgreSQL, closed at teardown, with `query`: raw SQL on the same database (`?`
// placeholders) for tests that tamper with stored rows. Undefined when PostgreSQL is not available here.
import { randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import pg from "pg";
import { type BusinessState, openBusinessState } from "../../actors/business/open.ts";
import { PG_TYPES } from "../../actors/business/pg-db.ts";
import { openBusinessDb } from "../../actors/business/sqlite-store.ts";
import { TextSealer } from "../../actors/store/sealed-text.ts";
import type { Postgres } from "./postgres.ts";
import { tempDir } from "./temp.ts";

export interface StateOptions {
  now?: () => number;
  sealer?: TextSealer;
}

export type Row = Record<string, unknown>;
export type TestState = BusinessState & { query(sql: string, params?: unknown[]): Promise<Row[]> };
export type OpenState = (t: ExecutionContext, opts?: StateOptions) => Promise<TestState | undefined>;

async function open(t: ExecutionContext, dir: string, url: string | undefined, opts: StateOptions) {
  const state = await openBusinessState({
    dataDir: dir,
    ...(url ? { url } : {}),
    sealer: opts.sealer ?? new TextSealer(randomBytes(32)),
    ...(opts.now ? { now: opts.now } : {}),
  });
  t.teardown(() => state.close());
  return state;
}

export const sqliteState: OpenState = async (t, opts = {}) => {
  const dir = tempDir(t);
  const state = await open(t, dir, undefined, opts);
  const db = openBusinessDb(dir);
  t.teardown(() => db.close());
  return Object.assign(state, {
    async query(sql: string, params: unknown[] = []) {
      const st = db.prepare(sql);
      if (st.reader) return st.all(...params) as Row[];
      st.run(...params);
      return [];
    },
  });
};

export function pgState(server: Postgres): OpenState {
  return async (t, opts = {}) => {
    const url = await server.database(t);
    if (url === undefined) return undefined;
    const state = await open(t, tempDir(t), url, opts);
    const raw = new pg.Pool({ connectionString: url, types: PG_TYPES, max: 1 });
    t.teardown(() => raw.end());
    return Object.assign(state, {
      async query(sql: string, params: unknown[] = []) {
        let n = 0;
        return (
          await raw.query(
            sql.replace(/\?/g, () => `$${++n}`),
            params,
          )
        ).rows as Row[];
      },
    });
  };
}
