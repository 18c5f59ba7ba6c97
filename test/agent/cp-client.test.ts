// The agent's CP client over a real loopback WebSocket, against a scripted stand-in CP written here (frames in,
// frames out), so the client's framing, registration body, heartbeats and bad-frame handling are checked alone.
import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import test, { type ExecutionContext } from "ava";
import { type WebSocket, WebSocketServer } from "ws";
import { type CpClient, startCpClient } from "../../agent/cp-client.ts";
import { agentIdFromPubkey, rawPublicKey, verifyPop } from "../../attestation/agent-key.ts";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { silentLogger } from "../../lib/log.ts";
import type { ConnectionView } from "../../machines/agent-connection.ts";
import {
  type AnyEnvelope,
  CONNECT_PATH,
  type Envelope,
  MAX_CP_FRAME_BYTES,
  type MessageBody,
  type MessageType,
} from "../../spec/protocol.ts";
import { decodeFrame, encodeFrame } from "../../transport/frame.ts";

/** The quote is REPORTDATA itself, so the test can see exactly what was bound. */
const echoProvider: QuoteProvider = { name: "test", getQuote: async (rd) => new Uint8Array(rd) };

/** One connection as the stand-in CP sees it. */
class CpConn {
  readonly ws: WebSocket;
  readonly frames: AnyEnvelope[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];
  #nextId = 100;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on("message", (data) => {
      this.frames.push(decodeFrame(data as Buffer, "cp"));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send<T extends MessageType>(type: T, body: MessageBody<T>, re?: number): number {
    const id = this.#nextId++;
    this.ws.send(encodeFrame(type, body, re === undefined ? { id } : { id, re }));
    return id;
  }

  async next<T extends MessageType>(type: T): Promise<AnyEnvelope & { type: T; body: MessageBody<T> }> {
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0] as never;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Challenge, check nothing, admit, asking for heartbeats every `heartbeatMs`. */
  async admit(
    nonce = new Uint8Array(32).fill(5),
    heartbeatMs = 100,
  ): Promise<Envelope<"register"> & { challengeId: number }> {
    const challengeId = this.send("challenge", {
      nonce,
      expires_at: Date.now() + 10_000,
      server_time: Date.now(),
    });
    const reg = await this.next("register");
    this.send(
      "registered",
      {
        agent_id: "x",
        session_id: "ses_test",
        heartbeat_ms: heartbeatMs,
        stale_after_ms: 3 * heartbeatMs,
        server_time: Date.now(),
      },
      reg.id,
    );
    return Object.assign(reg, { challengeId });
  }
}

async function standInCp(t: ExecutionContext) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: CONNECT_PATH });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const conns: CpConn[] = [];
  const waiters: (() => void)[] = [];
  wss.on("connection", (ws) => {
    conns.push(new CpConn(ws));
    for (const w of waiters.splice(0)) w();
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    /** The n-th connection (0-based), once it arrives. */
    async conn(n: number): Promise<CpConn> {
      while (conns.length <= n) await new Promise<void>((resolve) => waiters.push(resolve));
      return conns[n]!;
    },
  };
}

function newIdentity() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pub = rawPublicKey(publicKey);
  return { agentId: agentIdFromPubkey(pub), publicKey: pub, privateKey };
}

function client(
  t: ExecutionContext,
  url: string,
  over: { heartbeatMs?: number; provider?: QuoteProvider } = {},
) {
  const identity = newIdentity();
  const cp = startCpClient({
    url,
    identity,
    registration: { vm_name: "vm-t", node_size: "tiny", datacenter: "baremetal:local" },
    heartbeatMs: over.heartbeatMs ?? 100,
    quoteProvider: over.provider ?? echoProvider,
    startedAt: 1_700_000_000_000,
    agentVersion: "9.9.9",
    log: silentLogger,
    jitterSeed: 1,
  });
  t.teardown(() => cp.stop());
  return { cp, identity };
}

function until(
  cp: CpClient,
  pred: (v: ConnectionView) => boolean,
  timeoutMs = 5000,
): Promise<ConnectionView> {
  if (pred(cp.view())) return Promise.resolve(cp.view());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out; link is ${JSON.stringify(cp.view())}`)),
      timeoutMs,
    );
    const off = cp.subscribe((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

test("answers the challenge with a register that binds the nonce and its key, then heartbeats", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent, identity } = client(t, cp.url);
  const conn = await cp.conn(0);
  const nonce = new Uint8Array(32).fill(9);
  const reg = await conn.admit(nonce);

  t.is(reg.re, reg.challengeId, "register answers the challenge frame");
  t.like(reg.body, {
    vm_name: "vm-t",
    node_size: "tiny",
    datacenter: "baremetal:local",
    agent_version: "9.9.9",
  });
  t.deepEqual(new Uint8Array(reg.body.agent_pubkey), identity.publicKey);
  t.deepEqual(new Uint8Array(reg.body.nonce), nonce);
  t.deepEqual(
    new Uint8Array(reg.body.quote),
    new Uint8Array(reportDataFor("register", nonce, identity.publicKey)),
  );
  t.true(verifyPop(identity.publicKey, nonce, reg.body.pop));
  t.deepEqual(reg.body.snapshot, { workload: null, heartbeat_seq: 0, started_at: 1_700_000_000_000 });

  const view = await until(agent, (v) => v.registered);
  t.like(view, { state: "registered", sessionId: "ses_test", lastError: null });

  const ids: number[] = [];
  for (let seq = 1; seq <= 3; seq++) {
    const hb = await conn.next("heartbeat");
    t.is(hb.body.seq, seq);
    t.is(hb.body.workload, null);
    t.true(Math.abs(hb.body.sent_at - Date.now()) < 5000);
    ids.push(hb.id!);
    conn.send("heartbeat_ack", { seq, server_time: Date.now() }, hb.id);
  }
  t.true(ids[0]! < ids[1]! && ids[1]! < ids[2]!, `ids increase: ${ids}`);
  t.is(agent.view().state, "registered");
});

test("bad frames from the CP are answered with error frames and never break the link", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url);
  const conn = await cp.conn(0);
  await conn.admit(undefined, 5000);
  await until(agent, (v) => v.registered);

  conn.ws.send(Buffer.from([0xc1, 0xff, 0x00]));
  t.like((await conn.next("error")).body, { code: "EE-PROTO-UNDECODABLE" });

  conn.ws.send("hello");
  t.like((await conn.next("error")).body, { code: "EE-PROTO-TEXT-FRAME" });

  // A frame only an agent may send: refused with the offending id in `re`.
  const wrongWay = encodeFrame("heartbeat", { seq: 1, sent_at: 0, workload: null }, { id: 77 });
  conn.ws.send(wrongWay);
  const e3 = await conn.next("error");
  t.is(e3.body.code, "EE-PROTO-UNKNOWN-TYPE");
  t.is(e3.re, 77);

  // Valid, but not now: a second challenge while registered.
  const id = conn.send("challenge", { nonce: new Uint8Array(32), expires_at: 0, server_time: 0 });
  const e4 = await conn.next("error");
  t.is(e4.body.code, "EE-PROTO-UNEXPECTED");
  t.is(e4.re, id);

  t.is(agent.view().state, "registered");
});

test("a frame from the CP over MAX_CP_FRAME_BYTES is not buffered: the agent closes with 1009 and reconnects", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url);
  const conn = await cp.conn(0);
  await conn.admit(undefined, 5000);
  await until(agent, (v) => v.registered);

  conn.ws.send(Buffer.alloc(MAX_CP_FRAME_BYTES + 1));
  t.is((await conn.closed).code, 1009);
  await (await cp.conn(1)).admit(undefined, 5000);
  await until(agent, (v) => v.registered);
});

test("a refusal is kept as last_error and the agent comes back after a backoff", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url);
  const first = await cp.conn(0);
  first.send("challenge", {
    nonce: new Uint8Array(32),
    expires_at: Date.now() + 10_000,
    server_time: Date.now(),
  });
  const reg = await first.next("register");
  first.send("error", { code: "EE-ATT-ROOT-UNTRUSTED", message: "not trusted" }, reg.id);
  first.ws.close(4003, "registration refused");
  const down = await until(agent, (v) => v.state === "disconnected");
  t.is(down.lastError, "EE-ATT-ROOT-UNTRUSTED");
  t.like(down.lastDisconnect, { reason: "closed", closeCode: 4003 });
  t.false(down.registered);
  t.true(down.retryInMs < 500);

  const second = await cp.conn(1);
  await second.admit(undefined, 5000);
  const up = await until(agent, (v) => v.registered);
  t.is(up.lastError, null);
  t.is(up.attempt, 0);
});

test("the agent follows the heartbeat interval the CP sends in registered, whatever it was configured with", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url, { heartbeatMs: 60_000 });
  const conn = await cp.conn(0);
  await conn.admit(undefined, 100);
  t.is((await until(agent, (v) => v.registered)).heartbeatMs, 100);
  for (let seq = 1; seq <= 3; seq++) {
    const hb = await conn.next("heartbeat");
    t.is(hb.body.seq, seq);
    conn.send("heartbeat_ack", { seq, server_time: Date.now() }, hb.id);
  }
});

test("a CP that stops acking is dropped after three unacknowledged heartbeats", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url, { heartbeatMs: 100 });
  const conn = await cp.conn(0);
  await conn.admit();
  await until(agent, (v) => v.registered);
  const down = await until(agent, (v) => v.state === "disconnected", 3000);
  t.is(down.lastDisconnect?.reason, "heartbeat_timeout");
  t.is((await conn.closed).code, 1001);
  t.is(conn.frames.filter((f) => f.type === "heartbeat").length, 3);
});

test("a quote provider failure is reported as EE-ATT-PROVIDER and closes with 1011", async (t) => {
  const cp = await standInCp(t);
  const failing: QuoteProvider = {
    name: "broken",
    getQuote: async () => {
      throw new Error("no quote today");
    },
  };
  const { cp: agent } = client(t, cp.url, { provider: failing });
  const conn = await cp.conn(0);
  conn.send("challenge", {
    nonce: new Uint8Array(32),
    expires_at: Date.now() + 10_000,
    server_time: Date.now(),
  });
  const down = await until(agent, (v) => v.state === "disconnected");
  t.is(down.lastError, "EE-ATT-PROVIDER");
  t.is((await conn.closed).code, 1011);
});

test("stop closes the socket with 1000 and resolves once it is closed", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url);
  const conn = await cp.conn(0);
  await conn.admit();
  await until(agent, (v) => v.registered);
  await agent.stop();
  t.like(await conn.closed, { code: 1000, reason: "agent stopping" });
  t.is(agent.view().state, "stopped");
});

test("a closed port means connect, fail, back off, try again", async (t) => {
  const cp = await standInCp(t);
  const { cp: agent } = client(t, cp.url.replace(/:\d+$/, ":1"));
  const down = await until(agent, (v) => v.state === "disconnected");
  t.is(down.lastDisconnect?.reason, "closed");
  t.is(down.attempt, 1);
  await until(agent, (v) => v.attempt >= 2 && v.state === "disconnected", 5000);
  t.pass();
});
