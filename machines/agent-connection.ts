// The agent's link to its control plane: a pure XState machine (connect → challenge → register → heartbeat →
// reconnect with backoff). It imports no I/O and reads no clock: sockets and frames are effects that
// agent/cp-client.ts provides with machine.provide(), transport events carry their receipt time (`at`), and the
// backoff jitter comes from a seeded generator kept in context, so every transition is deterministic and
// replayable. May import spec/ only.
import { assign, fromPromise, type StateValue, setup } from "xstate";
import { type ErrorCode, errorCodeOf } from "../spec/errors.ts";
import type { AnyEnvelope, Envelope, MessageType } from "../spec/protocol.ts";
import { topLevelStateOf } from "./top-level-state.ts";

/** Top-level states; `connection` in the agent's health is exactly one of these. */
export const AGENT_CONNECTION_STATES = [
  /** No socket: waiting out the backoff (`retryInMs`) before the next attempt. */
  "disconnected",
  /** A socket is opening; waits for SOCKET_OPEN (or the connect timeout). */
  "connecting",
  /** Socket open: waiting for the CP's challenge, getting a quote over its nonce, then waiting for `registered`. */
  "challenged",
  /** Admitted by the CP: heartbeating every interval and counting unacknowledged heartbeats. */
  "registered",
  /** Final: STOP received; the socket was closed with 1000. */
  "stopped",
  /** Final: `maxAttempts` consecutive attempts failed; the agent exits non-zero and its supervisor decides. */
  "gave_up",
] as const;
export type AgentConnectionState = (typeof AGENT_CONNECTION_STATES)[number];

/** Exponential backoff with full jitter: delay = random(0, min(cap, base × factor^(attempt−1))). */
export const BACKOFF = { baseMs: 500, factor: 2, capMs: 30_000 } as const;
/** Heartbeats sent without any ack after which the link counts as dead and is dropped. */
export const MAX_MISSED_ACKS = 3;
/** How long a socket may take to open, and how long challenge + quote + registration may take in all. */
export const CONNECT_TIMEOUT_MS = 10_000;
/**
 * The heartbeat intervals an agent follows when the CP asks for them in `registered`: a CP asking for less (or
 * more) gets the bound, so a broken or hostile CP cannot make the agent flood the link or fall silent.
 */
export const HEARTBEAT_BOUNDS = { minMs: 100, maxMs: 600_000 } as const;
export const REGISTER_TIMEOUT_MS = 30_000;

/** Why the link last went down; the CP's own reason, when it gave one, is in `lastError`. */
export type DisconnectReason =
  | "closed"
  | "connect_timeout"
  | "register_timeout"
  | "heartbeat_timeout"
  | "quote_failed";

export interface Disconnect {
  reason: DisconnectReason;
  /** The WebSocket close code and reason when the socket closed under us; null when we dropped it. */
  closeCode: number | null;
  closeReason: string | null;
}

export interface AgentConnectionInput {
  agentId: string;
  /** The configured interval: only the first guess, replaced by the one the CP asks for in `registered`. */
  heartbeatMs: number;
  /** Seed of the jitter generator: random in production, fixed in tests. */
  jitterSeed: number;
  /** Consecutive failed attempts after which the link gives up (`gave_up`); 0 or absent: never. */
  maxAttempts?: number;
}

export interface AgentConnectionContext {
  agentId: string;
  /** The heartbeat interval in force: the CP's `heartbeat_ms` (within HEARTBEAT_BOUNDS) once registered. */
  heartbeatMs: number;
  maxAttempts: number;
  /** Consecutive attempts that did not end in a registration; reset to 0 by `registered`. */
  attempt: number;
  /** Upper bound and chosen delay of the current backoff. */
  retryCeilingMs: number;
  retryInMs: number;
  jitterSeed: number;
  /** The challenge being answered: its nonce goes into REPORTDATA and the register frame. */
  challenge: { nonce: Uint8Array; id: number | undefined } | null;
  sessionId: string | null;
  registeredAt: number | null;
  /** Last heartbeat seq sent; monotonic for the agent's lifetime (the snapshot reports it). */
  heartbeatSeq: number;
  /** Highest heartbeat seq the CP acknowledged. heartbeatSeq − ackedSeq = heartbeats still unacknowledged. */
  ackedSeq: number;
  lastAckAt: number | null;
  /** Last stable error code: the CP's refusal reason (EE-ATT-…, EE-REG-…) or EE-ATT-PROVIDER. */
  lastError: string | null;
  lastDisconnect: Disconnect | null;
}

export type AgentConnectionEvent =
  /** The socket finished its opening handshake. */
  | { type: "SOCKET_OPEN" }
  /** A frame from the CP that passed decodeFrame; `at` is its local receipt time (ms epoch). */
  | { type: "FRAME"; envelope: AnyEnvelope; at: number }
  /** The current socket closed (by the CP, the network or a failed connect). */
  | { type: "SOCKET_CLOSED"; code: number; reason: string }
  /** Shut down for good. */
  | { type: "STOP" };

export interface CloseParams {
  code: number;
  reason: string;
}
export interface RegisterParams {
  nonce: Uint8Array;
  quote: Uint8Array;
  /** The challenge frame's id, echoed as `re`. */
  re: number | undefined;
  heartbeatSeq: number;
}
export interface UnexpectedParams {
  type: MessageType;
  id: number | undefined;
}

/**
 * One step of mulberry32: a tiny, well-distributed 32-bit generator. It lives in context so that the backoff
 * jitter stays a pure function of the machine's state.
 */
export function nextJitter(seed: number): { fraction: number; seed: number } {
  const next = (seed + 0x6d2b79f5) >>> 0;
  let t = Math.imul(next ^ (next >>> 15), next | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { fraction: ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296, seed: next };
}

/** The interval the agent follows when the CP asks for `askedMs` (the CP decides how often it hears from us). */
export function followedHeartbeatMs(askedMs: number): number {
  return Math.min(HEARTBEAT_BOUNDS.maxMs, Math.max(HEARTBEAT_BOUNDS.minMs, Math.floor(askedMs)));
}

/** Ceiling of the backoff after `attempt` (≥ 1) consecutive failures. */
export function backoffCeilingMs(attempt: number): number {
  const exp = BACKOFF.baseMs * BACKOFF.factor ** Math.max(0, attempt - 1);
  return Math.min(BACKOFF.capMs, exp);
}

function frameOf<T extends MessageType>(event: AgentConnectionEvent, type: T): Envelope<T> | null {
  return event.type === "FRAME" && event.envelope.type === type ? (event.envelope as Envelope<T>) : null;
}

/** The code of a failed quote: the provider's own when typed, else EE-ATT-PROVIDER (the provider failed). */
function quoteFailureCode(err: unknown): ErrorCode {
  return errorCodeOf(err) ?? "EE-ATT-PROVIDER";
}

// A close reason that starts with a stable code (the CP closes refused connections that way) is kept as lastError.
const CODE_IN_REASON = /^EE-[A-Z0-9-]+/;

const quoteNotProvided = fromPromise<Uint8Array, { nonce: Uint8Array }>(async () => {
  throw new Error("the quote actor must be provided by agent/cp-client.ts");
});

const dropped = (reason: DisconnectReason): Disconnect => ({ reason, closeCode: null, closeReason: null });

export const agentConnectionMachine = setup({
  types: {
    context: {} as AgentConnectionContext,
    events: {} as AgentConnectionEvent,
    input: {} as AgentConnectionInput,
  },
  actors: {
    // Provided by cp-client: binds the nonce and the agent key into REPORTDATA and asks the quote provider.
    quote: quoteNotProvided,
  },
  actions: {
    // Effects, provided by cp-client. Each is a no-op when there is no socket to act on.
    openSocket: () => {},
    closeSocket: (_, _params: CloseParams) => {},
    sendRegister: (_, _params: RegisterParams) => {},
    sendHeartbeat: (_, _params: { seq: number }) => {},
    rejectUnexpected: (_, _params: UnexpectedParams) => {},

    scheduleRetry: assign(({ context }) => {
      const attempt = context.attempt + 1;
      const ceiling = backoffCeilingMs(attempt);
      const { fraction, seed } = nextJitter(context.jitterSeed);
      return {
        attempt,
        retryCeilingMs: ceiling,
        retryInMs: Math.floor(fraction * ceiling),
        jitterSeed: seed,
      };
    }),
    noteDisconnect: assign((_, params: Disconnect) => ({
      lastDisconnect: params,
      challenge: null,
      sessionId: null,
    })),
    noteClosed: assign(({ context, event }) => {
      if (event.type !== "SOCKET_CLOSED") return {};
      const code = CODE_IN_REASON.exec(event.reason)?.[0];
      return {
        lastDisconnect: { reason: "closed" as const, closeCode: event.code, closeReason: event.reason },
        lastError: code ?? context.lastError,
        challenge: null,
        sessionId: null,
      };
    }),
    takeChallenge: assign(({ event }) => {
      const env = frameOf(event, "challenge");
      return env ? { challenge: { nonce: env.body.nonce, id: env.id } } : {};
    }),
    takeQuoteError: assign((_, params: { error: unknown }) => ({
      lastError: quoteFailureCode(params.error),
    })),
    takeRegistration: assign(({ context, event }) => {
      const env = frameOf(event, "registered");
      if (!env || event.type !== "FRAME") return {};
      return {
        sessionId: env.body.session_id,
        registeredAt: event.at,
        heartbeatMs: followedHeartbeatMs(env.body.heartbeat_ms),
        attempt: 0,
        ackedSeq: context.heartbeatSeq,
        challenge: null,
        lastError: null,
      };
    }),
    takeAck: assign(({ event }) => {
      const env = frameOf(event, "heartbeat_ack");
      return env && event.type === "FRAME" ? { ackedSeq: env.body.seq, lastAckAt: event.at } : {};
    }),
    takeError: assign(({ event }) => {
      const env = frameOf(event, "error");
      return env ? { lastError: env.body.code } : {};
    }),
    nextHeartbeat: assign(({ context }) => ({ heartbeatSeq: context.heartbeatSeq + 1 })),
  },
  guards: {
    isChallenge: ({ event }) => frameOf(event, "challenge") !== null,
    isRegistered: ({ event }) => frameOf(event, "registered") !== null,
    isErrorFrame: ({ event }) => frameOf(event, "error") !== null,
    // Only acks that move forward and answer a heartbeat we actually sent.
    isFreshAck: ({ context, event }) => {
      const seq = frameOf(event, "heartbeat_ack")?.body.seq;
      return seq !== undefined && seq > context.ackedSeq && seq <= context.heartbeatSeq;
    },
    isAck: ({ event }) => frameOf(event, "heartbeat_ack") !== null,
    tooManyMissedAcks: ({ context }) => context.heartbeatSeq - context.ackedSeq >= MAX_MISSED_ACKS,
    attemptsExhausted: ({ context }) => context.maxAttempts > 0 && context.attempt >= context.maxAttempts,
  },
  delays: {
    retry: ({ context }) => context.retryInMs,
    heartbeat: ({ context }) => context.heartbeatMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    registerTimeout: REGISTER_TIMEOUT_MS,
  },
}).createMachine({
  id: "agentConnection",
  context: ({ input }) => ({
    agentId: input.agentId,
    heartbeatMs: input.heartbeatMs,
    maxAttempts: input.maxAttempts ?? 0,
    attempt: 0,
    retryCeilingMs: 0,
    retryInMs: 0,
    jitterSeed: input.jitterSeed >>> 0,
    challenge: null,
    sessionId: null,
    registeredAt: null,
    heartbeatSeq: 0,
    ackedSeq: 0,
    lastAckAt: null,
    lastError: null,
    lastDisconnect: null,
  }),
  // The first attempt goes out at once; backoff only follows a failure.
  initial: "connecting",
  on: {
    STOP: {
      target: ".stopped",
      actions: { type: "closeSocket", params: { code: 1000, reason: "agent stopping" } },
    },
    // Frames no state handled: an error frame is recorded (never answered, so two peers cannot loop on errors);
    // anything else is valid but out of place, and the CP is told so.
    FRAME: [
      { guard: "isErrorFrame", actions: "takeError" },
      {
        actions: {
          type: "rejectUnexpected",
          params: ({ event }) => ({ type: event.envelope.type, id: event.envelope.id }),
        },
      },
    ],
  },
  states: {
    disconnected: {
      // scheduleRetry counts this failure first, so the guard sees it.
      entry: "scheduleRetry",
      always: { guard: "attemptsExhausted", target: "gave_up" },
      after: { retry: "connecting" },
    },
    connecting: {
      entry: "openSocket",
      after: {
        connectTimeout: {
          target: "disconnected",
          actions: [
            { type: "closeSocket", params: { code: 1001, reason: "connect timeout" } },
            { type: "noteDisconnect", params: dropped("connect_timeout") },
          ],
        },
      },
      on: {
        SOCKET_OPEN: "challenged",
        SOCKET_CLOSED: { target: "disconnected", actions: "noteClosed" },
      },
    },
    challenged: {
      initial: "awaiting_challenge",
      after: {
        registerTimeout: {
          target: "disconnected",
          actions: [
            { type: "closeSocket", params: { code: 1001, reason: "registration timeout" } },
            { type: "noteDisconnect", params: dropped("register_timeout") },
          ],
        },
      },
      on: { SOCKET_CLOSED: { target: "disconnected", actions: "noteClosed" } },
      states: {
        /** Socket open, no challenge yet. */
        awaiting_challenge: {
          on: { FRAME: { guard: "isChallenge", target: "quoting", actions: "takeChallenge" } },
        },
        /** The quote actor is producing a quote over the challenge's nonce. */
        quoting: {
          invoke: {
            src: "quote",
            input: ({ context }) => ({ nonce: context.challenge?.nonce ?? new Uint8Array(0) }),
            onDone: {
              target: "registering",
              actions: {
                type: "sendRegister",
                params: ({ context, event }) => ({
                  nonce: context.challenge?.nonce ?? new Uint8Array(0),
                  quote: event.output,
                  re: context.challenge?.id,
                  heartbeatSeq: context.heartbeatSeq,
                }),
              },
            },
            onError: {
              target: "#agentConnection.disconnected",
              actions: [
                { type: "takeQuoteError", params: ({ event }) => ({ error: event.error }) },
                { type: "closeSocket", params: { code: 1011, reason: "quote provider failed" } },
                { type: "noteDisconnect", params: dropped("quote_failed") },
              ],
            },
          },
        },
        /** Register sent; waiting for `registered` (or an error frame and the CP's close). */
        registering: {
          on: {
            FRAME: {
              guard: "isRegistered",
              target: "#agentConnection.registered",
              actions: "takeRegistration",
            },
          },
        },
      },
    },
    registered: {
      initial: "beating",
      on: {
        SOCKET_CLOSED: { target: "disconnected", actions: "noteClosed" },
        // Stale or duplicate acks are dropped quietly: they are expected after a slow CP catches up.
        FRAME: [{ guard: "isFreshAck", actions: "takeAck" }, { guard: "isAck" }],
      },
      states: {
        /** Waiting one interval, then either dropping a dead link or sending the next heartbeat. */
        beating: {
          after: {
            heartbeat: [
              {
                guard: "tooManyMissedAcks",
                target: "#agentConnection.disconnected",
                actions: [
                  { type: "closeSocket", params: { code: 1001, reason: "heartbeat timeout" } },
                  { type: "noteDisconnect", params: dropped("heartbeat_timeout") },
                ],
              },
              {
                // Re-entering restarts the `after` timer: that is the heartbeat cadence.
                target: "beating",
                reenter: true,
                actions: [
                  "nextHeartbeat",
                  { type: "sendHeartbeat", params: ({ context }) => ({ seq: context.heartbeatSeq }) },
                ],
              },
            ],
          },
        },
      },
    },
    stopped: { type: "final" },
    gave_up: { type: "final" },
  },
});

/** What health and logs show of the link. */
export interface ConnectionView {
  state: AgentConnectionState;
  registered: boolean;
  sessionId: string | null;
  attempt: number;
  retryInMs: number;
  heartbeatSeq: number;
  /** The heartbeat interval in force (the CP's, once registered). */
  heartbeatMs: number;
  lastAckAt: number | null;
  lastError: string | null;
  lastDisconnect: Disconnect | null;
}

/** The top-level state name of a snapshot value. */
export const topLevelState: (value: StateValue) => AgentConnectionState = topLevelStateOf;

export function connectionView(snapshot: {
  value: StateValue;
  context: AgentConnectionContext;
}): ConnectionView {
  const c = snapshot.context;
  const state = topLevelState(snapshot.value);
  return {
    state,
    registered: state === "registered",
    sessionId: c.sessionId,
    attempt: c.attempt,
    retryInMs: c.retryInMs,
    heartbeatSeq: c.heartbeatSeq,
    heartbeatMs: c.heartbeatMs,
    lastAckAt: c.lastAckAt,
    lastError: c.lastError,
    lastDisconnect: c.lastDisconnect,
  };
}
