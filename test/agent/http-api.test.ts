// The agent HTTP API over real loopback HTTP: signed reads (snapshot, stats, logs as JSON and as an ndjson
// follow), signed writes that reach the workload manager only when signed and carrying the envelope of the pinned
// CP key (a real envelope verifier), bounds on write bodies (headers checked before a body is read, a few bodies
// at once), and the reverse proxy to a real
// upstream HTTP and WebSocket server standing in for the workload. The workload manager is a small in-test
// implementation of the Workloads interface over plain data (the real one is tested with Docker elsewhere).
import { createHash, generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingHttpHeaders, request, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { WebSocket, WebSocketServer } from "ws";
import type { AgentHealth } from "../../agent/health.ts";
import { createHttpApi, type Limits, listenHttpApi, MAX_WRITE_BODY_BYTES } from "../../agent/http-api.ts";
import type { ProxyTarget } from "../../agent/proxy.ts";
import type { ContainerStats, LogLine, LogOptions } from "../../agent/runtime/runtime.ts";
import type { DeployRequest, HostStats, WorkloadStatus, Workloads } from "../../agent/workload.ts";
import {
  CP_KEY_PIN_FILE,
  createEnvelopeSigner,
  createEnvelopeVerifier,
  type EnvelopeCommand,
  type EnvelopedType,
  type EnvelopePolicy,
  type EnvelopeSigner,
  filePin,
} from "../../attestation/cp-envelope.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { silentLogger } from "../../lib/log.ts";
import { type ErrorBody, type ErrorCode, NotFoundError, WorkloadError } from "../../spec/errors.ts";
import { MAX_CONTEXT_BYTES } from "../../spec/protocol.ts";
import { signedHeaders } from "../../transport/request-signing.ts";
import { waitFor } from "../helpers/cluster.ts";
import { agentContract } from "../helpers/contract.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";

const SECRET = new Uint8Array(32).fill(42);
const AGENT_ID = "agt_000000000000000000000001";
/** The CP this agent pinned at registration, and another one. */
const CP = createEnvelopeSigner({ privateKey: generateKeyPairSync("ed25519").privateKey });
const OTHER_CP = createEnvelopeSigner({ privateKey: generateKeyPairSync("ed25519").privateKey });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Workloads over plain data: records what reaches it, serves canned logs and stats. */
class DataWorkloads implements Workloads {
  status: WorkloadStatus | null = null;
  deployed: DeployRequest[] = [];
  undeployed: string[] = [];
  lines: LogLine[] = [];
  logCalls: LogOptions[] = [];
  logsEnded = 0;
  logsFail: Error | null = null;
  target: ProxyTarget | null = null;
  private wake: (() => void) | null = null;

  current() {
    return this.status;
  }
  deploy(req: DeployRequest): WorkloadStatus {
    this.deployed.push(req);
    this.status = {
      deployment_id: req.deployment_id,
      app: req.app,
      step: "preparing",
      compose_hash: "ab".repeat(32),
      images: [],
      since: 1,
      health: req.health ?? null,
    };
    return this.status;
  }
  undeploy(deploymentId: string): WorkloadStatus {
    if (this.status?.deployment_id !== deploymentId)
      throw new NotFoundError("EE-NOT-FOUND", `no deployment ${deploymentId}`);
    this.undeployed.push(deploymentId);
    this.status = { ...this.status, step: "stopping" };
    return this.status;
  }
  subscribe() {
    return () => {};
  }
  push(line: LogLine): void {
    this.lines.push(line);
    this.wake?.();
  }
  async *logs(opts: LogOptions): AsyncIterable<LogLine> {
    this.logCalls.push(opts);
    try {
      if (this.logsFail) throw this.logsFail;
      let next = Math.max(0, this.lines.length - (opts.tail ?? this.lines.length));
      for (;;) {
        while (next < this.lines.length) yield this.lines[next++] as LogLine;
        if (!opts.follow || opts.signal?.aborted) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          opts.signal?.addEventListener("abort", () => resolve(), { once: true });
        });
      }
    } finally {
      this.logsEnded++;
    }
  }
  async stats(): Promise<{ containers: ContainerStats[]; host: HostStats }> {
    return {
      containers: [
        {
          service: "web",
          id: "c1",
          cpu_percent: 1.5,
          memory_bytes: 10,
          memory_limit_bytes: 100,
          network_rx_bytes: 1,
          network_tx_bytes: 2,
        },
      ],
      host: { cpus: 2, load_avg: [0.1, 0.2, 0.3], memory_total_bytes: 4, memory_free_bytes: 3, uptime_s: 9 },
    };
  }
  proxyTarget() {
    return this.target;
  }
  async stop() {}
}

interface Api {
  url: string;
  workloads: DataWorkloads;
  close(): Promise<void>;
}

async function startApi(
  t: ExecutionContext,
  secret: Uint8Array | null = SECRET,
  o: { bodyLimits?: Limits; policy?: EnvelopePolicy } = {},
): Promise<Api> {
  const workloads = new DataWorkloads();
  const keyPin = filePin(join(tempDir(t), CP_KEY_PIN_FILE), "cp_pubkey");
  keyPin.pin(hex(CP.publicKey));
  const api = createHttpApi({
    envelope: createEnvelopeVerifier({
      policy: o.policy ?? "signed",
      agentId: AGENT_ID,
      trust: createTrustAnchors(),
      trustedMrtds: [],
      keyPin,
    }),
    ...(o.bodyLimits ? { bodyLimits: o.bodyLimits } : {}),
    health: () => ({ status: "ok" }) as AgentHealth,
    agentPubkey: new Uint8Array(32),
    quoteProvider: { name: "test", getQuote: async () => new Uint8Array(8) },
    log: silentLogger,
    workloads,
    apiSecret: () => secret,
    snapshot: () => ({ workload: null, heartbeat_seq: 3, started_at: 5 }),
  });
  const server = await listenHttpApi(api, { host: "127.0.0.1", port: 0 });
  t.teardown(() => server.close());
  return { url: server.url, workloads, close: () => server.close() };
}

interface Answer {
  status: number;
  message: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json(): unknown;
}

/**
 * node:http rather than fetch: fetch refuses hop-by-hop request headers, which the proxy tests need to send.
 * Every exchange is held to spec/agent-control.yaml; `badRequest` marks a request that breaks it on purpose.
 */
async function call(
  url: string,
  opts: {
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: Uint8Array;
    badRequest?: boolean;
  } = {},
): Promise<Answer> {
  const answer = await exchange(url, opts);
  const target = new URL(url);
  const requestType = opts.headers?.["content-type"];
  agentContract.check({
    method: opts.method ?? "GET",
    url: `${target.pathname}${target.search}`,
    requestType: typeof requestType === "string" ? requestType : null,
    ...(opts.body ? { requestBody: Buffer.from(opts.body).toString("utf8") } : {}),
    status: answer.status,
    responseType: answer.headers["content-type"] ?? null,
    responseBody: answer.body.toString("utf8"),
    ...(opts.badRequest ? { badRequest: true } : {}),
  });
  return answer;
}

function exchange(
  url: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; body?: Uint8Array },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          message: res.statusMessage ?? "",
          headers: res.headers,
          body,
          json: () => JSON.parse(body.toString("utf8")),
        });
      });
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

function errorOf(answer: Answer): ErrorBody["error"] {
  return (answer.json() as ErrorBody).error;
}

function signedPost(url: string, path: string, value: unknown, opts: { badRequest?: boolean } = {}) {
  const body = Buffer.from(JSON.stringify(value));
  return call(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...signedHeaders(SECRET, "POST", path, body) },
    body,
    ...opts,
  });
}

const NO_BODY = new Uint8Array(0);

let lastSignedAt = 0;
/**
 * A GET of the agent's signed reads, signed over the path with its query. Each gets its own millisecond: two
 * identical reads signed in the same one are one request, and the second a replay.
 */
function signedGet(url: string, path: string, opts: { badRequest?: boolean } = {}) {
  lastSignedAt = Math.max(Date.now(), lastSignedAt + 1);
  const headers = signedHeaders(SECRET, "GET", path, NO_BODY, lastSignedAt);
  return call(`${url}${path}`, { headers, ...opts });
}

const deployBody = {
  deployment_id: "d-1",
  app: "web",
  compose: "services:\n  web:\n    image: busybox\n",
  context_base64: Buffer.from("tar bytes").toString("base64"),
  health: { port: 8080 },
};

/** `value` with the envelope `cp` signs over the command it carries, in the API's JSON form (hex). */
function enveloped<T extends EnvelopedType>(
  type: T,
  value: Record<string, unknown>,
  cp: EnvelopeSigner = CP,
): Record<string, unknown> {
  const { context_base64, ...rest } = value;
  const command = {
    ...rest,
    ...(typeof context_base64 === "string" ? { context: Buffer.from(context_base64, "base64") } : {}),
  } as unknown as EnvelopeCommand<T>;
  const env = cp.sign(type, command, AGENT_ID);
  return {
    ...value,
    envelope: {
      cp_pubkey: hex(env.cp_pubkey),
      issued_at: env.issued_at,
      nonce: hex(env.nonce),
      sig: hex(env.sig),
    },
  };
}

const line = (service: string, text: string): LogLine => ({
  service,
  stream: "stdout",
  ts: "2024-01-01T00:00:00.000000001Z",
  text,
});

// ---- signed reads ----

test("GET /api/state-snapshot and /api/stats answer what the agent and the workload manager give", async (t) => {
  const api = await startApi(t);
  const snapshot = await signedGet(api.url, `/api/state-snapshot`);
  t.is(snapshot.status, 200);
  t.is(snapshot.headers["cache-control"], "no-store");
  t.deepEqual(snapshot.json(), { workload: null, heartbeat_seq: 3, started_at: 5 });
  const stats = await signedGet(api.url, `/api/stats`);
  t.is(stats.status, 200);
  t.deepEqual(stats.json(), await api.workloads.stats());
});

test("reads need a signature: unsigned, wrong secret, another path or query, replayed: 401, nothing read", async (t) => {
  const api = await startApi(t);
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  api.workloads.lines = [line("web", "secret=hunter2")];
  const get = (path: string, headers: Record<string, string>) =>
    call(`${api.url}${path}`, { headers, badRequest: true });
  const sign = (path: string, key = SECRET) => signedHeaders(key, "GET", path, NO_BODY);
  const replayed = sign("/api/logs?tail=1");
  t.is((await get("/api/logs?tail=1", replayed)).status, 200);
  const cases: [string, Promise<Answer>, ErrorCode][] = [
    ["unsigned snapshot", get("/api/state-snapshot", {}), "EE-AUTH-SIGNATURE"],
    ["unsigned stats", get("/api/stats", {}), "EE-AUTH-SIGNATURE"],
    ["unsigned logs", get("/api/logs", {}), "EE-AUTH-SIGNATURE"],
    ["unsigned follow", get("/api/logs?follow=true", {}), "EE-AUTH-SIGNATURE"],
    ["wrong secret", get("/api/logs", sign("/api/logs", new Uint8Array(32).fill(1))), "EE-AUTH-SIGNATURE"],
    ["another path", get("/api/logs", sign("/api/stats")), "EE-AUTH-SIGNATURE"],
    ["query changed", get("/api/logs?tail=100000", sign("/api/logs?tail=1")), "EE-AUTH-SIGNATURE"],
    ["query added", get("/api/logs?tail=100000", sign("/api/logs")), "EE-AUTH-SIGNATURE"],
    ["query dropped", get("/api/logs", sign("/api/logs?tail=1")), "EE-AUTH-SIGNATURE"],
    [
      "a write's signature",
      get("/api/logs", signedHeaders(SECRET, "POST", "/api/logs", NO_BODY)),
      "EE-AUTH-SIGNATURE",
    ],
    ["replayed", get("/api/logs?tail=1", replayed), "EE-AUTH-REPLAY"],
  ];
  for (const [title, pending, code] of cases) {
    const res = await pending;
    t.is(res.status, 401, title);
    t.is(errorOf(res).code, code, title);
    t.false(res.body.toString().includes("hunter2"), title);
  }
  t.is(api.workloads.logCalls.length, 1, "only the signed read reached the logs");
  // Health stays public (this test's health stub is not the documented shape, so not held to the contract).
  t.is((await exchange(`${api.url}/api/health`, {})).status, 200);
});

test("GET /api/logs: JSON lines, tail defaults to 1000, since (ms or ISO 8601) and service filter", async (t) => {
  const api = await startApi(t);
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  api.workloads.lines = [line("web", "a"), line("db", "b"), line("web", "c")];

  const all = await signedGet(api.url, `/api/logs`);
  t.is(all.status, 200);
  t.deepEqual(all.json(), { lines: api.workloads.lines });
  t.like(api.workloads.logCalls[0], { tail: 1000, follow: false });
  t.false("since" in (api.workloads.logCalls[0] ?? {}));

  t.deepEqual((await signedGet(api.url, `/api/logs?tail=2`)).json(), {
    lines: [line("db", "b"), line("web", "c")],
  });
  t.deepEqual((await signedGet(api.url, `/api/logs?service=web&follow=false`)).json(), {
    lines: [line("web", "a"), line("web", "c")],
  });
  await signedGet(api.url, `/api/logs?since=1700000000000&tail=0`);
  t.like(api.workloads.logCalls.at(-1), { since: 1_700_000_000_000, tail: 0 });
  await signedGet(api.url, `/api/logs?since=2024-01-02T03:04:05.5%2B01:00&tail=100000`);
  t.like(api.workloads.logCalls.at(-1), { since: Date.UTC(2024, 0, 2, 2, 4, 5, 500), tail: 100_000 });
});

test("GET /api/logs: bad parameters are 400 EE-REQ-INVALID naming the parameter, and no logs are read", async (t) => {
  const api = await startApi(t);
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  const cases: [string, RegExp][] = [
    ["tail=-1", /^tail:/],
    ["tail=abc", /^tail:/],
    ["tail=100001", /^tail:.*100000/],
    ["tail=1.5", /^tail:/],
    ["tail=1&tail=2", /^tail:/],
    ["since=yesterday", /^since:/],
    ["since=2024-01-02", /^since:/],
    ["since=2024-13-45T00:00:00Z", /^since:/],
    ["follow=yes", /^follow:/],
    ["follow=", /^follow:/],
    ["service=we%20b", /^service:/],
    ["lines=10", /^lines: unknown parameter/],
  ];
  for (const [query, message] of cases) {
    const res = await signedGet(api.url, `/api/logs?${query}`, { badRequest: true });
    t.is(res.status, 400, query);
    t.is(errorOf(res).code, "EE-REQ-INVALID", query);
    t.regex(errorOf(res).message, message, query);
  }
  t.is(api.workloads.logCalls.length, 0);
});

test("GET /api/logs without a workload: EE-WORKLOAD-NONE, also for follow; a failing log read maps its code", async (t) => {
  const api = await startApi(t);
  for (const query of ["", "?follow=true"]) {
    const res = await signedGet(api.url, `/api/logs${query}`);
    t.is(res.status, 422, query);
    t.is(errorOf(res).code, "EE-WORKLOAD-NONE", query);
  }
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  api.workloads.logsFail = new WorkloadError("EE-WORKLOAD-ENGINE", "engine gone");
  const res = await signedGet(api.url, `/api/logs`);
  t.is(res.status, 422);
  t.is(errorOf(res).code, "EE-WORKLOAD-ENGINE");
  // In a follow the status is already sent: the failure is the stream's last line.
  const follow = await signedGet(api.url, `/api/logs?follow=true`);
  t.is(follow.status, 200);
  t.deepEqual(
    follow.body
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l)),
    [{ error: { code: "EE-WORKLOAD-ENGINE", message: "engine gone" } }],
  );
});

test("GET /api/logs?follow=true streams ndjson until the client goes, then the log iterator ends", async (t) => {
  const api = await startApi(t);
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  api.workloads.lines = [line("web", "old")];
  const abort = new AbortController();
  const res = await agentContract.fetch(`${api.url}/api/logs?follow=true&service=web`, {
    headers: signedHeaders(SECRET, "GET", `/api/logs?follow=true&service=web`, NO_BODY),
    signal: abort.signal,
  });
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "application/x-ndjson");
  const reader = res.body?.getReader();
  if (!reader) return t.fail("no body");
  let buffered = "";
  const nextLine = async (): Promise<unknown> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended");
      buffered += Buffer.from(value).toString("utf8");
    }
    const at = buffered.indexOf("\n");
    const text = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return JSON.parse(text);
  };
  t.deepEqual(await nextLine(), line("web", "old"));
  api.workloads.push(line("db", "filtered out"));
  api.workloads.push(line("web", "live"));
  t.deepEqual(await nextLine(), line("web", "live"));
  t.is(api.workloads.logsEnded, 0);

  abort.abort();
  const deadline = Date.now() + 5000;
  while (api.workloads.logsEnded === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(api.workloads.logsEnded, 1, "the iterator's finally ran");
  t.true(api.workloads.logCalls[0]?.signal?.aborted);
});

test("closing the API ends an open log follow", async (t) => {
  const api = await startApi(t);
  api.workloads.deploy({ deployment_id: "d-1", app: "web", compose: "x" });
  const res = await agentContract.fetch(`${api.url}/api/logs?follow=true`, {
    headers: signedHeaders(SECRET, "GET", "/api/logs?follow=true", NO_BODY),
  });
  t.is(res.status, 200);
  await api.close();
  await t.throwsAsync(res.text());
  const deadline = Date.now() + 5000;
  while (api.workloads.logsEnded === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(api.workloads.logsEnded, 1);
});

// ---- signed writes ----

test("a signed deploy with the pinned CP's envelope reaches the workload manager: 202, context decoded, health defaulted, origin kept", async (t) => {
  const api = await startApi(t);
  const sent = enveloped("deploy", deployBody);
  const res = await signedPost(api.url, "/api/deploy", sent);
  t.is(res.status, 202, res.body.toString());
  t.like(res.json(), { deployment_id: "d-1", app: "web", step: "preparing" });
  t.is(api.workloads.deployed.length, 1);
  const req = api.workloads.deployed[0];
  t.is(req?.compose, deployBody.compose);
  t.is(Buffer.from(req?.context ?? []).toString(), "tar bytes");
  t.deepEqual(req?.health, { port: 8080, path: "/", timeout_s: 60 });
  t.like(req?.origin, { cp_pubkey: hex(CP.publicKey), sig: (sent.envelope as { sig: string }).sig });

  const undeploy = await signedPost(
    api.url,
    "/api/undeploy",
    enveloped("undeploy", { deployment_id: "d-1" }),
  );
  t.is(undeploy.status, 202);
  t.like(undeploy.json(), { deployment_id: "d-1", step: "stopping" });
  t.deepEqual(api.workloads.undeployed, ["d-1"]);

  const unknown = await signedPost(api.url, "/api/undeploy", enveloped("undeploy", { deployment_id: "d-2" }));
  t.is(unknown.status, 404);
  t.is(errorOf(unknown).code, "EE-NOT-FOUND");
});

test("unsigned or badly signed writes are 401 with their EE-AUTH code and change nothing", async (t) => {
  const api = await startApi(t);
  const body = Buffer.from(JSON.stringify(deployBody));
  const json = { "content-type": "application/json" };
  const post = (path: string, headers: Record<string, string>, payload = body) =>
    call(`${api.url}${path}`, {
      method: "POST",
      headers: { ...json, ...headers },
      body: payload,
      badRequest: true, // unsigned, badly signed, off-document query or body: all on purpose
    });
  const now = Date.now();
  const cases: [string, Promise<Answer>, ErrorCode][] = [
    ["unsigned deploy", post("/api/deploy", {}), "EE-AUTH-SIGNATURE"],
    [
      "unsigned undeploy",
      post("/api/undeploy", {}, Buffer.from('{"deployment_id":"d-1"}')),
      "EE-AUTH-SIGNATURE",
    ],
    [
      "wrong secret",
      post("/api/deploy", signedHeaders(new Uint8Array(32).fill(1), "POST", "/api/deploy", body)),
      "EE-AUTH-SIGNATURE",
    ],
    [
      "body tampered",
      post(
        "/api/deploy",
        signedHeaders(SECRET, "POST", "/api/deploy", body),
        Buffer.from(JSON.stringify({ ...deployBody, app: "evil" })),
      ),
      "EE-AUTH-SIGNATURE",
    ],
    [
      "path tampered",
      post("/api/deploy", signedHeaders(SECRET, "POST", "/api/undeploy", body)),
      "EE-AUTH-SIGNATURE",
    ],
    [
      "query added",
      post("/api/deploy?x=1", signedHeaders(SECRET, "POST", "/api/deploy", body)),
      "EE-AUTH-SIGNATURE",
    ],
    [
      "too old",
      post("/api/deploy", signedHeaders(SECRET, "POST", "/api/deploy", body, now - 60_000)),
      "EE-AUTH-SKEW",
    ],
    [
      "from the future",
      post("/api/deploy", signedHeaders(SECRET, "POST", "/api/deploy", body, now + 60_000)),
      "EE-AUTH-SKEW",
    ],
    // A bad body that is also unsigned is refused for the signature: nothing is parsed before verification.
    ["unsigned garbage", post("/api/deploy", {}, Buffer.from("{not json")), "EE-AUTH-SIGNATURE"],
  ];
  for (const [title, pending, code] of cases) {
    const res = await pending;
    t.is(res.status, 401, title);
    t.is(errorOf(res).code, code, title);
  }
  t.deepEqual(api.workloads.deployed, []);
  t.deepEqual(api.workloads.undeployed, []);
});

test("a replayed signed deploy is 401 EE-AUTH-REPLAY and reaches the manager once", async (t) => {
  const api = await startApi(t);
  const body = Buffer.from(JSON.stringify(enveloped("deploy", deployBody)));
  const headers = {
    "content-type": "application/json",
    ...signedHeaders(SECRET, "POST", "/api/deploy", body),
  };
  const first = await call(`${api.url}/api/deploy`, { method: "POST", headers, body });
  t.is(first.status, 202);
  const again = await call(`${api.url}/api/deploy`, { method: "POST", headers, body });
  t.is(again.status, 401);
  t.is(errorOf(again).code, "EE-AUTH-REPLAY");
  t.is(api.workloads.deployed.length, 1);
});

test("before registration (no secret) even a well-signed write is refused", async (t) => {
  const api = await startApi(t, null);
  const res = await signedPost(api.url, "/api/deploy", deployBody);
  t.is(res.status, 401);
  t.is(errorOf(res).code, "EE-AUTH-SIGNATURE");
  t.regex(errorOf(res).message, /no API secret/);
  t.deepEqual(api.workloads.deployed, []);
});

test("signed but invalid bodies are 400 and change nothing; an oversized context is EE-COMPOSE-CONTEXT-TOO-LARGE", async (t) => {
  const api = await startApi(t);
  const cases: [string, unknown, RegExp][] = [
    ["bad deployment_id", { ...deployBody, deployment_id: "D_1" }, /^deployment_id:/],
    ["missing compose", { deployment_id: "d-1", app: "web" }, /^compose:/],
    ["unknown key", { ...deployBody, healthcheck: {} }, /healthcheck/],
    ["context not base64", { ...deployBody, context_base64: "a b=" }, /^context_base64:/],
    ["bad health port", { ...deployBody, health: { port: 0 } }, /^health\.port:/],
    ["not an object", [deployBody], /^body:/],
  ];
  for (const [title, value, message] of cases) {
    const res = await signedPost(api.url, "/api/deploy", value, { badRequest: true });
    t.is(res.status, 400, title);
    t.is(errorOf(res).code, "EE-REQ-INVALID", title);
    t.regex(errorOf(res).message, message, title);
  }
  const garbage = Buffer.from("{not json");
  const notJson = await call(`${api.url}/api/deploy`, {
    method: "POST",
    headers: signedHeaders(SECRET, "POST", "/api/deploy", garbage),
    body: garbage,
    badRequest: true,
  });
  t.is(notJson.status, 400);
  t.regex(errorOf(notJson).message, /not valid JSON/);

  const big = Buffer.alloc(MAX_CONTEXT_BYTES + 1).toString("base64");
  const tooLarge = await signedPost(
    api.url,
    "/api/deploy",
    { ...deployBody, context_base64: big },
    { badRequest: true }, // over the decoded cap on purpose
  );
  t.is(tooLarge.status, 400);
  t.is(errorOf(tooLarge).code, "EE-COMPOSE-CONTEXT-TOO-LARGE");
  t.deepEqual(api.workloads.deployed, []);
});

test("a write body over the cap is refused before it is read or verified", async (t) => {
  const api = await startApi(t);
  const body = Buffer.alloc(MAX_WRITE_BODY_BYTES + 1, 0x20);
  const res = await call(`${api.url}/api/deploy`, {
    method: "POST",
    headers: { "content-type": "application/json", ...signedHeaders(SECRET, "POST", "/api/deploy", body) },
    body,
    badRequest: true,
  });
  t.is(res.status, 400);
  t.is(errorOf(res).code, "EE-REQ-INVALID");
  t.regex(errorOf(res).message, /exceeds/);
  t.deepEqual(api.workloads.deployed, []);
});

test("the session's HMAC alone does not write: no envelope is 403 EE-ENV-MISSING, another CP's key EE-ENV-KEY", async (t) => {
  const api = await startApi(t);
  const cases: [string, string, Record<string, unknown>, ErrorCode][] = [
    ["deploy without an envelope", "/api/deploy", deployBody, "EE-ENV-MISSING"],
    ["undeploy without an envelope", "/api/undeploy", { deployment_id: "d-1" }, "EE-ENV-MISSING"],
    ["deploy signed by another CP", "/api/deploy", enveloped("deploy", deployBody, OTHER_CP), "EE-ENV-KEY"],
    [
      "undeploy signed by another CP",
      "/api/undeploy",
      enveloped("undeploy", { deployment_id: "d-1" }, OTHER_CP),
      "EE-ENV-KEY",
    ],
    [
      "the pinned CP's envelope over another command",
      "/api/deploy",
      { ...enveloped("deploy", deployBody), app: "evil" },
      "EE-ENV-SIGNATURE",
    ],
  ];
  for (const [title, path, value, code] of cases) {
    const res = await signedPost(api.url, path, value);
    t.is(res.status, 403, title);
    t.is(errorOf(res).code, code, title);
  }
  t.deepEqual(api.workloads.deployed, []);
  t.deepEqual(api.workloads.undeployed, []);
  // `optional` lets WebSocket commands of an older CP through; the agent's own HTTP writes still need the envelope.
  const optional = await startApi(t, SECRET, { policy: "optional" });
  const res = await signedPost(optional.url, "/api/deploy", deployBody);
  t.is(res.status, 403);
  t.is(errorOf(res).code, "EE-ENV-MISSING");
  t.deepEqual(optional.workloads.deployed, []);
});

/** A raw request: the head, then `sent` bytes of a body announced as `length`; the socket stays open. */
function rawWrite(url: string, headers: Record<string, string>, length: number, sent: number): Socket {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const head = Object.entries({
    ...headers,
    "content-type": "application/json",
    "content-length": `${length}`,
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.write(`POST /api/deploy HTTP/1.1\r\nhost: ${hostname}\r\n${head}\r\n`);
  if (sent > 0) socket.write(Buffer.alloc(sent, 0x20));
  socket.on("error", () => {});
  return socket;
}

/** The status line and headers of the answer on `socket`, and whether the agent then closed it. */
function answerOn(socket: Socket): Promise<{ status: number; head: string; closed: Promise<void> }> {
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return new Promise((resolve, reject) => {
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0)
        resolve({ status: Number(text.split(" ")[1]), head: text.slice(0, end).toLowerCase(), closed });
    });
    socket.once("close", () => reject(new Error(`closed before an answer: ${JSON.stringify(text)}`)));
  });
}

test("40 parallel unsigned 5 MB writes are refused on their headers: answered 401 with 64 KiB of each sent, connections closed", async (t) => {
  const api = await startApi(t);
  const MB5 = 5 * 1024 * 1024;
  const now = Date.now();
  const heads: [string, Record<string, string>, ErrorCode][] = [
    ["no signature", {}, "EE-AUTH-SIGNATURE"],
    ["malformed signature", { "x-ee-timestamp": `${now}`, "x-ee-signature": "zz" }, "EE-AUTH-SIGNATURE"],
    [
      "stale timestamp",
      { "x-ee-timestamp": `${now - 120_000}`, "x-ee-signature": "ab".repeat(32) },
      "EE-AUTH-SKEW",
    ],
  ];
  const sockets = Array.from({ length: 40 }, (_, i) => {
    const [, headers] = heads[i % heads.length]!;
    return rawWrite(api.url, headers, MB5, 64 * 1024);
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  // Without the header check first, each of these waits for the rest of its 5 MB, which never comes.
  const answers = await Promise.all(sockets.map(answerOn));
  for (const [i, a] of answers.entries()) {
    t.is(a.status, 401, heads[i % heads.length]![0]);
    t.regex(a.head, /connection: close/);
  }
  await Promise.all(answers.map((a) => a.closed));
  // No secret yet: even well-formed, fresh headers are refused before the body.
  const unregistered = await startApi(t, null);
  const socket = rawWrite(
    unregistered.url,
    { "x-ee-timestamp": `${Date.now()}`, "x-ee-signature": "ab".repeat(32) },
    MB5,
    0,
  );
  t.teardown(() => socket.destroy());
  t.is((await answerOn(socket)).status, 401);
  t.deepEqual(api.workloads.deployed, []);
});

test("write bodies are read a few at once: past the cap a write is 503 EE-BUSY with Retry-After, unread; a freed slot is taken again", async (t) => {
  const api = await startApi(t, SECRET, { bodyLimits: { inFlight: 2, waiting: 0 } });
  const body = Buffer.from(JSON.stringify(deployBody));
  // Headers that pass the pre-check (fresh, well formed, a secret held); the bodies never finish.
  const stalled = [0, 1].map(() =>
    rawWrite(api.url, signedHeaders(SECRET, "POST", "/api/deploy", body), 1024 * 1024, 1024),
  );
  t.teardown(() => {
    for (const s of stalled) s.destroy();
  });
  // A complete write with a wrong signature: 401 when a slot is free, 503 once both are held.
  const probe = () =>
    call(`${api.url}/api/deploy`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...signedHeaders(new Uint8Array(32).fill(7), "POST", "/api/deploy", body),
      },
      body,
      badRequest: true,
    });
  const busy = await waitFor("both body slots held", async () => {
    const res = await probe();
    return res.status === 503 ? res : undefined;
  });
  t.is(errorOf(busy).code, "EE-BUSY");
  t.is(busy.headers["retry-after"], "1");
  for (const s of stalled) s.destroy();
  const freed = await waitFor("a slot free again", async () => {
    const res = await probe();
    return res.status !== 503 ? res : undefined;
  });
  t.is(freed.status, 401);
  t.is(errorOf(freed).code, "EE-AUTH-SIGNATURE");
  t.deepEqual(api.workloads.deployed, []);
});

// ---- the workload proxy ----

interface Upstream {
  port: number;
  requests: {
    method: string;
    url: string;
    headers: IncomingHttpHeaders;
    bodySha: string;
    bodyLength: number;
  }[];
  upgrades: IncomingHttpHeaders[];
}

/** The "workload": echoes HTTP requests as JSON and WebSocket messages with an `echo:` prefix. */
async function startUpstream(t: ExecutionContext): Promise<Upstream> {
  const upstream: Upstream = { port: 0, requests: [], upgrades: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        bodySha: createHash("sha256").update(body).digest("hex"),
        bodyLength: body.length,
      };
      upstream.requests.push(seen);
      if (req.url === "/missing") {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("workload says no");
        return;
      }
      res.writeHead(201, "Made It", {
        "content-type": "application/json",
        "x-kept": "yes",
        "proxy-authenticate": "Basic",
        "x-upstream-hop": "drop me",
        connection: "x-upstream-hop",
        "set-cookie": ["a=1", "b=2"],
      });
      res.end(JSON.stringify(seen));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws, req) => {
    upstream.upgrades.push(req.headers);
    ws.on("message", (data, isBinary) =>
      ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.port = (server.address() as AddressInfo).port;
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return upstream;
}

async function proxied(t: ExecutionContext): Promise<{ api: Api; upstream: Upstream }> {
  const upstream = await startUpstream(t);
  const api = await startApi(t);
  api.workloads.target = { host: "127.0.0.1", port: upstream.port };
  return { api, upstream };
}

test("proxy GET: path and query kept, end-to-end headers forwarded, hop-by-hop stripped, X-Forwarded-* set", async (t) => {
  const { api, upstream } = await proxied(t);
  const host = new URL(api.url).host;
  const res = await call(`${api.url}/hello/world?x=1&y=%20`, {
    headers: {
      "x-custom": "kept",
      connection: "keep-alive, x-named-hop",
      "x-named-hop": "gone",
      "keep-alive": "timeout=99",
      "proxy-authorization": "Basic abc",
      te: "trailers",
      "x-forwarded-for": "10.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "spoofed.example",
    },
  });
  t.is(res.status, 201);
  t.is(res.message, "Made It");
  const seen = upstream.requests[0];
  if (!seen) return t.fail("upstream saw nothing");
  t.is(seen.method, "GET");
  t.is(seen.url, "/hello/world?x=1&y=%20");
  t.is(seen.headers["x-custom"], "kept");
  t.is(seen.headers.host, host, "the client's Host reaches the workload");
  for (const hop of ["x-named-hop", "proxy-authorization", "te"]) t.false(hop in seen.headers, hop);
  t.not(seen.headers["keep-alive"], "timeout=99");
  t.is(seen.headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
  t.is(seen.headers["x-forwarded-proto"], "http");
  t.is(seen.headers["x-forwarded-host"], host);

  // And on the way back.
  t.is(res.headers["x-kept"], "yes");
  t.deepEqual(res.headers["set-cookie"], ["a=1", "b=2"]);
  t.false("proxy-authenticate" in res.headers);
  t.false("x-upstream-hop" in res.headers);
  t.deepEqual((res.json() as { url: string }).url, "/hello/world?x=1&y=%20");
});

test("proxy POST: the body arrives byte for byte; the workload's own 404 passes through untouched", async (t) => {
  const { api, upstream } = await proxied(t);
  const body = Buffer.alloc(256 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) % 251;
  const res = await call(`${api.url}/upload`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body,
  });
  t.is(res.status, 201);
  t.like(upstream.requests[0], {
    method: "POST",
    bodyLength: body.length,
    bodySha: createHash("sha256").update(body).digest("hex"),
  });
  t.is(upstream.requests[0]?.headers["content-length"], String(body.length));

  const missing = await call(`${api.url}/missing`);
  t.is(missing.status, 404);
  t.is(missing.body.toString(), "workload says no");
});

test("/api/* is the agent's: unknown API paths are 404 EE-NOT-FOUND and never reach the workload", async (t) => {
  const { api, upstream } = await proxied(t);
  for (const path of ["/api/unknown", "/api", "/api/", "/api/health/extra", "/api/health", "/api/logs"]) {
    const res = await call(`${api.url}${path}`, { method: "POST", badRequest: true });
    t.is(res.status, 404, path);
    t.is(errorOf(res).code, "EE-NOT-FOUND", path);
  }
  t.is(upstream.requests.length, 0);
  // Only the /api segment is reserved.
  t.is((await call(`${api.url}/apix`)).status, 201);
  t.is(upstream.requests[0]?.url, "/apix");
});

/** Sends `head` as is (any request-target, any method) and gives back everything the server answered. */
function rawExchange(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.write(head);
    // The server ends the exchange (Connection: close, or it closes a CONNECT it does not serve); this only
    // stops a server that leaves it open from hanging the test.
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

test("the proxy is no open proxy: absolute-form URLs, CONNECT and /api/.. tricks never reach the workload or an unsigned read", async (t) => {
  const { api, upstream } = await proxied(t);
  api.workloads.lines = [line("web", "secret log line")];
  const up = `127.0.0.1:${upstream.port}`;
  const status = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  const ask = (method: string, target: string, host = "agent") =>
    rawExchange(api.url, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  // Absolute-form and asterisk-form targets are the agent's, never forwarded (to the workload or anywhere).
  const absolute: [string, number][] = [
    [`http://${up}/hello`, 404],
    ["http://example.com/", 404],
    [`http://${up}/api/health`, 200], // the agent's own public health, not the workload's
  ];
  for (const [target, code] of absolute) {
    const answer = await ask("GET", target, up);
    t.is(status(answer), code, target);
    t.false(answer.includes("Made It"), target);
  }
  t.is(
    status(await ask("GET", `http://${up}/api/logs`, up)),
    401,
    "an absolute-form read still needs a signature",
  );
  t.is(status(await ask("OPTIONS", "*")), 404);
  // CONNECT is not served at all: the socket is closed without a tunnel.
  const tunnel = await ask("CONNECT", up, up);
  t.false(/^HTTP\/1\.1 2\d\d/.test(tunnel), tunnel.slice(0, 40));

  // Dot segments and encodings under /api stay the agent's and match none of its routes...
  for (const path of ["/api/../hello", "/api/%2e%2e/hello", "/api/./logs", "/api/logs/..", "/api//logs"])
    t.is(status(await ask("GET", path)), 404, path);
  t.is(upstream.requests.length, 0, "nothing above reached the workload");
  // ...and paths that only look like /api once normalised go to the workload verbatim, never to the agent's routes.
  const lookalikes = ["/x/../api/logs", "//api/logs", "/%61pi/logs", "/API/logs", "/api%2flogs"];
  for (const path of lookalikes) t.is(status(await ask("GET", path)), 201, path);
  t.deepEqual(
    upstream.requests.map((r) => r.url),
    lookalikes,
  );
  t.deepEqual(api.workloads.logCalls, [], "no log was read for any of them");
});

test("proxy without a workload is 503 EE-WORKLOAD-NONE; an upstream that refuses is 502 EE-WORKLOAD-UNREACHABLE", async (t) => {
  const api = await startApi(t);
  const none = await call(`${api.url}/anything`);
  t.is(none.status, 503);
  t.is(errorOf(none).code, "EE-WORKLOAD-NONE");

  api.workloads.target = { host: "127.0.0.1", port: await closedPort() };
  const down = await call(`${api.url}/anything`, { method: "POST", body: Buffer.from("payload") });
  t.is(down.status, 502);
  t.is(errorOf(down).code, "EE-WORKLOAD-UNREACHABLE");
  t.notRegex(errorOf(down).message, /127\.0\.0\.1|\d{4,5}/, "the target address stays in the log");
});

function openWs(url: string, headers?: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        reject(
          Object.assign(new Error("refused"), {
            status: res.statusCode,
            body: Buffer.concat(chunks).toString(),
          }),
        ),
      );
    });
    ws.once("error", reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once("message", (data, isBinary) => resolve({ data: data as Buffer, isBinary })),
  );
}

test("WebSocket through the proxy: text and binary echo, forwarded headers on the upgrade", async (t) => {
  const { api, upstream } = await proxied(t);
  const ws = await openWs(`${api.url.replace("http", "ws")}/socket?room=1`, { "x-custom": "kept" });
  t.teardown(() => ws.terminate());
  ws.send("hello");
  const text = await nextMessage(ws);
  t.is(text.data.toString(), "echo:hello");
  t.false(text.isBinary);
  const blob = Buffer.from([0, 1, 2, 255]);
  ws.send(blob);
  const binary = await nextMessage(ws);
  t.true(binary.isBinary);
  t.deepEqual(binary.data, blob);

  const headers = upstream.upgrades[0];
  t.is(headers?.["x-custom"], "kept");
  t.is(headers?.["x-forwarded-for"], "127.0.0.1");
  t.is(headers?.upgrade, "websocket");
});

test("WebSocket refusals: /api/* is 404, no workload 503, upstream down 502; closing the API ends open tunnels", async (t) => {
  const api = await startApi(t);
  const ws = api.url.replace("http", "ws");
  const refusal = (url: string) =>
    t.throwsAsync(openWs(url)) as Promise<(Error & { status?: number; body?: string }) | undefined>;

  const reserved = await refusal(`${ws}/api/health`);
  t.is(reserved?.status, 404);
  t.is(JSON.parse(reserved?.body ?? "{}").error.code, "EE-NOT-FOUND");
  const none = await refusal(`${ws}/socket`);
  t.is(none?.status, 503);
  t.is(JSON.parse(none?.body ?? "{}").error.code, "EE-WORKLOAD-NONE");
  api.workloads.target = { host: "127.0.0.1", port: await closedPort() };
  const down = await refusal(`${ws}/socket`);
  t.is(down?.status, 502);
  t.is(JSON.parse(down?.body ?? "{}").error.code, "EE-WORKLOAD-UNREACHABLE");

  const upstream = await startUpstream(t);
  api.workloads.target = { host: "127.0.0.1", port: upstream.port };
  const open = await openWs(`${ws}/socket`);
  const closed = new Promise<void>((resolve) => open.once("close", () => resolve()));
  await api.close();
  await closed;
  t.is(open.readyState, WebSocket.CLOSED);
});
