// The echo baseline's server, as its own process: a bare `ws` server (no compression, as the CP's) that unpacks
// each binary message with msgpackr and packs an ack of the CP's heartbeat_ack shape back. It is what the CP's
// heartbeat path would cost with no validation, no actor and no timers: the ceiling heartbeat ingest is judged by.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pack, unpack } from "msgpackr";
import { WebSocketServer } from "ws";
import { childArgs, serveRequests } from "./child.ts";

const server = createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const m = unpack(data as Buffer) as { v: number; id?: number; body: { seq: number } };
    ws.send(
      pack({ v: m.v, type: "heartbeat_ack", re: m.id, body: { seq: m.body.seq, server_time: Date.now() } }),
    );
  });
  ws.on("error", () => {});
});
await new Promise<void>((resolve) => server.listen(childArgs<{ port: number }>().port, "127.0.0.1", resolve));

// No requests: serving only ties the server's life to the parent's.
serveRequests({});
process.send?.({ id: 0, ok: true, result: { port: (server.address() as AddressInfo).port } });
