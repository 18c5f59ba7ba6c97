// Opens the business state (actors/business/open.ts) for a test, on SQLite in a temp dir or on a fresh database
// of the file's throwaway PostgreSQL, closed at teardown. Undefined when PostgreSQL is not available here.
import { randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import { type BusinessState, openBusinessState } from "../../actors/business/open.ts";
import { TextSealer } from "../../actors/store/sealed-text.ts";
import type { Postgres } from "./postgres.ts";
import { tempDir } from "./temp.ts";

export interface StateOptions {
  now?: () => number;
  sealer?: TextSealer;
}

export type OpenState = (t: ExecutionContext, opts?: StateOptions) => Promise<BusinessState | undefined>;

async function open(
  t: ExecutionContext,
  url: string | undefined,
  opts: StateOptions,
): Promise<BusinessState> {
  const state = await openBusinessState({
    dataDir: tempDir(t),
    ...(url ? { url } : {}),
    sealer: opts.sealer ?? new TextSealer(randomBytes(32)),
    ...(opts.now ? { now: opts.now } : {}),
  });
  t.teardown(() => state.close());
  return state;
}

export const sqliteState: OpenState = (t, opts = {}) => open(t, undefined, opts);

export function pgState(pg: Postgres): OpenState {
  return async (t, opts = {}) => {
    const url = await pg.database(t);
    return url === undefined ? undefined : open(t, url, opts);
  };
}
