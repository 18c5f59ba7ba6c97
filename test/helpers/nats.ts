// Real nats-server processes for the federation tests: a hub and leaves from configs that `eectl nats config`
// prints (password auth, allow-lists), each on free loopback ports with a temp JetStream store, waited for by its
// monitoring endpoint, stopped at teardown. A server can be stopped and started again on the same ports and
// store (an outage drill); a plain NATS client of a server as its CP user. Imports node:child_process, node:crypto,
// @nats-io/transport-node, test helpers.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ExecutionContext } from "ava";
import { eectl } from "./cli.ts";
import { waitFor } from "./cluster.ts";
import { closedPort, tempDir } from "./temp.ts";

/** Debian installs it in /usr/sbin (not on a non-root PATH); else found on PATH; EE_NATS_SERVER overrides. */
export const NATS_SERVER =
  process.env.EE_NATS_SERVER ??
  (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");

/**
 * nats-server parses an environment variable's value as config: a password starting with a digit can come out
 * a number or a parse error, so passwords start with a letter (docs/federation.md says the same to operators).
 */
const password = () => `p${randomBytes(12).toString("hex")}`;

export interface NatsServer {
  /** For the local CP: nats://127.0.0.1:PORT. */
  url: string;
  /** A file holding `user:password` for the local CP (--nats-creds); null without auth. */
  credsFile: string | null;
  /** The hub's leafnode port (hub only). */
  leafPort: number | null;
  monitorUrl: string;
  /** Stops the process (SIGKILL: nothing flushed on purpose) and waits for it. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and store. */
  start(): Promise<void>;
  /** The last few KiB the server logged. */
  log(): string;
}

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface Federation {
  hub: NatsServer;
  leaves: Map<string, NatsServer>;
}

/**
 * A hub and one leaf per dc, from `eectl nats config`, the leaves connected. `auth: "none"` is the contract's
 * unauthenticated loopback set-up (no users, no permissions; credsFile is then null).
 */
export async function startNatsFederation(
  t: ExecutionContext,
  dcs: string[],
  o: {
    auth?: "password" | "none" | "tls";
    /** With auth tls: each server's certificate files, by name (`hub`, then the dc ids). */
    tls?: Record<string, TlsFiles>;
    /** Wait until every leaf has linked (default); false for a drill where the hub must refuse a leaf. */
    waitLinked?: boolean;
  } = {},
): Promise<Federation> {
  const auth = o.auth ?? "password";
  const tlsArgs = (name: string) => {
    const f = o.tls?.[name];
    return f ? ["--tls-cert", f.cert, "--tls-key", f.key, "--tls-ca", f.ca] : [];
  };
  const dir = tempDir(t, "ee-nats-");
  const leafPasswords = new Map(dcs.map((dc) => [dc, password()]));
  const leafPort = await closedPort();
  const hub = await startServer(
    t,
    dir,
    "hub",
    [
      "--role",
      "hub",
      "--leaf-listen",
      `127.0.0.1:${leafPort}`,
      ...dcs.flatMap((d) => ["--dc", d]),
      "--auth",
      auth,
      ...tlsArgs("hub"),
    ],
    (env) => {
      for (const [dc, pw] of leafPasswords)
        env[`EE_NATS_LEAF_${dc.toUpperCase().replaceAll("-", "_")}_PASSWORD`] = pw;
    },
  );
  const leaves = new Map<string, NatsServer>();
  for (const dc of dcs) {
    const leaf = await startServer(
      t,
      dir,
      dc,
      ["--role", "leaf", "--dc-id", dc, "--hub", `127.0.0.1:${leafPort}`, "--auth", auth, ...tlsArgs(dc)],
      (env) => {
        env.EE_NATS_HUB_URL = `nats-leaf://${dc}:${leafPasswords.get(dc)}@127.0.0.1:${leafPort}`;
      },
    );
    leaves.set(dc, leaf);
  }
  if (o.waitLinked !== false) for (const leaf of leaves.values()) await waitLeafLinked(leaf);
  return { hub: { ...hub, leafPort }, leaves };
}

/** Until the leaf's server holds its connection to the hub (its own /leafz: 2.9's hub side names no leaf). */
export function waitLeafLinked(leaf: NatsServer, timeoutMs = 30_000): Promise<true> {
  return waitFor(
    "the leaf linked to the hub",
    async () => {
      const r = await fetch(`${leaf.monitorUrl}/leafz`).catch(() => null);
      if (!r?.ok) return undefined;
      return ((await r.json()) as { leafnodes?: number }).leafnodes === 1 || undefined;
    },
    timeoutMs,
  );
}

async function startServer(
  t: ExecutionContext,
  dir: string,
  name: string,
  roleArgs: string[],
  addEnv: (env: Record<string, string>) => void,
): Promise<NatsServer> {
  const [port, http] = [await closedPort(), await closedPort()];
  const store = join(dir, `${name}-store`);
  const gen = await eectl([
    "nats",
    "config",
    ...roleArgs,
    "--listen",
    `127.0.0.1:${port}`,
    "--http",
    `127.0.0.1:${http}`,
    "--store",
    store,
  ]);
  if (gen.code !== 0) throw new Error(`eectl nats config failed: ${gen.stderr}`);
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, gen.stdout, { mode: 0o600 });
  const cpPassword = password();
  const credsFile = roleArgs.includes("none") ? null : join(dir, `${name}-cp.creds`);
  if (credsFile)
    writeFileSync(credsFile, `${roleArgs[1] === "hub" ? "master" : "cp"}:${cpPassword}\n`, { mode: 0o600 });
  const env: Record<string, string> = { EE_NATS_CP_PASSWORD: cpPassword };
  addEnv(env);
  const monitorUrl = `http://127.0.0.1:${http}`;
  let child: ChildProcess | null = null;
  let log = "";
  const start = async () => {
    const c = spawn(NATS_SERVER, ["-c", conf], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...env },
    });
    c.stderr?.on("data", (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    child = c;
    await waitFor(
      `nats-server ${name} to serve`,
      async () => {
        if (c.exitCode !== null) throw new Error(`nats-server ${name} exited with ${c.exitCode}: ${log}`);
        const r = await fetch(`${monitorUrl}/healthz`).catch(() => null);
        return r?.ok || undefined;
      },
      30_000,
    );
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill("SIGKILL");
    await exited;
  };
  t.teardown(kill);
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    credsFile,
    leafPort: null,
    monitorUrl,
    kill,
    start,
    log: () => log,
  };
}

/** A client of `server` as its CP user (the credentials its creds file holds), closed at teardown. */
export async function natsClient(t: ExecutionContext, server: NatsServer): Promise<NatsConnection> {
  const [user, pass] = readFileSync(server.credsFile!, "utf8").trim().split(":");
  const nc = await connect({ servers: server.url, user: user!, pass: pass! });
  t.teardown(() => nc.close());
  return nc;
}
