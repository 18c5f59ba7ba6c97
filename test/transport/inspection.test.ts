// Inspection plumbing without a CP: what scrubbing keeps and removes, watchActor's present-state-first stream and
// its detach, ActorWatchers following a restart and ending after the final snapshot, and the inspector server's
// page, its replay of where each actor is now, and a busy port as a typed error.
import { createServer } from "node:net";
import test from "ava";
import WebSocket from "ws";
import { assign, createActor, setup } from "xstate";
import { ActorWatchers, watchActor } from "../../actors/actor-watchers.ts";
import {
  afterQueuedEvents,
  SCRUBBED,
  type StatelyEvent,
  scrub,
  statelyObserver,
} from "../../transport/inspection.ts";
import { serveInspector } from "../../transport/inspector-server.ts";
import { waitFor } from "../helpers/cluster.ts";

test("scrub keeps plain data and removes secrets, compose texts, functions and depth", (t) => {
  const out = scrub({
    agent_id: "agt_1",
    api_secret: new Uint8Array([1, 2, 3]),
    apiSecret: "s",
    bootstrap_token: "tok",
    registry_auth: { "reg:5000": { username: "u", password: "p" } },
    nested: { password: "p", Authorization: "Bearer x", private_key: "k", ok: 1 },
    compose: "services:\n  app:\n    environment:\n      KEY: hunter2\n",
    nonce: new Uint8Array([0xab, 0xcd]),
    quote: new Uint8Array(5000),
    now: () => 1,
    tags: new Set(["a"]),
    when: new Date(0),
    big: 10n,
    nan: Number.NaN,
  }) as Record<string, unknown>;
  t.deepEqual(out, {
    agent_id: "agt_1",
    api_secret: SCRUBBED,
    apiSecret: SCRUBBED,
    bootstrap_token: SCRUBBED,
    registry_auth: SCRUBBED,
    nested: { password: SCRUBBED, Authorization: SCRUBBED, private_key: SCRUBBED, ok: 1 },
    compose: "[53 bytes]",
    nonce: "abcd",
    quote: "<5000 bytes>",
    tags: ["a"],
    when: "1970-01-01T00:00:00.000Z",
    big: "10",
    nan: null,
  });
  t.false(JSON.stringify(out).includes("hunter2"));
  // Cycles cannot recurse forever.
  const loop: Record<string, unknown> = { a: 1 };
  loop.self = loop;
  t.notThrows(() => JSON.stringify(scrub(loop)));
});

const counter = setup({
  types: { context: {} as { n: number; secret: string }, events: {} as { type: "INC" } | { type: "END" } },
}).createMachine({
  id: "counter",
  context: { n: 0, secret: "hush" },
  initial: "counting",
  states: {
    counting: { on: { INC: { actions: assign({ n: ({ context }) => context.n + 1 }) }, END: "done" } },
    done: { type: "final" },
  },
});

function collect() {
  const events: StatelyEvent[] = [];
  return { events, observer: statelyObserver((e) => events.push(e)) };
}

const counts = (events: StatelyEvent[]) =>
  events
    .filter((e) => e.type === "@xstate.snapshot")
    .map((e) => (e.snapshot as { context: { n: number } }).context.n);

test("watchActor sends the actor and its present snapshot first, then live events, until detached", async (t) => {
  const actor = createActor(counter).start();
  actor.send({ type: "INC" });
  const c = collect();
  const detach = watchActor(actor, await c.observer);
  actor.send({ type: "INC" });
  await waitFor("the live snapshot", () => counts(c.events).includes(2));
  t.is(c.events[0]!.type, "@xstate.actor");
  t.is(c.events[0]!.name, "counter");
  t.deepEqual(counts(c.events), [1, 2], "present state first, then the change");
  t.true(c.events.some((e) => e.type === "@xstate.event" && (e.event as { type: string }).type === "INC"));
  t.true(
    c.events
      .filter((e) => e.type === "@xstate.snapshot")
      .every((e) => (e.snapshot as { context: { secret: string } }).context.secret === SCRUBBED),
  );
  detach();
  actor.send({ type: "INC" });
  await new Promise<void>((r) => afterQueuedEvents(r));
  t.deepEqual(counts(c.events), [1, 2], "nothing after detach");
});

test("ActorWatchers follow a recreated actor and end after the final snapshot", async (t) => {
  const watchers = new ActorWatchers();
  const first = createActor(counter).start();
  const c = collect();
  let ended = 0;
  watchers.watch("k", first, await c.observer, () => ended++);
  const second = createActor(counter).start();
  watchers.started("k", second);
  first.send({ type: "INC" });
  second.send({ type: "INC" });
  second.send({ type: "INC" });
  await waitFor("the second actor's snapshots", () => counts(c.events).includes(2));
  const sessions = new Set(c.events.filter((e) => e.type === "@xstate.snapshot").map((e) => e.sessionId));
  t.deepEqual([...sessions].sort(), [first.sessionId, second.sessionId].sort());
  t.deepEqual(
    counts(c.events.filter((e) => e.sessionId === first.sessionId)),
    [0],
    "the replaced actor's later snapshots are not forwarded",
  );
  t.deepEqual(counts(c.events.filter((e) => e.sessionId === second.sessionId)), [0, 1, 2]);
  second.subscribe((s) => {
    if (s.status === "done") watchers.ended("k");
  });
  second.send({ type: "END" });
  await waitFor("the end", () => ended === 1);
  await waitFor("the final snapshot", () =>
    c.events.some(
      (e) => e.type === "@xstate.snapshot" && (e.snapshot as { status: string }).status === "done",
    ),
  );
  t.is(ended, 1);
});

test("the inspector server serves its page, shows late viewers where each actor is now, and refuses a busy port", async (t) => {
  const server = await serveInspector("127.0.0.1", 0);
  t.teardown(() => server.close());
  const actor = createActor(counter).start();
  const observer = await statelyObserver((e) => server.send(e));
  watchActor(actor, observer);
  actor.send({ type: "INC" });
  actor.send({ type: "INC" });
  await new Promise<void>((r) => afterQueuedEvents(r));

  const events: StatelyEvent[] = [];
  const ws = new WebSocket(server.wsUrl);
  t.teardown(() => ws.terminate());
  ws.on("message", (d) => events.push(JSON.parse(String(d)) as StatelyEvent));
  await waitFor("the replay", () => events.length >= 2);
  // A live event after the replay marks its end: whatever the replay held arrived before it (one socket, in order).
  actor.send({ type: "INC" });
  await waitFor("the live snapshot", () => counts(events).includes(3));
  const live = (e: StatelyEvent) => e.type === "@xstate.event" || counts([e])[0] === 3;
  const replay = events.slice(0, events.findIndex(live));
  t.deepEqual(
    replay.map((e) => e.type),
    ["@xstate.actor", "@xstate.snapshot"],
    "the actor and its latest snapshot, not the events before",
  );
  t.deepEqual(counts(replay), [2]);

  t.regex(
    await (await fetch(server.url)).text(),
    /<iframe id="inspector" src="https:\/\/stately\.ai\/inspect">/,
  );
  t.is((await fetch(`${server.url}other`)).status, 404);

  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const err = await t.throwsAsync(serveInspector("127.0.0.1", port));
  t.is((err as { code?: string }).code, "EE-CONFIG-INVALID");
  t.regex(err!.message, /EADDRINUSE/);
});
