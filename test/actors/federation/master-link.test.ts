// The master's side of hellos: the first hello of a dc creates its mirror and command stream on the hub and
// starts reading the mirror; a hello while the view of that dc is stale re-applies the mirror's config (the kick
// nats-server 2.10 needs after a leaf reconnects), backing off 5 s, 10 s, ...; a hello from a healthy dc kicks
// nothing. The bus is a stand-in recording calls (the real one runs in test/e2e/federation*.test.ts).
import test from "ava";
import type { BusMessage, FederationBus, StreamSpec } from "../../../actors/federation/bus.ts";
import { FederatedView } from "../../../actors/federation/federated-view.ts";
import { MasterLink } from "../../../actors/federation/master-link.ts";
import { encodeJson } from "../../../actors/federation/messages.ts";
import { silentLogger } from "../../../lib/log.ts";

function fixture() {
  let now = 1_000_000;
  const puts: string[] = [];
  let hello: ((subject: string, data: Uint8Array) => Uint8Array) | null = null;
  let feed: ((m: BusMessage) => unknown) | null = null;
  const bus: FederationBus = {
    putStream: async (spec: StreamSpec) => {
      puts.push(spec.name);
    },
    streamState: async () => null,
    streamDescriptions: async () => [],
    publish: async () => ({ seq: 1, duplicate: false }),
    lastMessage: async () => null,
    follow: (_stream, _from, onMessage) => {
      feed = onMessage;
      return () => {};
    },
    work: () => () => {},
    kvPut: async () => 1,
    request: async () => new Uint8Array(),
    serve: (_subject, handler) => {
      hello = handler;
      return () => {};
    },
    listen: () => () => {},
    send: () => {},
    close: async () => {},
  };
  const view = new FederatedView();
  const link = new MasterLink({ bus, view, log: silentLogger, degradedAfterMs: 30_000, now: () => now });
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    link,
    puts,
    start: () => link.start(),
    hello: async () => {
      hello!("ee.hello.dc1", encodeJson({ dc_id: "dc1", at: now }));
      await settle();
    },
    summary: (at: number, seq: number) =>
      feed!({
        seq,
        subject: "ee.up.dc1.health",
        msgId: null,
        data: encodeJson({
          type: "health",
          at,
          outbox_seq: 0,
          agents: { total: 0, connected: 0, by_state: {} },
        }),
      }),
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

test("a dc's first hello creates its streams on the hub and starts following its mirror", async (t) => {
  const f = fixture();
  await f.start();
  await f.hello();
  t.deepEqual(f.puts, ["EE_UP_DC1", "EE_DOWN_DC1"]);
  f.summary(f.now(), 1);
  t.like(f.link.datacenters()[0], { dc_id: "dc1", status: "healthy", last_seq: 1 });
});

test("a hello while the dc's view is stale kicks the mirror, with a growing back-off; a healthy dc is left alone", async (t) => {
  const f = fixture();
  await f.start();
  await f.hello();
  f.summary(f.now(), 1);
  f.puts.length = 0;
  await f.hello();
  t.deepEqual(f.puts, [], "healthy: no kick");
  f.advance(11_000); // past the kick's staleness bound (min(degraded threshold, 10 s))
  await f.hello();
  t.deepEqual(f.puts, ["EE_UP_DC1"], "stale: the mirror's config re-applied");
  f.advance(2_000);
  await f.hello();
  t.is(f.puts.length, 1, "within the 5 s back-off");
  f.advance(4_000);
  await f.hello();
  t.is(f.puts.length, 2, "after it");
  f.advance(6_000);
  await f.hello();
  t.is(f.puts.length, 2, "the next back-off is 10 s");
  f.summary(f.now(), 2);
  await f.hello();
  f.advance(11_000);
  await f.hello();
  t.is(f.puts.length, 3, "healthy again resets the back-off to 5 s... and a new staleness kicks at once");
});
