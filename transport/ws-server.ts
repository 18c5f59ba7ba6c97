// The CP end of the agent channel: accepts WebSocket upgrades on CONNECT_PATH, sends the challenge, decodes and
// validates every inbound frame, and hands valid messages to a ChannelSink (the CP runtime). It owns sockets,
// per-connection abuse counting and close codes, and the handshake limits: the deadline to register and the caps on
// connections that have not registered yet (per source address and in all). It knows nothing about actors.
// Actors reach agents through send(agentId, type, body): encoding and framing stay here.
// Imports spec/, lib/ and frame only.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../lib/log.ts";
import { sourceOf } from "../lib/source-address.ts";
import { EeError, type ErrorCode, ProtocolError, toEeError, WS_CLOSE } from "../spec/errors.ts";
import {
  type AnyEnvelope,
  CONNECT_PATH,
  MAX_CP_FRAME_BYTES,
  MAX_FRAME_BYTES,
  type MessageBody,
  type MessageType,
} from "../spec/protocol.ts";
import { decodeFrame, encodeFrame, FrameError } from "./frame.ts";

/** What the channel needs from the CP runtime. Throwing an EeError from registerFrame refuses the agent. */
export interface ChannelSink {
  /** A socket opened: issue its challenge. */
  opened(connId: number, at: number): MessageBody<"challenge">;
  /** A register frame arrived on a connection that has not registered; returns the agent id it claims. */
  registerFrame(connId: number, sessionId: string, body: MessageBody<"register">, at: number): string;
  heartbeat(agentId: string, connId: number, env: AnyEnvelope & { type: "heartbeat" }): void;
  /** The answer to a re-attestation request (`re` = the request's id). */
  attestation(agentId: string, connId: number, env: AnyEnvelope & { type: "attestation" }): void;
  /** A deploy or undeploy step from the agent. */
  deployStatus(agentId: string, connId: number, env: AnyEnvelope & { type: "deploy_status" }): void;
  /** The answer to a stats or snapshot request (`re` = the request's id). */
  reply(agentId: string, connId: number, env: AnyEnvelope & { type: "reply" }): void;
  /** A batch of log lines answering a logs request (`re` = the request's id). */
  logChunk(agentId: string, connId: number, env: AnyEnvelope & { type: "log_chunk" }): void;
  /** An error frame from a registered agent, usually answering a request (`re`). */
  agentError(agentId: string, connId: number, env: AnyEnvelope & { type: "error" }): void;
  /** A socket closed (agentId is null when it never got past the gate). */
  closed(connId: number, agentId: string | null): void;
  /**
   * A connection was refused before any actor saw it (gate failures, abuse, handshake limits): for the audit trail
   * and the metrics. connId is null when the upgrade itself was refused (a pending-connection cap).
   */
  refused(connId: number | null, code: ErrorCode, remote: string | undefined): void;
}

/**
 * What an unauthenticated peer may hold (defaults in actors/cp-defaults.ts, documented in spec/protocol.md):
 * a connection counts as pending from its upgrade until its register frame passes the gate (nonce and proof of
 * possession) or it closes. Registered connections never count and are never refused by these caps.
 */
export interface HandshakeLimits {
  /** A connection that has not sent a register frame this long after its challenge is closed with 4004. */
  deadlineMs: number;
  /** Pending connections from one source (an IPv4 address, an IPv6 /64) beyond which upgrades get HTTP 429. */
  maxPendingPerAddress: number;
  /** Pending connections in all beyond which upgrades get HTTP 503. */
  maxPending: number;
}

export interface AgentChannelOptions {
  log: Logger;
  handshake: HandshakeLimits;
  /** Bad frames tolerated per connection within badFrameWindowMs before it is closed as abusive. */
  maxBadFrames?: number;
  badFrameWindowMs?: number;
  /** Bytes queued for one connection beyond which the agent counts as not reading and is dropped. */
  maxSendBufferBytes?: number;
}

/**
 * A reading agent can have at most a deploy in flight and one more queued behind it, each up to
 * MAX_CP_FRAME_BYTES, plus small frames (acks, requests) that a megabyte covers many times over; anything beyond
 * that is a peer that stopped reading, and without a cap ws would buffer for it without bound.
 */
export const DEFAULT_MAX_SEND_BUFFER_BYTES = 2 * MAX_CP_FRAME_BYTES + 1024 * 1024;

/** How long after its nonce expires an unregistered connection is closed (4004). */
export const REGISTER_GRACE_MS = 2000;

/** How long a refused peer has to answer the close frame before its socket is dropped. */
const REFUSED_CLOSE_GRACE_MS = 5000;

interface Connection {
  id: number;
  sessionId: string;
  ws: WebSocket;
  /** The TCP socket under `ws`, corked while the frames of one read from it are handled. */
  socket: Socket;
  corked: boolean;
  remote: string | undefined;
  /** Where this connection counts against the pending caps until it registers or closes; null once settled. */
  pendingSource: string | null;
  agentId: string | null;
  badFrames: number[];
  registerTimer: NodeJS.Timeout | null;
}

export class AgentChannel {
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
  });
  readonly #conns = new Map<number, Connection>();
  /** Each registered agent's current connection: the latest that passed the gate for it. */
  readonly #byAgent = new Map<string, Connection>();
  readonly #log: Logger;
  readonly #maxBad: number;
  readonly #badWindowMs: number;
  readonly #maxSendBuffer: number;
  readonly #handshake: HandshakeLimits;
  /** Pending (not yet registered) connections per source, and their total. */
  readonly #pendingBySource = new Map<string, number>();
  #pending = 0;
  #sink: ChannelSink | null = null;
  #nextId = 1;
  #nextFrameId = 1;
  #closing = false;

  constructor(opts: AgentChannelOptions) {
    this.#log = opts.log;
    this.#maxBad = opts.maxBadFrames ?? 5;
    this.#badWindowMs = opts.badFrameWindowMs ?? 10_000;
    this.#maxSendBuffer = opts.maxSendBufferBytes ?? DEFAULT_MAX_SEND_BUFFER_BYTES;
    this.#handshake = opts.handshake;
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Connections that have not registered yet (what the handshake caps bound). */
  get pendingCount(): number {
    return this.#pending;
  }

  /** The sink is bound after construction because the runtime needs the channel (as its link) first. */
  bind(sink: ChannelSink): void {
    this.#sink = sink;
  }

  /** Routes upgrades for CONNECT_PATH on server to this channel; other upgrade paths are refused. */
  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? "").split("?")[0];
      if (path !== CONNECT_PATH || this.#closing) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const source = sourceOf(req.socket.remoteAddress);
      const over = this.#overPendingCap(source);
      if (over) {
        this.#refuseUpgrade(socket, over, req.socket.remoteAddress);
        return;
      }
      // The 101 and the challenge leave in one write: with no verifyClient and no extensions, handleUpgrade
      // answers and calls back synchronously (a storm's CP profile had a third of its writes on this).
      socket.cork();
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req));
      socket.uncork();
    });
  }

  /** The cap this source's next upgrade would break, if any; checked before ws does any work for it. */
  #overPendingCap(source: string): ProtocolError | null {
    const h = this.#handshake;
    if ((this.#pendingBySource.get(source) ?? 0) >= h.maxPendingPerAddress)
      return new ProtocolError(
        "EE-PROTO-PENDING-ADDRESS",
        `${h.maxPendingPerAddress} connections from this address have not registered yet`,
      );
    if (this.#pending >= h.maxPending)
      return new ProtocolError(
        "EE-PROTO-PENDING-GLOBAL",
        `${h.maxPending} connections have not registered yet`,
      );
    return null;
  }

  /**
   * Answers the upgrade with the error's HTTP status (429 or 503) and a Retry-After, then drops the socket: no
   * WebSocket, no challenge, no nonce. The agent's client sees a failed connect and retries with its backoff.
   */
  #refuseUpgrade(socket: Duplex, err: ProtocolError, remote: string | undefined): void {
    const body = JSON.stringify(err.toBody());
    // Destroyed once the answer is flushed: a peer that never closes its side must not keep the socket.
    socket.end(
      `HTTP/1.1 ${err.httpStatus} ${err.httpStatus === 429 ? "Too Many Requests" : "Service Unavailable"}\r\n` +
        `Connection: close\r\nRetry-After: ${Math.ceil(this.#handshake.deadlineMs / 1000)}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
    this.#sink?.refused(null, err.code, remote);
  }

  /** The connection no longer counts as pending (it registered or closed); idempotent. */
  #settle(conn: Connection): void {
    const source = conn.pendingSource;
    if (source === null) return;
    conn.pendingSource = null;
    this.#pending--;
    const n = (this.#pendingBySource.get(source) ?? 1) - 1;
    if (n === 0) this.#pendingBySource.delete(source);
    else this.#pendingBySource.set(source, n);
  }

  nextFrameId(): number {
    return this.#nextFrameId++;
  }

  /**
   * Encodes and sends one frame to the agent's current connection (`ids.conn`: only while it is still that one);
   * false when the agent has no open connection. A frame sent while the connection's own inbound frames are being
   * handled (an ack, a registered) waits for the rest of that read, so a pipelining agent's burst of heartbeats is
   * acknowledged with one write instead of one each (test/load: per-frame writes were the largest cost of heartbeat
   * ingest). Any other frame (a deploy from a REST request) leaves at once: holding it to the end of the loop's
   * turn made it wait for every other request and frame handled in that turn.
   * An agent with more than maxSendBufferBytes waiting for it is dropped (see #dropSlowConsumer).
   */
  send<T extends MessageType>(
    agentId: string,
    type: T,
    body: MessageBody<T>,
    ids: { id?: number; re?: number; conn?: number } = {},
  ): boolean {
    const c = this.#byAgent.get(agentId);
    if (!c || (ids.conn !== undefined && ids.conn !== c.id) || c.ws.readyState !== WebSocket.OPEN)
      return false;
    c.ws.send(encodeFrame(type, body, ids), { binary: true });
    if (c.ws.bufferedAmount > this.#maxSendBuffer) this.#dropSlowConsumer(c);
    return true;
  }

  /**
   * Terminates rather than closes: a close frame would wait behind the same backlog, while terminate frees it
   * now. The agent reconnects with its backoff, as after any drop.
   */
  #dropSlowConsumer(c: Connection): void {
    const code: ErrorCode = "EE-PROTO-SLOW-CONSUMER";
    this.#log.warn(
      { conn: c.id, agent_id: c.agentId, remote: c.remote, buffered: c.ws.bufferedAmount, code },
      "agent stopped reading; dropping its connection",
    );
    this.#sink?.refused(c.id, code, c.remote);
    c.ws.terminate();
  }

  /**
   * Corks the socket until the current read has been handled: ws emits every frame of one read synchronously,
   * and the microtask runs once they all have.
   */
  #holdReplies(c: Connection): void {
    if (c.corked) return;
    c.corked = true;
    c.socket.cork();
    queueMicrotask(() => {
      c.corked = false;
      c.socket.uncork();
    });
  }

  close(connId: number, code: number, reason: string): void {
    const c = this.#conns.get(connId);
    if (c) c.ws.close(code, reason);
  }

  /** Closes every connection with 1001 so agents reconnect to the next CP. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    const closed = [...this.#conns.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.ws.once("close", () => resolve());
          c.ws.close(WS_CLOSE.goingAway, "EE-PROTO-SHUTDOWN");
          setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 1000).unref();
        }),
    );
    await Promise.all(closed);
    this.#wss.close();
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    const sink = this.#sink;
    if (!sink) throw new Error("AgentChannel used before bind()");
    const conn: Connection = {
      id: this.#nextId++,
      sessionId: randomUUID(),
      ws,
      socket: req.socket,
      corked: false,
      remote: req.socket.remoteAddress,
      pendingSource: sourceOf(req.socket.remoteAddress),
      agentId: null,
      badFrames: [],
      registerTimer: null,
    };
    this.#conns.set(conn.id, conn);
    this.#pending++;
    this.#pendingBySource.set(conn.pendingSource!, (this.#pendingBySource.get(conn.pendingSource!) ?? 0) + 1);
    ws.on("message", (data, isBinary) => this.#onMessage(conn, data, isBinary));
    // ws emits 'error' for protocol violations (e.g. a frame over maxPayload, closed with 1009 by ws itself);
    // an unhandled 'error' event would crash the process.
    ws.on("error", (err) => this.#log.debug({ conn: conn.id, err: err.message }, "agent socket error"));
    ws.on("close", () => this.#onClose(conn));

    const challenge = sink.opened(conn.id, Date.now());
    ws.send(encodeFrame("challenge", challenge), { binary: true });
    // The handshake deadline, unless the nonce expires first: then the close comes a grace period after the
    // expiry, so a late register is told its nonce expired.
    conn.registerTimer = setTimeout(
      () => this.#refuse(conn, new ProtocolError("EE-PROTO-REGISTER-TIMEOUT")),
      Math.min(
        this.#handshake.deadlineMs,
        Math.max(0, challenge.expires_at - Date.now()) + REGISTER_GRACE_MS,
      ),
    );
  }

  #onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    const sink = this.#sink!;
    this.#holdReplies(conn);
    if (!isBinary) {
      this.#refuse(conn, new ProtocolError("EE-PROTO-TEXT-FRAME"));
      return;
    }
    let env: AnyEnvelope;
    try {
      env = decodeFrame(toBytes(data), "cp");
    } catch (err) {
      this.#badFrame(conn, err);
      return;
    }
    try {
      switch (env.type) {
        case "register": {
          if (conn.agentId !== null)
            throw new FrameError("EE-PROTO-UNEXPECTED", "already registered on this connection");
          if (conn.registerTimer) clearTimeout(conn.registerTimer);
          conn.registerTimer = null;
          conn.agentId = sink.registerFrame(conn.id, conn.sessionId, env.body, Date.now());
          this.#byAgent.set(conn.agentId, conn);
          this.#settle(conn);
          return;
        }
        case "heartbeat":
          sink.heartbeat(this.#registered(conn, env.type), conn.id, env);
          return;
        case "attestation":
          sink.attestation(this.#registered(conn, env.type), conn.id, env);
          return;
        case "deploy_status":
          sink.deployStatus(this.#registered(conn, env.type), conn.id, env);
          return;
        case "reply":
          sink.reply(this.#registered(conn, env.type), conn.id, env);
          return;
        case "log_chunk":
          sink.logChunk(this.#registered(conn, env.type), conn.id, env);
          return;
        case "error":
          if (conn.agentId === null) {
            this.#log.warn({ conn: conn.id, code: env.body.code }, "unregistered peer reported an error");
            return;
          }
          sink.agentError(conn.agentId, conn.id, env);
          return;
        default:
          throw new FrameError("EE-PROTO-UNEXPECTED", `"${env.type}" is not handled by the control plane`);
      }
    } catch (err) {
      if (err instanceof FrameError) {
        err.re = env.id;
        this.#badFrame(conn, err);
      } else this.#refuse(conn, toEeError(err), env.id);
    }
  }

  /** The connection's agent id; a frame other than register before registration is a protocol error. */
  #registered(conn: Connection, type: string): string {
    if (conn.agentId === null) throw new FrameError("EE-PROTO-UNEXPECTED", `${type} before register`);
    return conn.agentId;
  }

  #badFrame(conn: Connection, err: unknown): void {
    const e = err instanceof EeError ? err : toEeError(err);
    const re = err instanceof FrameError ? err.re : undefined;
    // An undecodable frame means the peer does not speak the protocol: no point in a conversation.
    if (
      e.code === "EE-PROTO-UNDECODABLE" ||
      e.code === "EE-PROTO-VERSION" ||
      e.code === "EE-PROTO-TOO-LARGE"
    ) {
      this.#refuse(conn, e, re);
      return;
    }
    const now = Date.now();
    conn.badFrames = conn.badFrames.filter((t) => now - t < this.#badWindowMs);
    conn.badFrames.push(now);
    if (conn.badFrames.length > this.#maxBad) {
      this.#refuse(conn, new ProtocolError("EE-PROTO-ABUSE", `more than ${this.#maxBad} bad frames`), re);
      return;
    }
    this.#sendError(conn, e, re);
  }

  /** Sends the error frame, then closes with the error family's close code. */
  #refuse(conn: Connection, err: EeError, re?: number): void {
    if (err.code === "EE-INTERNAL") this.#log.error({ conn: conn.id, err }, "agent channel internal error");
    this.#sendError(conn, err, re);
    this.#sink?.refused(conn.id, err.code, conn.remote);
    conn.ws.close(err.wsClose, err.code);
    // ws waits 30 s for the peer's close frame; a peer that never sends one would hold its socket (and, before
    // registering, its pending slot) that long, so it gets REFUSED_CLOSE_GRACE_MS.
    setTimeout(() => conn.ws.terminate(), REFUSED_CLOSE_GRACE_MS).unref();
  }

  #sendError(conn: Connection, err: EeError, re?: number): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    const frame = encodeFrame(
      "error",
      { code: err.code, message: err.message },
      re === undefined ? {} : { re },
    );
    conn.ws.send(frame, { binary: true });
  }

  #onClose(conn: Connection): void {
    if (conn.registerTimer) clearTimeout(conn.registerTimer);
    this.#settle(conn);
    this.#conns.delete(conn.id);
    if (conn.agentId !== null && this.#byAgent.get(conn.agentId) === conn) this.#byAgent.delete(conn.agentId);
    this.#sink?.closed(conn.id, conn.agentId);
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
