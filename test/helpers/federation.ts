// Federation fixtures for the e2e tests: real nats-servers (a hub and leaves from `eectl nats config`), a master
// and dc CPs in the test process (or a dc as its own CP process, for a kill drill), and the master's REST reads
// the tests assert on.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type { ControlPlaneOptions } from "../../cp/options.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { type CpProcess, devRoot, spawnCp, startTestCp, type TestCp, tempDir } from "./cluster.ts";
import { type Federation, type NatsServer, startNatsFederation } from "./nats.ts";
import { closedPort } from "./temp.ts";

export interface AgentJson {
  agent_id: string;
  state: string;
  dc_id?: string;
  attestation: { attested_at: string | null };
}
export interface DcJson {
  dc_id: string;
  status: string;
  lag_s: number | null;
  last_seq: number;
  outbox_seq: number;
  applied: number;
  duplicates_skipped: number;
  agents: { total: number };
}

export function natsOf(server: NatsServer): NonNullable<ControlPlaneOptions["federation"]>["nats"] {
  return { url: server.url, ...(server.credsFile ? { credsFile: server.credsFile } : {}) };
}

/**
 * dc1's federation options: its leaf, summaries well inside the tests' short thresholds and, given `master`,
 * that master's desired state applied (--master-key with the master's key).
 */
export function dc1Federation(
  nats: Federation,
  master?: TestCp,
): NonNullable<ControlPlaneOptions["federation"]> {
  return {
    role: "dc",
    dcId: "dc1",
    nats: natsOf(nats.leaves.get("dc1")!),
    summaryMs: 500,
    ...(master ? { masterKey: cpPubkeyHex(master.dataDir) } : {}),
  };
}

/** A dc CP run as its own process (`eectl control-plane --role dc`), to be SIGKILLed and started again. */
export interface SpawnedDc {
  cp: CpProcess;
  /** The dc's REST side, whichever process serves it now (the helpers above take it). */
  rest: TestCp;
  devDir: string;
  /** SIGKILL, waited for. */
  kill(): Promise<void>;
  /** A new process on the same port, data dir and nats-server. */
  restart(): Promise<void>;
}

/**
 * A hub and a leaf per dc (dc1 by default), a master in this process, dc1 in this process (`dc`) and each dc of
 * `spawned` as its own CP process (`spawnedDcs`).
 */
export async function federation(
  t: ExecutionContext,
  o: {
    degradedAfterMs?: number;
    lagWarnMs?: number;
    auth?: "none";
    masterLog?: Logger;
    /** The dc applies the master's desired state (--master-key with the master's key). */
    desired?: boolean;
    /** More options of each CP (e.g. a --policy, another dev root). */
    master?: Partial<ControlPlaneOptions>;
    dc?: Partial<ControlPlaneOptions>;
    /** More dcs, each its own process (`eectl control-plane --role dc`). */
    spawned?: string[];
  } = {},
) {
  const spawned = o.spawned ?? [];
  const nats = await startNatsFederation(t, ["dc1", ...spawned], o.auth ? { auth: o.auth } : {});
  const master = await startTestCp(t, {
    federation: {
      role: "master",
      nats: natsOf(nats.hub),
      degradedAfterMs: o.degradedAfterMs ?? 4_000,
      ...(o.lagWarnMs ? { lagWarnMs: o.lagWarnMs } : {}),
      // Its own stream (dc master) too: summaries well inside the tests' short thresholds.
      summaryMs: 500,
    },
    ...(o.masterLog ? { log: o.masterLog } : {}),
    ...o.master,
  });
  const dc = await startTestCp(t, {
    federation: dc1Federation(nats, o.desired ? master : undefined),
    ...o.dc,
  });
  const spawnedDcs = new Map<string, SpawnedDc>();
  for (const dcId of spawned) spawnedDcs.set(dcId, await spawnDc(t, dcId, nats.leaves.get(dcId)!));
  return { nats, master, dc, spawnedDcs };
}

async function spawnDc(t: ExecutionContext, dcId: string, leaf: NatsServer): Promise<SpawnedDc> {
  const port = await closedPort();
  const dataDir = tempDir(t, `ee-${dcId}-`);
  const devDir = await devRoot();
  const args = ["--role", "dc", "--dc-id", dcId, "--nats", leaf.url];
  if (leaf.credsFile) args.push("--nats-creds", leaf.credsFile);
  const start = () => spawnCp(t, { port, dataDir, devDir, args });
  const first = await start();
  const handle: SpawnedDc = {
    cp: first,
    rest: { api: first.api } as TestCp,
    devDir,
    kill: () => handle.cp.kill(),
    restart: async () => {
      handle.cp = await start();
      handle.rest.api = handle.cp.api;
    },
  };
  return handle;
}

/** The master's log as parsed JSON lines, to look for the guardrail's lines. */
export function recordingLogger(): { log: Logger; lines: { level: number; msg: string; dc_id?: string }[] } {
  const lines: { level: number; msg: string; dc_id?: string }[] = [];
  const log = createLogger("cp", "info", { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** One sample of the master's /metrics (public, no token). */
export async function metricOf(cp: TestCp, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`${cp.cp.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

/** The master's CP identity public key, raw hex, as `--master-key` takes it (from its data dir's key file). */
export function cpPubkeyHex(dataDir: string): string {
  const key = createPublicKey(createPrivateKey(readFileSync(join(dataDir, "cp-identity.key"), "utf8")));
  return key.export({ format: "der", type: "spki" }).subarray(12).toString("hex");
}

export const agentsOf = async (cp: TestCp) =>
  (await cp.api<{ agents: AgentJson[] }>("/api/v2/agents")).body.agents;
export const dcsOf = async (cp: TestCp) =>
  (await cp.api<{ datacenters: DcJson[] }>("/api/v2/datacenters")).body.datacenters;
/** One dc in the master's list (which holds dc `master` too: its own stream). */
export const dcOf = async (cp: TestCp, dcId = "dc1") => (await dcsOf(cp)).find((d) => d.dc_id === dcId);
