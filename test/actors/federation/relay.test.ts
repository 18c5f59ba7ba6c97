// Relayed reads without NATS: the codec drops what does not validate, and the master's RelayClient and a dc's
// RelayServer over an in-memory subject router (core NATS's semantics that matter here: `>` wildcards, ordered
// delivery, a no-responders status for a request nobody listens to) relay results, coded errors, log chunks,
// cancels, both sides' silence and the slow-consumer window. The real nats-server runs in
// test/e2e/federation-relay.test.ts.
import test from "ava";
import type { CoreMessage, FederationBus } from "../../../actors/federation/bus.ts";
import { RelayClient } from "../../../actors/federation/relay-client.ts";
import {
  decodeRelay,
  encodeRelay,
  relayAnswerSchema,
  relayControlSchema,
  relayRequestSchema,
} from "../../../actors/federation/relay-messages.ts";
import { RelayServer } from "../../../actors/federation/relay-server.ts";
import { relayReadSubject, relayReplySubject } from "../../../actors/federation/topology.ts";
import type { AgentReadsPort } from "../../../contract/agents.ts";
import { silentLogger } from "../../../lib/log.ts";
import { NotFoundError } from "../../../spec/errors.ts";
import { waitFor } from "../../helpers/cluster.ts";

const AGENT = `agt_${"a".repeat(24)}`;
const ID = "0123456789abcdef01234567";
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** Subjects as core NATS routes them: exact tokens and a trailing `>`; delivery in order, never in the caller's turn. */
function memoryBus(): Pick<FederationBus, "listen" | "send"> & {
  sent: { subject: string; data: unknown }[];
} {
  const subs = new Set<{ pattern: string; on: (m: CoreMessage) => void }>();
  const matches = (pattern: string, subject: string) =>
    pattern.endsWith(".>") ? subject.startsWith(pattern.slice(0, -1)) : pattern === subject;
  const sent: { subject: string; data: unknown }[] = [];
  return {
    sent,
    listen(pattern, on) {
      const sub = { pattern, on };
      subs.add(sub);
      return () => subs.delete(sub);
    },
    send(subject, data, reply) {
      const text = new TextDecoder().decode(data);
      sent.push({ subject, data: text.startsWith("{") ? JSON.parse(text) : text });
      const targets = [...subs].filter((s) => matches(s.pattern, subject));
      queueMicrotask(() => {
        if (targets.length === 0 && reply) {
          for (const s of subs)
            if (matches(s.pattern, reply))
              s.on({ subject: reply, data: new Uint8Array(), reply: null, noResponders: true });
          return;
        }
        for (const s of targets) s.on({ subject, data, reply: reply ?? null, noResponders: false });
      });
    },
  };
}

interface FakeReads extends AgentReadsPort {
  signals: AbortSignal[];
  /** Lines pushed to the open follow's onChunk. */
  push(n: number): void;
}

function fakeReads(): FakeReads {
  const signals: AbortSignal[] = [];
  let onChunk: ((lines: { service: string; stream: "stdout"; ts: string; text: string }[]) => void) | null =
    null;
  const line = (i: number) => ({ service: "web", stream: "stdout" as const, ts: `t${i}`, text: `line ${i}` });
  return {
    signals,
    push(n) {
      for (let i = 0; i < n; i++) onChunk?.([line(i)]);
    },
    async request(agentId, type) {
      if (agentId !== AGENT) throw new NotFoundError("EE-NOT-FOUND", `agent ${agentId} is not known`);
      return { type, cpu: 0.5 };
    },
    logs(agentId, body, chunk, signal) {
      if (agentId !== AGENT)
        return Promise.reject(new NotFoundError("EE-NOT-FOUND", `agent ${agentId} is not known`));
      if (!body.follow) {
        chunk([line(1), line(2)]);
        chunk([line(3)]);
        return Promise.resolve();
      }
      onChunk = chunk;
      signals.push(signal!);
      return new Promise((resolve) => signal!.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
}

function pair(o: { keepaliveMs?: number; windowBytes?: number; maxOpen?: number } = {}) {
  const bus = memoryBus();
  const reads = fakeReads();
  const server = new RelayServer({
    dcId: "dc1",
    bus,
    reads,
    machine: (id) => (id === AGENT ? { value: "registered", context: { agentId: id } } : undefined),
    log: silentLogger,
    ...(o.windowBytes ? { windowBytes: o.windowBytes } : {}),
    ...(o.maxOpen ? { maxOpen: o.maxOpen } : {}),
  });
  server.start();
  const client = new RelayClient({ bus, log: silentLogger, keepaliveMs: o.keepaliveMs ?? 250 });
  return { bus, reads, server, client };
}

test("the codec takes well-formed messages and drops anything else", (t) => {
  const req = { id: ID, agent_id: AGENT, op: "logs", logs: { tail: 5, follow: true }, keepalive_ms: 1000 };
  t.deepEqual(decodeRelay(relayRequestSchema, enc(req)), req);
  t.is(decodeRelay(relayRequestSchema, new TextEncoder().encode("{not json")), null);
  t.is(decodeRelay(relayRequestSchema, enc({ ...req, op: "exec" })), null, "an op not relayed");
  t.is(decodeRelay(relayRequestSchema, enc({ ...req, agent_id: "agt_x" })), null);
  t.is(decodeRelay(relayRequestSchema, enc({ ...req, keepalive_ms: 0 })), null);
  t.is(decodeRelay(relayRequestSchema, enc({ ...req, extra: 1 })), null, "strict: no unknown fields");
  t.truthy(decodeRelay(relayControlSchema, enc({ id: ID, action: "cancel", received: 10 })));
  t.is(decodeRelay(relayControlSchema, enc({ id: ID, action: "cancel", received: -1 })), null);
  t.deepEqual(decodeRelay(relayAnswerSchema, encodeRelay({ t: "end" })), { t: "end" });
  t.is(decodeRelay(relayAnswerSchema, enc({ t: "error", code: "nope", message: "x" })), null);
  t.is(decodeRelay(relayAnswerSchema, enc({ t: "chunk", lines: [{ text: 1 }] })), null);
  t.is(decodeRelay(relayAnswerSchema, enc({ t: "result", result: [1] })), null);
});

test("stats, snapshot and the live machine come back from the dc; its coded errors keep their codes", async (t) => {
  const { client, server } = pair();
  t.deepEqual(await client.request("dc1", AGENT, "stats"), { type: "stats", cpu: 0.5 });
  t.deepEqual(await client.request("dc1", AGENT, "snapshot"), { type: "snapshot", cpu: 0.5 });
  t.deepEqual(await client.request("dc1", AGENT, "machine"), {
    value: "registered",
    context: { agentId: AGENT },
  });
  const other = `agt_${"b".repeat(24)}`;
  const err = await t.throwsAsync(client.request("dc1", other, "stats"));
  t.is((err as NotFoundError).code, "EE-NOT-FOUND");
  const err2 = await t.throwsAsync(client.request("dc1", other, "machine"));
  t.is((err2 as NotFoundError).code, "EE-NOT-FOUND");
  await waitFor("nothing open on the dc", async () => server.size === 0 || undefined, 15_000);
  server.stop();
});

test("plain logs arrive in order and end", async (t) => {
  const { client, server } = pair();
  const got: string[] = [];
  await client.logs("dc1", AGENT, { tail: 3 }, (lines) => got.push(...lines.map((l) => l.text)));
  t.deepEqual(got, ["line 1", "line 2", "line 3"]);
  server.stop();
});

test("a follow streams until the master aborts; the dc's agent read is cancelled", async (t) => {
  const { client, server, reads } = pair();
  const abort = new AbortController();
  const got: string[] = [];
  const done = client.logs(
    "dc1",
    AGENT,
    { follow: true },
    (l) => got.push(...l.map((x) => x.text)),
    abort.signal,
  );
  await waitFor("the dc following", async () => reads.signals[0] || undefined, 15_000);
  reads.push(3);
  await waitFor("three lines on the master", async () => got.length === 3 || undefined, 15_000);
  abort.abort();
  await done;
  await waitFor("the dc's read cancelled", async () => reads.signals[0]!.aborted || undefined, 15_000);
  t.is(server.size, 0);
  server.stop();
});

test("a master gone silent: the dc stops the follow after four keep-alives", async (t) => {
  const bus = memoryBus();
  const reads = fakeReads();
  const server = new RelayServer({ dcId: "dc1", bus, reads, machine: () => undefined, log: silentLogger });
  server.start();
  const answers: unknown[] = [];
  bus.listen(relayReplySubject("dc1", ID), (m) => answers.push(JSON.parse(new TextDecoder().decode(m.data))));
  // A request and then nothing: no keep-alive, no cancel.
  bus.send(
    relayReadSubject("dc1"),
    encodeRelay({ id: ID, agent_id: AGENT, op: "logs", logs: { follow: true }, keepalive_ms: 50 }),
    relayReplySubject("dc1", ID),
  );
  await waitFor("the dc following", async () => reads.signals[0] || undefined, 15_000);
  const started = Date.now();
  await waitFor("the follow stopped", async () => reads.signals[0]!.aborted || undefined, 5_000);
  t.true(Date.now() - started >= 150, "not before the silence limit");
  t.is(server.size, 0);
  t.deepEqual(answers[0], { t: "alive" });
  server.stop();
});

test("a dc that does not answer fails the read EE-FED-UNAVAILABLE naming it; nobody listening fails at once", async (t) => {
  const bus = memoryBus();
  // Somebody listens on dc2's requests but never answers (a frozen dc).
  bus.listen(relayReadSubject("dc2"), () => {});
  const client = new RelayClient({ bus, log: silentLogger, keepaliveMs: 50 });
  const started = Date.now();
  const silent = await t.throwsAsync(client.request("dc2", AGENT, "stats"));
  t.is((silent as { code?: string }).code, "EE-FED-UNAVAILABLE");
  t.regex(silent!.message, /dc dc2 did not answer within 200 ms/);
  t.true(Date.now() - started < 10_000);
  const none = await t.throwsAsync(client.logs("dc3", AGENT, { follow: true }, () => {}));
  t.is((none as { code?: string }).code, "EE-FED-UNAVAILABLE");
  t.regex(none!.message, /dc dc3 is not reachable/);
});

test("malformed answers and foreign replies are dropped with the read going on", async (t) => {
  const bus = memoryBus();
  const reads = fakeReads();
  const server = new RelayServer({ dcId: "dc1", bus, reads, machine: () => undefined, log: silentLogger });
  server.start();
  // A request whose reply is another dc's reply space: dropped, nothing sent there.
  bus.send(
    relayReadSubject("dc1"),
    encodeRelay({ id: ID, agent_id: AGENT, op: "stats", keepalive_ms: 250 }),
    relayReplySubject("dc2", ID),
  );
  bus.send(relayReadSubject("dc1"), new TextEncoder().encode("garbage"), relayReplySubject("dc1", ID));
  const client = new RelayClient({ bus, log: silentLogger, keepaliveMs: 250 });
  const result = client.request("dc1", AGENT, "stats");
  // Junk on the read's reply subject before the answer: ignored.
  const replySubject = relayReplySubject("dc1", (bus.sent.at(-1)!.data as { id: string }).id);
  bus.send(replySubject, enc({ t: "result", result: "not an object" }));
  t.deepEqual(await result, { type: "stats", cpu: 0.5 });
  t.false(
    bus.sent.some((m) => m.subject.startsWith("ee.reply.dc2.")),
    "nothing into another dc's replies",
  );
  server.stop();
});

test("a master that falls behind the dc's window ends the follow EE-PROTO-SLOW-CONSUMER", async (t) => {
  const { client, server, reads } = pair({ windowBytes: 1_000 });
  const done = client.logs("dc1", AGENT, { follow: true }, () => {});
  await waitFor("the dc following", async () => reads.signals[0] || undefined, 15_000);
  // In one turn: the master has acknowledged nothing yet.
  reads.push(30);
  const err = await t.throwsAsync(done);
  t.is((err as { code?: string }).code, "EE-PROTO-SLOW-CONSUMER");
  t.true(reads.signals[0]!.aborted);
  server.stop();
});

test("reads beyond the dc's limit are refused EE-FED-UNAVAILABLE", async (t) => {
  const { client, server, reads } = pair({ maxOpen: 1 });
  const abort = new AbortController();
  const first = client.logs("dc1", AGENT, { follow: true }, () => {}, abort.signal);
  await waitFor("the dc following", async () => reads.signals[0] || undefined, 15_000);
  const err = await t.throwsAsync(client.request("dc1", AGENT, "stats"));
  t.is((err as { code?: string }).code, "EE-FED-UNAVAILABLE");
  t.regex(err!.message, /1 relayed reads open/);
  abort.abort();
  await first;
  server.stop();
});

test("a stopping dc ends its open reads EE-FED-UNAVAILABLE at once; a stopping master fails its own", async (t) => {
  const { client, server, reads } = pair({ keepaliveMs: 10_000 });
  const follow = client.logs("dc1", AGENT, { follow: true }, () => {});
  await waitFor("the dc following", async () => reads.signals[0] || undefined, 15_000);
  const started = Date.now();
  server.stop();
  const err = await t.throwsAsync(follow);
  t.is((err as { code?: string }).code, "EE-FED-UNAVAILABLE");
  t.regex(err!.message, /dc dc1 is shutting down/);
  t.true(Date.now() - started < 5_000, "not after the 40 s silence limit");
  t.true(reads.signals[0]!.aborted, "the agent's follow cancelled");

  const bus = memoryBus();
  bus.listen(relayReadSubject("dc2"), () => {});
  const master = new RelayClient({ bus, log: silentLogger, keepaliveMs: 10_000 });
  const pending = master.request("dc2", AGENT, "stats");
  master.stop();
  const stopped = await t.throwsAsync(pending);
  t.is((stopped as { code?: string }).code, "EE-FED-UNAVAILABLE");
  t.regex(stopped!.message, /shutting down/);
});
