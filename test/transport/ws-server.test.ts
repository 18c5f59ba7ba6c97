// The agent channel's sending side: the 101 and the challenge leave in one write, as do the replies to one read of
// inbound frames (complete and in order); a frame sent from anywhere else leaves at once; a connection closed while
// corked is harmless; an agent that stops reading is dropped once the cap's worth of frames waits for it, one that
// reads the same volume is not.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import test from "ava";
import { WebSocket } from "ws";
import { CP_DEFAULTS } from "../../actors/cp-defaults.ts";
import { silentLogger } from "../../lib/log.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import { decodeFrame, encodeFrame } from "../../transport/frame.ts";
import { AgentChannel, type AgentChannelOptions, type ChannelSink } from "../../transport/ws-server.ts";

const CP_HANDSHAKE = {
  deadlineMs: CP_DEFAULTS.handshakeMs,
  maxPendingPerAddress: CP_DEFAULTS.maxPendingPerAddress,
  maxPending: CP_DEFAULTS.maxPending,
};

const sink: ChannelSink & { onHeartbeat?: (connId: number, seq: number, id: number) => void } = {
  opened: (_connId, at) => ({
    nonce: new Uint8Array(randomBytes(32)),
    expires_at: at + 30_000,
    server_time: at,
  }),
  registerFrame: () => "agt_test",
  heartbeat(_agentId, connId, env) {
    this.onHeartbeat?.(connId, env.body.seq, env.id!);
  },
  attestation: () => {},
  deployStatus: () => {},
  reply: () => {},
  logChunk: () => {},
  agentError: () => {},
  closed: () => {},
  refused: () => {},
};

/** A channel on a loopback server; counts the socket writes of each accepted TCP connection. */
async function startChannel(
  t: { teardown(fn: () => Promise<void>): void },
  opts: Partial<Omit<AgentChannelOptions, "log">> = {},
  channelSink: ChannelSink = sink,
) {
  const channel = new AgentChannel({ log: silentLogger, handshake: CP_HANDSHAKE, ...opts });
  channel.bind(channelSink);
  const server: Server = createServer();
  const writes: number[] = [];
  server.on("connection", (socket: Socket) => {
    const i = writes.push(0) - 1;
    const s = socket as Socket & {
      _writev: (...a: unknown[]) => unknown;
      _write: (...a: unknown[]) => unknown;
    };
    const writev = s._writev.bind(s);
    const write = s._write.bind(s);
    s._writev = (...a) => {
      writes[i]!++;
      return writev(...a);
    };
    s._write = (...a) => {
      writes[i]!++;
      return write(...a);
    };
  });
  channel.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(async () => {
    await channel.shutdown();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}${CONNECT_PATH}`;
  return { channel, writes, url };
}

/** A client that collects every decoded frame; resolves once the challenge is in. */
async function connect(url: string): Promise<{ ws: WebSocket; frames: ReturnType<typeof decodeFrame>[] }> {
  const ws = new WebSocket(url);
  const frames: ReturnType<typeof decodeFrame>[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on("message", (data: Buffer) => {
      frames.push(decodeFrame(data, "agent"));
      if (frames.length === 1) resolve();
    });
    ws.once("error", reject);
  });
  return { ws, frames };
}

const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

/** A register body the test sink accepts as is (it checks nothing). */
const REGISTER = {
  vm_name: "vm-1",
  node_size: "small",
  datacenter: "test:local",
  agent_pubkey: new Uint8Array(32),
  nonce: new Uint8Array(32),
  quote: new Uint8Array(8),
  pop: new Uint8Array(64),
};

test("the replies to a burst of frames in one read leave in one write, complete and in order", async (t) => {
  const { channel, writes, url } = await startChannel(t);
  sink.onHeartbeat = (connId, seq, id) =>
    channel.send("agt_test", "heartbeat_ack", { seq, server_time: Date.now() }, { re: id, conn: connId });
  t.teardown(() => {
    sink.onHeartbeat = undefined;
  });
  const { ws, frames } = await connect(url);
  t.teardown(() => ws.terminate());
  t.is(frames[0]?.type, "challenge");
  t.is(writes[0], 1, "the 101 and the challenge leave in one write");
  ws.send(encodeFrame("register", REGISTER, { id: 1 }));
  await until(() => channel.connectionCount === 1 && channel.pendingCount === 0);
  const before = writes[0]!;

  // Fifty heartbeats in one TCP write from the agent: one read at the CP.
  const socket = (ws as unknown as { _socket: Socket })._socket;
  socket.cork();
  for (let seq = 1; seq <= 50; seq++)
    ws.send(encodeFrame("heartbeat", { seq, sent_at: Date.now() }, { id: 100 + seq }));
  socket.uncork();
  await until(() => frames.length === 51);
  t.deepEqual(
    frames.slice(1).map((f) => (f.type === "heartbeat_ack" ? [f.body.seq, f.re] : -1)),
    Array.from({ length: 50 }, (_, i) => [i + 1, 101 + i]),
  );
  t.is(writes[0]! - before, 1, "fifty acks, one socket write");

  // A frame sent outside the handling of a read is written before send returns.
  const beforeLone = writes[0]!;
  channel.send("agt_test", "heartbeat_ack", { seq: 51, server_time: Date.now() }, { re: 51 });
  t.is(writes[0]! - beforeLone, 1, "written synchronously");
  await until(() => frames.length === 52);
  t.is(frames[51]?.type, "heartbeat_ack");
});

test("a connection closed while corked is dropped without error", async (t) => {
  const { channel, url } = await startChannel(t);
  const { ws } = await connect(url);
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.send(encodeFrame("register", REGISTER, { id: 1 }));
  await until(() => channel.pendingCount === 0);
  channel.send("agt_test", "heartbeat_ack", { seq: 1, server_time: Date.now() }, { re: 1 });
  channel.close(1, 4001, "EE-PROTO-ABUSE");
  channel.send("agt_test", "heartbeat_ack", { seq: 2, server_time: Date.now() }, { re: 2 });
  t.is(await closed, 4001);
  // Sending to an agent whose connection is gone is a no-op.
  await until(() => channel.connectionCount === 0);
  t.false(channel.send("agt_test", "heartbeat_ack", { seq: 3, server_time: Date.now() }, { re: 3 }));
});

test("an agent that stops reading is dropped at the send-buffer cap; one that reads the same volume is not", async (t) => {
  const refusals: string[] = [];
  const { channel, url } = await startChannel(
    t,
    { maxSendBufferBytes: 256 * 1024 },
    { ...sink, refused: (_connId, code) => refusals.push(code) },
  );
  // A deploy frame may carry a compose file this large; 32 KiB per frame fills the buffers quickly.
  const big = (n: number) =>
    channel.send(
      "agt_test",
      "deploy",
      { deployment_id: `dep-${n}`, app: "web", compose: "x".repeat(32 * 1024) },
      { id: 1000 + n },
    );
  // Loopback socket buffers absorb several MiB before anything waits in ws: 64 MiB is far beyond them.
  const volume = 2048;

  const reader = await connect(url);
  t.teardown(() => reader.ws.terminate());
  reader.ws.send(encodeFrame("register", REGISTER, { id: 1 }));
  await until(() => channel.connectionCount === 1 && channel.pendingCount === 0);
  // Sent in bursts the client keeps up with, as an agent that reads does.
  for (let n = 0; n < volume; n += 4) {
    for (let i = n; i < n + 4; i++) big(i);
    await until(() => reader.frames.length >= n + 5);
  }
  t.is(reader.frames.length, volume + 1);
  t.is(channel.connectionCount, 1, "a reading agent keeps its connection");
  t.deepEqual(refusals, []);
  reader.ws.terminate();
  await until(() => channel.connectionCount === 0);

  const stalled = await connect(url);
  t.teardown(() => stalled.ws.terminate());
  stalled.ws.send(encodeFrame("register", REGISTER, { id: 1 }));
  await until(() => channel.connectionCount === 1 && channel.pendingCount === 0);
  (stalled.ws as unknown as { _socket: Socket })._socket.pause();
  let sent = 0;
  while (sent < volume && channel.connectionCount === 1) {
    for (let i = 0; i < 4; i++) big(sent++);
    await new Promise((r) => setImmediate(r));
  }
  t.true(sent < volume, `${sent} of ${volume} frames sent before the drop`);
  t.is(channel.connectionCount, 0);
  t.deepEqual(refusals, ["EE-PROTO-SLOW-CONSUMER"]);
});
