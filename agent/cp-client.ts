// The agent's client of the control plane: runs machines/agent-connection.ts and provides its effects over a
// `ws` WebSocket to `${control_plane_url}${CONNECT_PATH}`. It turns socket events into machine events (each
// inbound frame decoded and validated first) and the machine's actions into frames. Only the current socket may
// talk to the machine: events from a socket the machine already dropped are ignored. May import machines/,
// transport/, attestation/, spec/ and lib/; never actors/.

import { type RawData, WebSocket } from "ws";
import { type ActorSystem, createActor, fromPromise } from "xstate";
import { signPop } from "../attestation/agent-key.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { reportDataFor } from "../attestation/report-data.ts";
import type { Logger } from "../lib/log.ts";
import { untrustedCertificate } from "../lib/tls-failure.ts";
import {
  agentConnectionMachine,
  type CloseParams,
  CONNECT_TIMEOUT_MS,
  type ConnectionView,
  connectionView,
  type RegisterParams,
  type UnexpectedParams,
} from "../machines/agent-connection.ts";
import {
  attestationRefreshMachine,
  type RefreshAnswer,
  type RefreshRequest,
} from "../machines/attestation-refresh.ts";
import { ProtocolError } from "../spec/errors.ts";
import { CONNECT_PATH, MAX_CP_FRAME_BYTES, type MessageBody, type MessageType } from "../spec/protocol.ts";
import { decodeFrame, encodeFrame, FrameError } from "../transport/frame.ts";
import type { InspectionObserver } from "../transport/inspection.ts";
import type { CpCommands } from "./cp-commands.ts";
import type { AgentIdentity } from "./identity.ts";
import { bindQuote } from "./quote-binding.ts";

/** How long a closing socket gets to finish the close handshake before it is torn down. */
const CLOSE_GRACE_MS = 2000;
/** The error body's message field is capped by the protocol schema. */
const MAX_ERROR_MESSAGE = 1024;

export interface CpClientOptions {
  /** control_plane_url from the config (ws:// or wss://, no trailing slash). */
  url: string;
  /** control_plane_ca's PEM: the CAs a wss:// CP's certificate must chain to, instead of the system's. */
  ca?: string;
  identity: Pick<AgentIdentity, "agentId" | "publicKey" | "privateKey">;
  registration: Pick<
    MessageBody<"register">,
    "vm_name" | "node_size" | "datacenter" | "bootstrap_token" | "enrollment_token"
  >;
  heartbeatMs: number;
  quoteProvider: QuoteProvider;
  /** When the agent process started (ms epoch): `started_at` in the register snapshot. */
  startedAt: number;
  agentVersion: string;
  log: Logger;
  /** Seed of the backoff jitter; random unless a test fixes it. */
  jitterSeed?: number;
  /** Consecutive failed attempts before the link gives up (state gave_up); 0: never. */
  maxAttempts?: number;
  /** Answers the CP's workload requests and reports the workload in heartbeats; none: the agent runs nothing. */
  commands?: CpCommands;
  /** Called with each accepted registration (the API secret of the session is in it). */
  onRegistered?: (body: MessageBody<"registered">) => void;
  /** Inspection of both machines (`eectl agent --inspect`); none: XState does no inspection work. */
  inspect?: InspectionObserver;
}

export interface CpClient {
  /** The link as it is now. */
  view(): ConnectionView;
  /** Called whenever the top-level state or the last error changes; returns the unsubscribe function. */
  subscribe(listener: (view: ConnectionView) => void): () => void;
  /** Closes the socket with 1000 and stops the machine; resolves once the socket is closed. */
  stop(): Promise<void>;
}

/** What one client's machines do to the world: its socket, its quote provider. */
interface ClientPort {
  registerQuote(nonce: Uint8Array): Promise<Uint8Array>;
  open(): void;
  close(p: CloseParams): void;
  register(p: RegisterParams): void;
  heartbeat(seq: number): void;
  rejectUnexpected(p: UnexpectedParams): void;
  refreshQuote(request: RefreshRequest): Promise<RefreshAnswer>;
  sendAttestation(p: { re: number | undefined; answer: RefreshAnswer }): void;
  sendFailure(p: { re: number | undefined; code: string; message: string }): void;
}

// The machines are provided once per process and find their client's port through their actor system:
// provide() rebuilds every state node (about 0.1 ms), which a load generator running thousands of clients in one
// process would otherwise pay for each of them (test/load).
// biome-ignore lint/suspicious/noExplicitAny: any actor system, as xstate's own AnyActorSystem (not exported).
type AnySystem = ActorSystem<any>;
const ports = new WeakMap<AnySystem, ClientPort>();

function portOf(system: AnySystem): ClientPort {
  const port = ports.get(system);
  if (!port) throw new Error("a CP client machine is running without its client");
  return port;
}

const connectionMachine = agentConnectionMachine.provide({
  actors: {
    quote: fromPromise<Uint8Array, { nonce: Uint8Array }>(({ input, system }) =>
      portOf(system).registerQuote(input.nonce),
    ),
  },
  actions: {
    openSocket: ({ system }) => portOf(system).open(),
    closeSocket: ({ system }, p) => portOf(system).close(p),
    sendRegister: ({ system }, p) => portOf(system).register(p),
    sendHeartbeat: ({ system }, p) => portOf(system).heartbeat(p.seq),
    rejectUnexpected: ({ system }, p) => portOf(system).rejectUnexpected(p),
  },
});

const refreshMachine = attestationRefreshMachine.provide({
  actors: {
    quote: fromPromise<RefreshAnswer, RefreshRequest>(({ input, system }) =>
      portOf(system).refreshQuote(input),
    ),
  },
  actions: {
    sendAttestation: ({ system }, p) => portOf(system).sendAttestation(p),
    sendFailure: ({ system }, p) => portOf(system).sendFailure(p),
  },
});

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function waitClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    // A CP that never answers the close handshake must not hold the agent's shutdown hostage.
    const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function startCpClient(opts: CpClientOptions): CpClient {
  const { identity, log } = opts;
  const endpoint = `${opts.url}${CONNECT_PATH}`;
  let socket: WebSocket | null = null;
  const closing = new Set<WebSocket>();
  let nextFrameId = 1;

  function send<T extends MessageType>(
    type: T,
    body: MessageBody<T>,
    ids: { id?: number; re?: number } = {},
  ): void {
    const ws = socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    try {
      ws.send(encodeFrame(type, body, ids), { binary: true }, (err) => {
        if (err) log.warn({ type, err: err.message }, "sending a frame failed");
      });
    } catch (err) {
      log.warn({ type, err: (err as Error).message }, "sending a frame failed");
    }
  }

  function sendError(code: string, message: string, re: number | undefined): void {
    send("error", { code, message: message.slice(0, MAX_ERROR_MESSAGE) }, re === undefined ? {} : { re });
  }

  function onMessage(data: RawData, isBinary: boolean): void {
    if (!isBinary) {
      log.warn({ code: "EE-PROTO-TEXT-FRAME" }, "text frame from the control plane");
      sendError("EE-PROTO-TEXT-FRAME", "text frames are not accepted; send binary msgpack frames", undefined);
      return;
    }
    let envelope: ReturnType<typeof decodeFrame>;
    try {
      envelope = decodeFrame(toBuffer(data), "agent");
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : "EE-PROTO-UNDECODABLE";
      const message = err instanceof ProtocolError ? err.message : "frame could not be decoded";
      log.warn({ code, detail: message }, "bad frame from the control plane");
      sendError(code, message, err instanceof FrameError ? err.re : undefined);
      return;
    }
    // Re-attestation requests are served by their own machine, whatever the connection machine is doing.
    if (envelope.type === "attest") {
      refresh.send({ type: "ATTEST", request: { id: envelope.id, nonce: envelope.body.nonce } });
      return;
    }
    if (opts.commands?.handle(envelope, send)) return;
    actor.send({ type: "FRAME", envelope, at: Date.now() });
    if (envelope.type === "registered" && current.registered) {
      opts.onRegistered?.(envelope.body);
      opts.commands?.announce(send);
    }
  }

  function open(): void {
    const ws = new WebSocket(endpoint, {
      maxPayload: MAX_CP_FRAME_BYTES,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    ws.binaryType = "nodebuffer";
    socket = ws;
    /** Set when the CP's certificate was not trusted: the close that follows carries it as the reason. */
    let refusedTls: string | null = null;
    log.debug({ url: endpoint }, "connecting to the control plane");
    ws.on("open", () => {
      if (socket === ws) actor.send({ type: "SOCKET_OPEN" });
    });
    ws.on("message", (data, isBinary) => {
      if (socket === ws) onMessage(data, isBinary);
    });
    ws.on("close", (code, reason) => {
      closing.delete(ws);
      if (socket !== ws) return;
      socket = null;
      opts.commands?.cancelAll();
      actor.send({ type: "SOCKET_CLOSED", code, reason: refusedTls ?? reason.toString("utf8") });
    });
    // ws always follows an error with a close, which is what the machine reacts to; this only keeps it logged.
    ws.on("error", (err) => {
      const untrusted = untrustedCertificate(err);
      if (!untrusted) {
        log.debug({ err: err.message }, "control plane socket error");
        return;
      }
      // A code first, so the connection machine keeps it as lastError (health, give-up message).
      refusedTls = `EE-TLS-UNTRUSTED: ${untrusted.code}`;
      log.warn(
        {
          code: "EE-TLS-UNTRUSTED",
          verify: untrusted.code,
          url: endpoint,
          ca: opts.ca ? "control_plane_ca" : "system",
        },
        `the control plane's TLS certificate is not trusted (${untrusted.message}); ` +
          "set control_plane_ca to the CA that signed it; retrying with backoff",
      );
    });
  }

  function close(code: number, reason: string): void {
    const ws = socket;
    socket = null;
    if (!ws) return;
    closing.add(ws);
    ws.close(code, reason);
    void waitClosed(ws);
  }

  function register(p: RegisterParams): void {
    send(
      "register",
      {
        ...opts.registration,
        agent_pubkey: new Uint8Array(identity.publicKey),
        nonce: new Uint8Array(p.nonce),
        quote: new Uint8Array(p.quote),
        pop: signPop(identity.privateKey, p.nonce),
        agent_version: opts.agentVersion,
        snapshot: {
          workload: opts.commands?.report() ?? null,
          heartbeat_seq: p.heartbeatSeq,
          started_at: opts.startedAt,
        },
      },
      p.re === undefined ? { id: nextFrameId++ } : { id: nextFrameId++, re: p.re },
    );
  }

  const port: ClientPort = {
    async registerQuote(nonce) {
      try {
        return await opts.quoteProvider.getQuote(reportDataFor("register", nonce, identity.publicKey));
      } catch (err) {
        log.error(
          { provider: opts.quoteProvider.name, err: (err as Error).message },
          "quote provider failed",
        );
        throw err;
      }
    },
    open,
    close: (p) => close(p.code, p.reason),
    register,
    heartbeat: (seq) =>
      send(
        "heartbeat",
        { seq, sent_at: Date.now(), workload: opts.commands?.report() ?? null },
        { id: nextFrameId++ },
      ),
    rejectUnexpected(p) {
      log.warn({ code: "EE-PROTO-UNEXPECTED", type: p.type }, "unexpected frame from the control plane");
      sendError("EE-PROTO-UNEXPECTED", `"${p.type}" is not expected in the agent's current state`, p.id);
    },
    async refreshQuote(request) {
      const { reportData, ...binds } = bindQuote(
        "refresh",
        request.nonce,
        identity.publicKey,
        opts.commands?.running() ?? undefined,
      );
      return { quote: await opts.quoteProvider.getQuote(reportData), ...binds };
    },
    sendAttestation: (p) =>
      send(
        "attestation",
        {
          quote: new Uint8Array(p.answer.quote),
          purpose: p.answer.purpose,
          ...(p.answer.compose_hash ? { compose_hash: p.answer.compose_hash } : {}),
          ...(p.answer.workload_hash ? { workload_hash: p.answer.workload_hash } : {}),
        },
        p.re === undefined ? {} : { re: p.re },
      ),
    sendFailure(p) {
      log.warn({ code: p.code }, "re-attestation failed");
      sendError(p.code, p.message, p.re);
    },
  };

  const inspect = opts.inspect ? { inspect: opts.inspect } : {};
  const refresh = createActor(refreshMachine, inspect);
  ports.set(refresh.system, port);
  refresh.subscribe({ error: (err) => log.error({ err }, "re-attestation actor failed") });
  refresh.start();

  const actor = createActor(connectionMachine, {
    input: {
      agentId: identity.agentId,
      heartbeatMs: opts.heartbeatMs,
      jitterSeed: opts.jitterSeed ?? Math.floor(Math.random() * 2 ** 32),
      maxAttempts: opts.maxAttempts ?? 0,
    },
    ...inspect,
  });
  ports.set(actor.system, port);

  let current = connectionView(actor.getSnapshot());
  const listeners = new Set<(view: ConnectionView) => void>();
  actor.subscribe({
    next: (snapshot) => {
      const next = connectionView(snapshot);
      const prev = current;
      current = next;
      if (next.state === prev.state && next.lastError === prev.lastError) return;
      logTransition(log, prev, next);
      for (const listener of listeners) listener(next);
    },
    // An unobserved actor error would be rethrown in a timer and kill the process.
    error: (err) => log.error({ err: (err as Error).message }, "connection machine failed"),
  });
  actor.start();

  return {
    view: () => current,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      actor.send({ type: "STOP" });
      actor.stop();
      refresh.stop();
      listeners.clear();
      await Promise.all([...closing].map(waitClosed));
    },
  };
}

function logTransition(log: Logger, prev: ConnectionView, next: ConnectionView): void {
  if (next.state === "registered" && prev.state !== "registered") {
    log.info(
      { session_id: next.sessionId, heartbeat_ms: next.heartbeatMs },
      "registered with the control plane",
    );
  } else if (next.state === "disconnected" && prev.state !== "disconnected") {
    log.warn(
      { was: prev.state, why: next.lastDisconnect, last_error: next.lastError, retry_in_ms: next.retryInMs },
      "control plane link down",
    );
  } else {
    log.debug({ from: prev.state, to: next.state, last_error: next.lastError }, "control plane link");
  }
}
