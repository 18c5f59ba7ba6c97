// A throwaway PostgreSQL server for a test file: initdb into a temp folder owned by the `postgres` user (initdb
// refuses root, so as root it runs under `runuser -u postgres`), trust auth on loopback only, a free port, one
// fresh database per test, stopped and removed when the file ends. Readiness is a connection that succeeds
// (polled with a deadline), not a sleep. Without the binaries the tests are skipped visibly, unless
// EE_REQUIRE_POSTGRES=1 (CI), where a missing server fails them (test/helpers/skip.ts).
import { execFile } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ExecutionContext, TestFn } from "ava";
import pg from "pg";
import { skipUnavailable } from "./skip.ts";
import { closedPort } from "./temp.ts";

const run = promisify(execFile);
const BIN = process.env.EE_POSTGRES_BIN ?? newestDebianPostgres();

interface Server {
  dir: string;
  port: number;
}

/** Debian's newest installed major version (`/usr/lib/postgresql/N/bin`); 15 on bookworm. */
function newestDebianPostgres(): string {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  return join(root, majors[0] ?? "15", "bin");
}

/** Runs a PostgreSQL tool as the `postgres` user when we are root (initdb and postgres refuse root). */
async function asPostgres(tool: string, args: string[]): Promise<void> {
  const bin = join(BIN, tool);
  if (userInfo().uid === 0) await run("runuser", ["-u", "postgres", "--", bin, ...args]);
  else await run(bin, args);
}

async function waitReady(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres" });
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > until) throw new Error(`PostgreSQL on port ${port} not ready: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function start(): Promise<Server> {
  if (!existsSync(join(BIN, "initdb"))) throw new Error(`no PostgreSQL binaries in ${BIN}`);
  const dir = mkdtempSync(join(tmpdir(), "ee-pg-"));
  try {
    if (userInfo().uid === 0) {
      const ids = await run("id", ["-u", "postgres"]);
      const gid = await run("id", ["-g", "postgres"]);
      chownSync(dir, Number(ids.stdout.trim()), Number(gid.stdout.trim()));
    }
    const data = join(dir, "data");
    await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
    const port = await closedPort();
    // Loopback TCP only; the socket in the temp folder; durability off: the data is thrown away.
    const opts = `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await asPostgres("pg_ctl", ["start", "-D", data, "-l", join(dir, "log"), "-o", opts]);
    await waitReady(port, 60_000);
    return { dir, port };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function stop(s: Server): Promise<void> {
  await asPostgres("pg_ctl", ["stop", "-D", join(s.dir, "data"), "-m", "immediate"]).catch(() => {});
  rmSync(s.dir, { recursive: true, force: true });
}

export interface Postgres {
  /** A URL to a new empty database; undefined (logged) when no server runs here and none is required. */
  database(t: ExecutionContext): Promise<string | undefined>;
}

/** Starts one server for the test file (before) and removes it (after.always). */
export function usePostgres<C>(test: TestFn<C>): Postgres {
  let server: Server | undefined;
  let failure: string | undefined;
  let n = 0;
  test.before(async () => {
    try {
      server = await start();
    } catch (err) {
      failure = String(err);
    }
  });
  test.after.always(async () => {
    if (server) await stop(server);
  });
  return {
    async database(t) {
      if (!server) {
        skipUnavailable(t, "PostgreSQL", String(failure), "EE_REQUIRE_POSTGRES");
        return undefined;
      }
      const name = `t${process.pid}_${++n}`;
      const admin = new pg.Client({
        host: "127.0.0.1",
        port: server.port,
        user: "postgres",
        database: "postgres",
      });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://postgres@127.0.0.1:${server.port}/${name}`;
    },
  };
}
