// The agent's client of the control plane: runs machines/agent-connection.ts (and attestation-refresh.ts for
// re-attestation) over one WebSocket at a time. The parts live in agent/cp-link/: the machines provided once per
// process (machines.ts), the connection (socket.ts), where each inbound frame goes after it is decoded and
// validated (inbound.ts) and what the agent sends (outbound.ts); this file wires them and reports the link's
// view. Only the current socket may talk to the machine. May import machines/, transport/, attestation/, spec/
// and lib/; never actors/.

import { createActor } from "xstate";
import type { Logger } from "../lib/log.ts";
import { type ConnectionView, connectionView } from "../machines/agent-connection.ts";
import type { MessageBody } from "../spec/protocol.ts";
import type { InspectionObserver } from "../transport/inspection.ts";
import { dispatchFrame } from "./cp-link/inbound.ts";
import { attachPort, connectionMachine, refreshMachine } from "./cp-link/machines.ts";
import { clientPort, type OutboundOptions } from "./cp-link/outbound.ts";
import { CpSocket } from "./cp-link/socket.ts";

/** The agent's own description (identity, registration, quotes, workload) is OutboundOptions, what it sends. */
export interface CpClientOptions extends OutboundOptions {
  /** control_plane_url from the config (ws:// or wss://, no trailing slash). */
  url: string;
  /** control_plane_ca's PEM: the CAs a wss:// CP's certificate must chain to, instead of the system's. */
  ca?: string;
  heartbeatMs: number;
  /** Seed of the backoff jitter; random unless a test fixes it. */
  jitterSeed?: number;
  /** Consecutive failed attempts before the link gives up (state gave_up); 0: never. */
  maxAttempts?: number;
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

export function startCpClient(opts: CpClientOptions): CpClient {
  const { identity, log } = opts;
  const socket = new CpSocket(opts.url, opts.ca, log);
  const port = clientPort(opts, socket, {
    opened: () => actor.send({ type: "SOCKET_OPEN" }),
    message: (data, isBinary) =>
      dispatchFrame(data, isBinary, socket, log, {
        attest: (request) => refresh.send({ type: "ATTEST", request }),
        commands: opts.commands,
        frame: (envelope) => actor.send({ type: "FRAME", envelope, at: Date.now() }),
        registered: () => current.registered,
        onRegistered: opts.onRegistered,
      }),
    closed(code, reason) {
      opts.commands?.cancelAll();
      actor.send({ type: "SOCKET_CLOSED", code, reason });
    },
  });

  const inspect = opts.inspect ? { inspect: opts.inspect } : {};
  const refresh = createActor(refreshMachine, inspect);
  attachPort(refresh, port);
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
  attachPort(actor, port);

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
      await socket.closed();
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
