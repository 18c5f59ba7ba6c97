// The agent's CP-link machine, driven with a SimulatedClock and recorded effects: no sockets, no real timers.
import test from "ava";
import { createActor, fromPromise, SimulatedClock, waitFor } from "xstate";
import {
  type AgentConnectionEvent,
  agentConnectionMachine,
  BACKOFF,
  backoffCeilingMs,
  CONNECT_TIMEOUT_MS,
  connectionView,
  HEARTBEAT_BOUNDS,
  nextJitter,
  REGISTER_TIMEOUT_MS,
  topLevelState,
} from "../../machines/agent-connection.ts";
import type { AnyEnvelope } from "../../spec/protocol.ts";

const HB = 1000;
const NONCE = new Uint8Array(32).fill(7);
const QUOTE = new Uint8Array([1, 2, 3]);

type Effect = { name: string; params?: unknown };

function harness(opts: { seed?: number; quote?: () => Promise<Uint8Array>; maxAttempts?: number } = {}) {
  const clock = new SimulatedClock();
  const effects: Effect[] = [];
  const quoteInputs: Uint8Array[] = [];
  const record = (name: string) => (_: unknown, params?: unknown) => {
    effects.push(params === undefined ? { name } : { name, params });
  };
  const machine = agentConnectionMachine.provide({
    actors: {
      quote: fromPromise<Uint8Array, { nonce: Uint8Array }>(async ({ input }) => {
        quoteInputs.push(input.nonce);
        return opts.quote ? opts.quote() : QUOTE;
      }),
    },
    actions: {
      openSocket: record("openSocket"),
      closeSocket: record("closeSocket"),
      sendRegister: record("sendRegister"),
      sendHeartbeat: record("sendHeartbeat"),
      rejectUnexpected: record("rejectUnexpected"),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: {
      agentId: "agt_test",
      heartbeatMs: HB,
      jitterSeed: opts.seed ?? 42,
      ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
    },
  });
  actor.subscribe({ error: () => {} });
  actor.start();
  const state = () => topLevelState(actor.getSnapshot().value);
  const ctx = () => actor.getSnapshot().context;
  const named = (name: string) => effects.filter((e) => e.name === name);
  const send = (event: AgentConnectionEvent) => actor.send(event);
  const frame = (envelope: AnyEnvelope, at = clock.now()) => send({ type: "FRAME", envelope, at });
  return { clock, actor, effects, quoteInputs, state, ctx, named, send, frame };
}

type Harness = ReturnType<typeof harness>;

const challenge = (id = 1): AnyEnvelope => ({
  v: 1,
  type: "challenge",
  id,
  body: { nonce: NONCE, expires_at: 30_000, server_time: 0 },
});
const registered = (heartbeatMs = HB): AnyEnvelope => ({
  v: 1,
  type: "registered",
  body: {
    agent_id: "agt_test",
    session_id: "ses_1",
    heartbeat_ms: heartbeatMs,
    stale_after_ms: 3 * heartbeatMs,
    server_time: 0,
  },
});
const ack = (seq: number): AgentConnectionEvent => ({
  type: "FRAME",
  envelope: { v: 1, type: "heartbeat_ack", re: seq, body: { seq, server_time: 0 } },
  at: 0,
});
const errorFrame = (code: string): AnyEnvelope => ({
  v: 1,
  type: "error",
  body: { code, message: "refused" },
});

/** Advances n heartbeat intervals one at a time: SimulatedClock starts a timer set during a flush at the new now. */
function beats(h: Harness, n: number): void {
  for (let i = 0; i < n; i++) h.clock.increment(HB);
}

async function register(h: Harness, heartbeatMs = HB): Promise<void> {
  h.send({ type: "SOCKET_OPEN" });
  h.frame(challenge());
  await waitFor(h.actor, (s) => s.matches({ challenged: "registering" }));
  h.frame(registered(heartbeatMs));
}

test("the first attempt opens a socket at once", (t) => {
  const h = harness();
  t.is(h.state(), "connecting");
  t.deepEqual(h.named("openSocket").length, 1);
  t.is(h.ctx().attempt, 0);
});

test("challenge → quote over the nonce → register → registered", async (t) => {
  const h = harness();
  h.send({ type: "SOCKET_OPEN" });
  t.true(h.actor.getSnapshot().matches({ challenged: "awaiting_challenge" }));
  h.frame(challenge(9));
  await waitFor(h.actor, (s) => s.matches({ challenged: "registering" }));
  t.deepEqual(h.quoteInputs, [NONCE]);
  t.deepEqual(h.named("sendRegister"), [
    { name: "sendRegister", params: { nonce: NONCE, quote: QUOTE, re: 9, heartbeatSeq: 0 } },
  ]);
  t.is(h.state(), "challenged");
  h.frame(registered(), 1234);
  t.is(h.state(), "registered");
  t.like(h.ctx(), {
    sessionId: "ses_1",
    registeredAt: 1234,
    attempt: 0,
    challenge: null,
    agentId: "agt_test",
  });
  t.like(connectionView(h.actor.getSnapshot()), { state: "registered", registered: true, lastError: null });
});

test("heartbeats go out every interval with increasing seq while acks come back", async (t) => {
  const h = harness();
  await register(h);
  h.clock.increment(HB - 1);
  t.is(h.named("sendHeartbeat").length, 0);
  for (let seq = 1; seq <= 5; seq++) {
    h.clock.increment(seq === 1 ? 1 : HB);
    t.deepEqual(h.named("sendHeartbeat").at(-1), { name: "sendHeartbeat", params: { seq } });
    h.send(ack(seq));
  }
  t.is(h.named("sendHeartbeat").length, 5);
  t.is(h.state(), "registered");
  t.is(h.ctx().ackedSeq, 5);
  t.is(h.ctx().lastAckAt, 0);
});

test("three heartbeats without an ack drop the link", async (t) => {
  const h = harness();
  await register(h);
  beats(h, 3); // heartbeats 1, 2, 3 sent, none acked
  t.is(h.named("sendHeartbeat").length, 3);
  h.clock.increment(HB - 1);
  t.is(h.state(), "registered");
  h.clock.increment(1);
  t.is(h.state(), "disconnected");
  t.deepEqual(h.named("closeSocket").at(-1), {
    name: "closeSocket",
    params: { code: 1001, reason: "heartbeat timeout" },
  });
  t.deepEqual(h.ctx().lastDisconnect, { reason: "heartbeat_timeout", closeCode: null, closeReason: null });
  t.is(h.ctx().sessionId, null);
});

test("a late ack keeps the link: only unacknowledged heartbeats count", async (t) => {
  const h = harness();
  await register(h);
  beats(h, 3); // seq 1..3 out
  h.send(ack(2)); // seq 3 still open
  h.clock.increment(HB); // seq 4 out: 2 unacked
  h.clock.increment(HB); // seq 5 out: 3 unacked
  t.is(h.state(), "registered");
  t.is(h.ctx().heartbeatSeq, 5);
  h.clock.increment(HB);
  t.is(h.state(), "disconnected");
});

test("the agent heartbeats at the interval the CP asks for in registered, not its configured one", async (t) => {
  const h = harness();
  t.is(h.ctx().heartbeatMs, HB, "the configured interval is the first guess");
  await register(h, 250);
  t.is(h.ctx().heartbeatMs, 250);
  for (let seq = 1; seq <= 4; seq++) {
    h.clock.increment(249);
    t.is(h.named("sendHeartbeat").length, seq - 1, "not before the CP's interval");
    h.clock.increment(1);
    t.deepEqual(h.named("sendHeartbeat").at(-1), { name: "sendHeartbeat", params: { seq } });
    h.send(ack(seq));
  }
  t.is(connectionView(h.actor.getSnapshot()).heartbeatMs, 250);
});

test("a CP asking for an absurd interval gets the bound instead", async (t) => {
  const fast = harness();
  await register(fast, 1);
  t.is(fast.ctx().heartbeatMs, HEARTBEAT_BOUNDS.minMs);
  const slow = harness();
  await register(slow, 3_600_000);
  t.is(slow.ctx().heartbeatMs, HEARTBEAT_BOUNDS.maxMs);
});

test("acks that go backwards or answer unsent heartbeats are ignored", async (t) => {
  const h = harness();
  await register(h);
  beats(h, 2);
  h.send(ack(2));
  h.send(ack(1));
  h.send(ack(99));
  t.is(h.ctx().ackedSeq, 2);
  t.is(h.named("rejectUnexpected").length, 0);
});

test("backoff grows by 2 from 500 ms to the 30 s cap, with full jitter inside each ceiling", (t) => {
  const h = harness({ seed: 7 });
  const ceilings: number[] = [];
  for (let i = 0; i < 10; i++) {
    h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
    t.is(h.state(), "disconnected");
    const { retryCeilingMs, retryInMs, attempt } = h.ctx();
    t.is(attempt, i + 1);
    ceilings.push(retryCeilingMs);
    t.true(retryInMs >= 0 && retryInMs < retryCeilingMs);
    // The retry fires exactly when the chosen delay has passed, not a millisecond earlier.
    if (retryInMs > 0) {
      h.clock.increment(retryInMs - 1);
      t.is(h.state(), "disconnected");
    }
    h.clock.increment(1);
    t.is(h.state(), "connecting");
  }
  t.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  t.is(h.named("openSocket").length, 11);
});

test("jitter is a pure function of the seed: same seed, same delays; another seed, other delays", (t) => {
  const delays = (seed: number) => {
    const h = harness({ seed });
    const out: number[] = [];
    for (let i = 0; i < 8; i++) {
      h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
      out.push(h.ctx().retryInMs);
      h.clock.increment(h.ctx().retryInMs);
    }
    return out;
  };
  t.deepEqual(delays(1), delays(1));
  t.notDeepEqual(delays(1), delays(2));
  // Each delay is floor(fraction × ceiling) with the fraction drawn from the seeded generator.
  let seed = 1;
  const expected = [1, 2, 3].map((attempt) => {
    const step = nextJitter(seed);
    seed = step.seed;
    return Math.floor(step.fraction * backoffCeilingMs(attempt));
  });
  t.deepEqual(delays(1).slice(0, 3), expected);
});

test("the jitter generator spreads over [0, 1)", (t) => {
  let seed = 123;
  let min = 1;
  let max = 0;
  for (let i = 0; i < 2000; i++) {
    const step = nextJitter(seed);
    seed = step.seed;
    min = Math.min(min, step.fraction);
    max = Math.max(max, step.fraction);
  }
  t.true(min >= 0 && min < 0.01);
  t.true(max < 1 && max > 0.99);
  t.is(backoffCeilingMs(1), BACKOFF.baseMs);
  t.is(backoffCeilingMs(1000), BACKOFF.capMs);
});

test("a registration resets the attempt counter, so the next backoff starts at 500 ms again", async (t) => {
  const h = harness();
  for (let i = 0; i < 4; i++) {
    h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
    h.clock.increment(h.ctx().retryInMs);
  }
  t.is(h.ctx().attempt, 4);
  await register(h);
  t.is(h.ctx().attempt, 0);
  h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
  t.is(h.ctx().attempt, 1);
  t.is(h.ctx().retryCeilingMs, 500);
});

test("a refusal: the CP's error frame is kept as lastError, its close leads to backoff", async (t) => {
  const h = harness();
  h.send({ type: "SOCKET_OPEN" });
  h.frame(challenge());
  await waitFor(h.actor, (s) => s.matches({ challenged: "registering" }));
  h.frame(errorFrame("EE-ATT-QUOTE-SIGNATURE"));
  t.is(h.state(), "challenged");
  t.is(h.ctx().lastError, "EE-ATT-QUOTE-SIGNATURE");
  t.is(h.named("rejectUnexpected").length, 0, "error frames are never answered");
  h.send({ type: "SOCKET_CLOSED", code: 4003, reason: "registration refused" });
  t.is(h.state(), "disconnected");
  t.is(h.ctx().attempt, 1);
  t.deepEqual(h.ctx().lastDisconnect, {
    reason: "closed",
    closeCode: 4003,
    closeReason: "registration refused",
  });
  t.like(connectionView(h.actor.getSnapshot()), { registered: false, lastError: "EE-ATT-QUOTE-SIGNATURE" });
  // The error survives the retry and is cleared only by a successful registration.
  h.clock.increment(h.ctx().retryInMs);
  t.is(h.ctx().lastError, "EE-ATT-QUOTE-SIGNATURE");
  await register(h);
  t.is(h.ctx().lastError, null);
});

test("a close reason that starts with a code becomes lastError", (t) => {
  const h = harness();
  h.send({ type: "SOCKET_OPEN" });
  h.send({ type: "SOCKET_CLOSED", code: 4003, reason: "EE-REG-DUPLICATE-VM-NAME: vm_name taken" });
  t.is(h.ctx().lastError, "EE-REG-DUPLICATE-VM-NAME");
});

test("a failing quote provider closes the socket and backs off with EE-ATT-PROVIDER", async (t) => {
  const h = harness({ quote: () => Promise.reject(new Error("no tsm")) });
  h.send({ type: "SOCKET_OPEN" });
  h.frame(challenge());
  await waitFor(h.actor, (s) => s.matches("disconnected"));
  t.is(h.ctx().lastError, "EE-ATT-PROVIDER");
  t.deepEqual(h.named("closeSocket"), [
    { name: "closeSocket", params: { code: 1011, reason: "quote provider failed" } },
  ]);
  t.is(h.ctx().lastDisconnect?.reason, "quote_failed");
  t.is(h.named("sendRegister").length, 0);
});

test("a socket that does not open in time is dropped", (t) => {
  const h = harness();
  h.clock.increment(CONNECT_TIMEOUT_MS);
  t.is(h.state(), "disconnected");
  t.is(h.ctx().lastDisconnect?.reason, "connect_timeout");
  t.is(h.named("closeSocket").length, 1);
});

test("a CP that never challenges or never admits is dropped after the register timeout", async (t) => {
  const h = harness();
  h.send({ type: "SOCKET_OPEN" });
  h.clock.increment(REGISTER_TIMEOUT_MS - 1);
  t.is(h.state(), "challenged");
  h.clock.increment(1);
  t.is(h.state(), "disconnected");
  t.is(h.ctx().lastDisconnect?.reason, "register_timeout");

  const h2 = harness();
  h2.send({ type: "SOCKET_OPEN" });
  h2.frame(challenge());
  await waitFor(h2.actor, (s) => s.matches({ challenged: "registering" }));
  h2.clock.increment(REGISTER_TIMEOUT_MS);
  t.is(h2.state(), "disconnected");
});

test("frames out of place are answered as unexpected; the state does not move", async (t) => {
  const h = harness();
  h.send({ type: "SOCKET_OPEN" });
  h.send(ack(1));
  h.frame(registered());
  t.is(h.state(), "challenged");
  t.deepEqual(
    h.named("rejectUnexpected").map((e) => e.params),
    [
      { type: "heartbeat_ack", id: undefined },
      { type: "registered", id: undefined },
    ],
  );
  await register(h);
  h.frame(challenge(5));
  t.is(h.state(), "registered");
  t.deepEqual(h.named("rejectUnexpected").at(-1)?.params, { type: "challenge", id: 5 });
});

test("a socket close while registered goes to backoff and clears the session", async (t) => {
  const h = harness();
  await register(h);
  h.clock.increment(HB);
  h.send({ type: "SOCKET_CLOSED", code: 1001, reason: "EE-PROTO-SHUTDOWN" });
  t.is(h.state(), "disconnected");
  t.is(h.ctx().sessionId, null);
  t.is(h.ctx().lastError, "EE-PROTO-SHUTDOWN");
  // heartbeat_seq carries on across connections: it is the agent's, not the session's.
  h.clock.increment(h.ctx().retryInMs);
  await register(h);
  h.clock.increment(HB);
  t.deepEqual(h.named("sendHeartbeat").at(-1)?.params, { seq: 2 });
  t.deepEqual(h.named("sendRegister").at(-1)?.params, { nonce: NONCE, quote: QUOTE, re: 1, heartbeatSeq: 1 });
});

test("STOP closes with 1000 from any state and no timer fires afterwards", async (t) => {
  const h = harness();
  await register(h);
  h.send({ type: "STOP" });
  t.is(h.state(), "stopped");
  t.is(h.actor.getSnapshot().status, "done");
  t.deepEqual(h.named("closeSocket").at(-1), {
    name: "closeSocket",
    params: { code: 1000, reason: "agent stopping" },
  });
  beats(h, 10);
  t.is(h.named("sendHeartbeat").length, 0);

  const h2 = harness();
  h2.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
  h2.send({ type: "STOP" });
  t.is(h2.state(), "stopped");
  h2.clock.increment(60_000);
  t.is(h2.named("openSocket").length, 1);
});

test("with maxAttempts, consecutive failures end in gave_up; a registration resets the count", async (t) => {
  const h = harness({ maxAttempts: 3 });
  const fail = () => h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
  fail();
  t.is(h.state(), "disconnected");
  h.clock.increment(h.ctx().retryInMs);
  fail();
  t.is(h.ctx().attempt, 2);
  h.clock.increment(h.ctx().retryInMs);
  // The third attempt registers: the count starts over.
  await register(h);
  t.is(h.ctx().attempt, 0);
  fail();
  h.clock.increment(h.ctx().retryInMs);
  fail();
  h.clock.increment(h.ctx().retryInMs);
  t.is(h.state(), "connecting");
  fail();
  t.is(h.state(), "gave_up");
  t.is(h.actor.getSnapshot().status, "done");
  const opened = h.named("openSocket").length;
  h.clock.increment(60_000);
  t.is(h.named("openSocket").length, opened, "no attempt after giving up");
});

test("without maxAttempts the link never gives up", (t) => {
  const h = harness();
  for (let i = 0; i < 50; i++) {
    h.send({ type: "SOCKET_CLOSED", code: 1006, reason: "" });
    h.clock.increment(h.ctx().retryInMs);
  }
  t.is(h.state(), "connecting");
});
