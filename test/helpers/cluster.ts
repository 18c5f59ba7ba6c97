// Test fixtures that run the real thing on loopback: a control plane on a temp data dir with a dev attestation
// root, agents in-process or as `eectl agent` child processes, and RawAgent, a hand-driven protocol client for
// hostile and edge-case frames. Everything registers teardown with the ava test that made it.
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import WebSocket from "ws";
import { type RunningAgent, startAgent } from "../../agent/agent.ts";
import { type AgentConfig, parseAgentConfig } from "../../agent/config.ts";
import { readAgentId } from "../../agent/identity.ts";
import { agentIdFromPubkey, rawPublicKey, signPop } from "../../attestation/agent-key.ts";
import { devInit } from "../../attestation/dev-pki.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { startControlPlane } from "../../cp/control-plane.ts";
import type { ControlPlane, ControlPlaneOptions } from "../../cp/options.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import { type AnyEnvelope, CONNECT_PATH, type MessageBody, type MessageType } from "../../spec/protocol.ts";
import { decodeFrame, encodeFrame } from "../../transport/frame.ts";
import { type ContractInit, cpContract } from "./contract.ts";
import { removeAgentWorkloads } from "./docker.ts";
import { tempDir } from "./temp.ts";
import { httpsStatus } from "./tls.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const REPO = new URL("../../", import.meta.url).pathname;

export { tempDir } from "./temp.ts";

const devRoots = new Map<string, Promise<string>>();
/** One dev attestation root per test file (per name): creating one costs a few key generations. */
export function devRoot(name = "default"): Promise<string> {
  let p = devRoots.get(name);
  if (!p) {
    const dir = mkdtempSync(join(tmpdir(), `ee-dev-${name}-`));
    // Shared by every test in the file, so it outlives any one test's teardown.
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    p = devInit(dir).then(() => dir);
    devRoots.set(name, p);
  }
  return p;
}

/**
 * A CP's REST API as the admin (or with `token`; null sends none): the status and the JSON body (null if empty).
 * Every exchange is held to spec/control-plane.yaml (contract.ts); `badRequest` marks a request that breaks it
 * on purpose.
 */
export type CpApi = <T = unknown>(
  path: string,
  init?: ContractInit & { token?: string | null },
) => Promise<{ status: number; body: T }>;

function cpApi(baseUrl: string): CpApi {
  return async (path, init = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? ADMIN_TOKEN : init.token;
    if (token !== null) headers.set("authorization", `Bearer ${token}`);
    const res = await cpContract.fetch(`${baseUrl}${path}`, { ...init, headers });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as never };
  };
}

export interface TestCp {
  cp: ControlPlane;
  devDir: string;
  dataDir: string;
  api: CpApi;
}

export async function startTestCp(
  t: ExecutionContext,
  opts: Partial<ControlPlaneOptions> = {},
): Promise<TestCp> {
  const devDir = opts.devAttestationDir ?? (await devRoot());
  const dataDir = opts.dataDir ?? tempDir(t, "ee-cp-");
  const cp = await startControlPlane({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    log: silentLogger,
    adminToken: ADMIN_TOKEN,
    devAttestationDir: devDir,
    heartbeatMs: 200,
    staleAfterMs: 1000,
    // Tests that are not about readiness start with nothing to wait for.
    readiness: { settleMs: 0 },
    ...opts,
  });
  let stopped = false;
  const stop = cp.stop;
  cp.stop = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
  };
  t.teardown(() => cp.stop());
  return { cp, devDir, dataDir, api: cpApi(cp.url) };
}

export function agentConfig(
  t: ExecutionContext,
  cpWsUrl: string,
  devDir: string,
  over: Partial<AgentConfig> = {},
): AgentConfig {
  return parseAgentConfig(
    {
      control_plane_url: cpWsUrl,
      vm_name: "vm-1",
      node_size: "tiny",
      datacenter: "baremetal:local",
      api_listen: "127.0.0.1:0",
      data_dir: tempDir(t, "ee-agent-"),
      heartbeat_interval_ms: 200,
      attestation: { provider: "dev", dir: devDir },
      ...over,
    },
    "test",
  );
}

export async function startTestAgent(
  t: ExecutionContext,
  config: AgentConfig,
  opts: { log?: Logger } = {},
): Promise<RunningAgent> {
  const agent = await startAgent(config, { log: opts.log ?? silentLogger });
  t.teardown(async () => {
    await agent.stop();
    await removeAgentWorkloads(agent.agentId);
  });
  return agent;
}

/** Runs `eectl agent --config FILE` as a child process: the way to kill an agent for real (SIGKILL). */
export function spawnAgent(t: ExecutionContext, config: AgentConfig): ChildProcess {
  const file = join(tempDir(t, "ee-agent-cfg-"), "config.json");
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [join(REPO, "bin/eectl.js"), "agent", "--config", file], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, EE_LOG_LEVEL: "warn" },
  });
  child.stderr?.resume();
  t.teardown(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    const agentId = await readAgentId(config.data_dir);
    if (agentId) await removeAgentWorkloads(agentId);
  });
  return child;
}

/** A control plane as an `eectl control-plane` child process: the way to kill a CP for real (SIGKILL). */
export interface CpProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  api: CpApi;
  /** Everything the CP logged on stderr so far (warnings and errors: EE_LOG_LEVEL=warn). */
  stderr(): string;
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<void>;
}

export async function spawnCp(
  t: ExecutionContext,
  o: {
    port: number;
    dataDir: string;
    devDir: string;
    args?: string[];
    /** Serve https/wss with this pair; `ca` is what the readiness probe trusts. */
    tls?: { certFile: string; keyFile: string; ca: string };
  },
): Promise<CpProcess> {
  const child = spawn(
    process.execPath,
    [
      join(REPO, "bin/eectl.js"),
      "control-plane",
      "--listen",
      `127.0.0.1:${o.port}`,
      "--data-dir",
      o.dataDir,
      "--dev-attestation",
      o.devDir,
      "--admin-token",
      ADMIN_TOKEN,
      "--heartbeat-ms",
      "200",
      "--stale-after-ms",
      "1500",
      ...(o.tls ? ["--tls-cert", o.tls.certFile, "--tls-key", o.tls.keyFile] : []),
      ...(o.args ?? []),
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, EE_LOG_LEVEL: "warn" } },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const url = `${o.tls ? "https" : "http"}://127.0.0.1:${o.port}`;
  const tls = o.tls;
  const healthy = () =>
    tls
      ? httpsStatus(`${url}/healthz`, tls.ca).then((s) => s === 200)
      : fetch(`${url}/healthz`).then((r) => r.ok);
  await waitFor(
    "the control plane to serve",
    async () => {
      if (child.exitCode !== null) throw new Error(`control plane exited with ${child.exitCode}: ${stderr}`);
      return (await healthy().catch(() => false)) || undefined;
    },
    20_000,
  );
  return {
    child,
    url,
    wsUrl: `${o.tls ? "wss" : "ws"}://127.0.0.1:${o.port}`,
    api: cpApi(url),
    stderr: () => stderr,
    kill: async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function agentState(cp: ControlPlane, agentId: string): string | undefined {
  return cp.index.get(agentId)?.state;
}

/**
 * A protocol client driven by hand: connect, read frames, send anything (valid or not). Owns an Ed25519 key
 * and can produce a dev quote for any REPORTDATA, so tests can forge each part of a registration.
 */
export class RawAgent {
  readonly ws: WebSocket;
  readonly frames: AnyEnvelope[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly key: { privateKey: KeyObject; pub: Uint8Array };
  readonly #waiters: (() => void)[] = [];
  #nextId = 1;

  private constructor(ws: WebSocket, key?: RawAgent["key"]) {
    this.ws = ws;
    const kp = generateKeyPairSync("ed25519");
    this.key = key ?? { privateKey: kp.privateKey, pub: rawPublicKey(kp.publicKey) };
    this.closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on("message", (data) => {
      this.frames.push(decodeFrame(new Uint8Array(data as Buffer), "agent"));
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on("error", () => {});
  }

  get agentId(): string {
    return agentIdFromPubkey(this.key.pub);
  }

  /** `localAddress` picks the source address (any 127.x.y.z on Linux), to stand for another host. */
  static async connect(
    t: ExecutionContext,
    wsUrl: string,
    key?: RawAgent["key"],
    opts: { localAddress?: string } = {},
  ): Promise<RawAgent> {
    const ws = new WebSocket(`${wsUrl}${CONNECT_PATH}`, opts);
    const raw = new RawAgent(ws, key);
    t.teardown(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return raw;
  }

  async next<T extends MessageType>(
    type: T,
    timeoutMs = 5000,
  ): Promise<AnyEnvelope & { type: T; body: MessageBody<T> }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0] as never;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${type} frame within ${timeoutMs} ms (have: ${this.frames.map((f) => f.type).join(",")})`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send<T extends MessageType>(type: T, body: MessageBody<T>): number {
    const id = this.#nextId++;
    this.ws.send(encodeFrame(type, body, { id }));
    return id;
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /**
   * A register body for `nonce`; `over` replaces any field (to forge), `quoteNonce` binds the quote elsewhere,
   * `reportData` rewrites the REPORTDATA the quote carries (given the right one).
   */
  async registerBody(
    devDir: string,
    nonce: Uint8Array,
    over: Partial<MessageBody<"register">> = {},
    opts: { quoteNonce?: Uint8Array; mrtd?: string; reportData?: (bound: Uint8Array) => Uint8Array } = {},
  ): Promise<MessageBody<"register">> {
    const provider = createDevQuoteProvider(opts.mrtd ? { dir: devDir, mrtd: opts.mrtd } : { dir: devDir });
    const bound = reportDataFor("register", opts.quoteNonce ?? nonce, this.key.pub);
    const quote = await provider.getQuote(opts.reportData ? opts.reportData(bound) : bound);
    return {
      vm_name: "raw-1",
      node_size: "tiny",
      datacenter: "baremetal:local",
      agent_pubkey: this.key.pub,
      nonce,
      quote,
      pop: signPop(this.key.privateKey, nonce),
      ...over,
    };
  }

  /** Answers the challenge with a valid registration and waits for `registered`. */
  async register(devDir: string, over: Partial<MessageBody<"register">> = {}, opts: { mrtd?: string } = {}) {
    const { body } = await this.next("challenge");
    this.send("register", await this.registerBody(devDir, body.nonce, over, opts));
    return this.next("registered");
  }
}
