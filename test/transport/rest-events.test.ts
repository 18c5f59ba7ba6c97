// The watch stream (GET /api/v2/agents/events) against a client that stops reading: past its cap the stream ends
// with an `error` event carrying EE-PROTO-SLOW-CONSUMER and stops listening, while a client that reads far more
// than the cap keeps its stream, and a cut-off client that never reads again is disconnected after the drain time.
// The REST app and HTTP are real; transitions come from a view the test drives.
import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import test, { type ExecutionContext } from "ava";
import type { Transition } from "../../actors/agent-index.ts";
import type { CpView } from "../../transport/rest/view.ts";
import { serveRest } from "../helpers/rest-app.ts";

const CAP = 256 * 1024;
/** Far beyond loopback socket buffers (a few MiB) and the cap. */
const VOLUME = 48 * 1024 * 1024;

async function serve(t: ExecutionContext, slowConsumerDrainMs?: number) {
  const transitions = new EventEmitter();
  const view = {
    agents: () => [],
    onTransition(listener: (t: Transition) => void) {
      transitions.on("t", listener);
      return () => transitions.off("t", listener);
    },
  } as unknown as CpView;
  const { server, open } = await serveRest(t, view, {
    eventsMaxBufferedBytes: CAP,
    ...(slowConsumerDrainMs === undefined ? {} : { slowConsumerDrainMs }),
  });
  const res = await open("/api/v2/agents/events");
  const connections = () =>
    new Promise<number>((resolve, reject) =>
      server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
  return { transitions, res, connections };
}

/** Emits transitions of about 1 KiB, a batch per turn of the loop, until `volume` bytes or nobody listens. */
async function flood(transitions: EventEmitter, volume: number): Promise<number> {
  const t: Transition = {
    agent_id: "agt_0123456789abcdef01234567",
    vm_name: "vm-".padEnd(1000, "x"),
    from: "registered",
    to: "healthy",
    at: Date.now(),
    reason: null,
  };
  let sent = 0;
  while (sent < volume && transitions.listenerCount("t") > 0) {
    for (let i = 0; i < 32; i++, sent += 1024) transitions.emit("t", t);
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

function collect(res: IncomingMessage): { text: () => string; ended: Promise<void> } {
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (d: string) => {
    text += d;
  });
  return { text: () => text, ended: new Promise((resolve) => res.on("end", resolve)) };
}

test("a watcher that stops reading is cut off at the cap with an EE-PROTO-SLOW-CONSUMER event", async (t) => {
  const { transitions, res } = await serve(t);
  t.is(res.statusCode, 200);
  res.pause();
  const sent = await flood(transitions, VOLUME);
  t.is(transitions.listenerCount("t"), 0, "the stream stopped listening");
  t.true(sent < VOLUME, `${sent} bytes of transitions before the cut-off`);

  const { text, ended } = collect(res);
  res.resume();
  await ended;
  const events = text().trimEnd().split("\n\n");
  t.is(events[0], "event: ready\ndata: {}");
  const last = events.at(-1)!;
  t.true(last.startsWith("event: error\n"), last.slice(0, 80));
  t.like(JSON.parse(last.split("data: ")[1]!), { error: { code: "EE-PROTO-SLOW-CONSUMER" } });
});

test("a watcher that reads keeps its stream through 32 times the cap", async (t) => {
  const { transitions, res } = await serve(t);
  const { text } = collect(res);
  const sent = await flood(transitions, 8 * 1024 * 1024);
  t.is(sent, 8 * 1024 * 1024);
  t.is(transitions.listenerCount("t"), 1, "still listening");
  t.false(text().includes("event: error"));
});

test("a cut-off watcher that never reads again is disconnected after the drain time", async (t) => {
  const { transitions, res, connections } = await serve(t, 300);
  res.pause();
  await flood(transitions, VOLUME);
  t.is(transitions.listenerCount("t"), 0);
  t.is(
    await connections(),
    1,
    "the connection outlives the stream's end while its backlog may still be read",
  );
  const deadline = Date.now() + 5_000;
  while ((await connections()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(await connections(), 0, "dropped after the drain time");
});
