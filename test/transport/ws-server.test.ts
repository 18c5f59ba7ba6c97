// The agent channel's sending side: frames sent to one connection within a tick leave in one write (the socket
// is corked until the tick ends), arrive complete and in order, and a connection closed mid-tick is harmless.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import test from "ava";
import { WebSocket } from "ws";
import { silentLogger } from "../../lib/log.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import { decodeFrame, encodeFrame } from "../../transport/frame.ts";
import { AgentChannel, type ChannelSink } from "../../transport/ws-server.ts";

const sink: ChannelSink = {
  opened: (_connId, at) => ({
    nonce: new Uint8Array(randomBytes(32)),
    expires_at: at + 30_000,
    server_time: at,
  }),
  registerFrame: () => "agt_test",
  heartbeat: () => {},
  attestation: () => {},
  deployStatus: () => {},
  reply: () => {},
  logChunk: () => {},
  agentError: () => {},
  closed: () => {},
  refused: () => {},
};

/** A channel on a loopback server; counts the socket writes of each accepted TCP connection. */
async function startChannel(t: { teardown(fn: () => Promise<void>): void }) {
  const channel = new AgentChannel({ log: silentLogger });
  channel.bind(sink);
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

test("frames sent in one tick leave in one write, complete and in order", async (t) => {
  const { channel, writes, url } = await startChannel(t);
  const { ws, frames } = await connect(url);
  t.teardown(() => ws.terminate());
  t.is(frames[0]?.type, "challenge");
  await new Promise((r) => setTimeout(r, 20));
  const before = writes[0]!;

  for (let seq = 1; seq <= 50; seq++)
    channel.send(1, encodeFrame("heartbeat_ack", { seq, server_time: Date.now() }, { re: seq }));
  await until(() => frames.length === 51);
  t.deepEqual(
    frames.slice(1).map((f) => (f.type === "heartbeat_ack" ? f.body.seq : -1)),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  t.is(writes[0]! - before, 1, "fifty frames, one socket write");

  // The socket is uncorked again: a frame in a later tick is not held back.
  channel.send(1, encodeFrame("heartbeat_ack", { seq: 51, server_time: Date.now() }, { re: 51 }));
  await until(() => frames.length === 52);
  t.is(frames[51]?.type, "heartbeat_ack");
});

test("a connection closed while corked is dropped without error", async (t) => {
  const { channel, url } = await startChannel(t);
  const { ws } = await connect(url);
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  channel.send(1, encodeFrame("heartbeat_ack", { seq: 1, server_time: Date.now() }, { re: 1 }));
  channel.close(1, 4001, "EE-PROTO-ABUSE");
  channel.send(1, encodeFrame("heartbeat_ack", { seq: 2, server_time: Date.now() }, { re: 2 }));
  t.is(await closed, 4001);
  // Sending to a connection that is gone is a no-op.
  await until(() => channel.connectionCount === 0);
  channel.send(1, encodeFrame("heartbeat_ack", { seq: 3, server_time: Date.now() }, { re: 3 }));
  t.pass();
});
