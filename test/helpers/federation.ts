// Federation fixtures for the e2e tests: real nats-servers (a hub and leaves from `eectl nats config`), a master
// and dc CPs in the test process, and the master's REST reads the tests assert on.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import type { ControlPlaneOptions } from "../../actors/control-plane.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { startTestCp, type TestCp } from "./cluster.ts";
import { type NatsServer, startNatsFederation } from "./nats.ts";

export interface AgentJson {
  agent_id: string;
  state: string;
  dc_id?: string;
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
  } = {},
) {
  const nats = await startNatsFederation(t, ["dc1"], o.auth ? { auth: o.auth } : {});
  const master = await startTestCp(t, {
    federation: {
      role: "master",
      nats: natsOf(nats.hub),
      degradedAfterMs: o.degradedAfterMs ?? 4_000,
      ...(o.lagWarnMs ? { lagWarnMs: o.lagWarnMs } : {}),
    },
    ...(o.masterLog ? { log: o.masterLog } : {}),
    ...o.master,
  });
  const dc = await startTestCp(t, {
    federation: {
      role: "dc",
      dcId: "dc1",
      nats: natsOf(nats.leaves.get("dc1")!),
      summaryMs: 500,
      ...(o.desired ? { masterKey: cpPubkeyHex(master.dataDir) } : {}),
    },
    ...o.dc,
  });
  return { nats, master, dc };
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
