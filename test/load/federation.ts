// Federation figures on this machine: `npx tsx test/load/federation.ts [--rate N] [--seconds S] [--outage-s S]`.
// Real nats-servers (a hub and a leaf from `eectl nats config`), a master and a dc CP in this process. Measures
// (1) the raw JetStream publish rate on the leaf (acked, sequential and pipelined by 500 as the outbox), (2) the
// dc → master rate for a burst of outbox events, (3) end-to-end lag (event appended on the dc → applied on the
// master, sampled every 10 ms) at a steady rate, and (4) catch-up time after a hub outage of --outage-s.
// Events are synthetic log entries (no agent record attached), so they are smaller than an agent's.
import { parseArgs } from "node:util";
import type { ExecutionContext } from "ava";
import { connectBus } from "../../actors/federation/bus.ts";
import { silentLogger } from "../../lib/log.ts";
import { startTestCp, type TestCp } from "../helpers/cluster.ts";
import { startNatsFederation } from "../helpers/nats.ts";
import { SYNTHETIC_EVENT, until } from "./federation-phase.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "5" },
    burst: { type: "string", default: "5000" },
    "outage-s": { type: "string", default: "30" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const burst = Number(values.burst);
const outageS = Number(values["outage-s"]);

const cleanups: (() => unknown)[] = [];
/** The test helpers only need teardown. */
const t = {
  teardown: (fn: () => unknown) => cleanups.push(fn),
  log: () => {},
} as unknown as ExecutionContext;

const nats = await startNatsFederation(t, ["dc1"]);
const leaf = nats.leaves.get("dc1")!;
const master = await startTestCp(t, {
  federation: { role: "master", nats: { url: nats.hub.url, credsFile: nats.hub.credsFile! } },
});
const dc = await startTestCp(t, {
  federation: { role: "dc", dcId: "dc1", nats: { url: leaf.url, credsFile: leaf.credsFile! } },
});

const outboxSeq = async (cp: TestCp) =>
  (await cp.api<{ datacenters: { outbox_seq: number }[] }>("/api/v2/datacenters")).body.datacenters[0]
    ?.outbox_seq ?? 0;
const newestEvent = () => dc.cp.events.list({ tail: 1 })[0]?.id ?? 0;

const pct = (xs: number[], p: number) =>
  xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

await until(
  "the master to follow dc1",
  async () => (await outboxSeq(master)) >= newestEvent() && newestEvent() > 0,
  60_000,
);

// (1) Raw JetStream: sequential acked publishes of a payload the size of a synthetic event.
const bus = await connectBus({ url: leaf.url, credsFile: leaf.credsFile!, name: "bench", log: silentLogger });
await bus.putStream({ name: "BENCH", description: "bench", subjects: ["bench.>"] });
let start = performance.now();
for (let i = 0; i < burst; i++) await bus.publish("bench.x", SYNTHETIC_EVENT, `b:${i}`);
const rawRate = burst / ((performance.now() - start) / 1000);
// Pipelined in batches of 500, as the outbox does.
start = performance.now();
for (let i = 0; i < burst; i += 500)
  await Promise.all(
    Array.from({ length: Math.min(500, burst - i) }, (_, j) =>
      bus.publish("bench.y", SYNTHETIC_EVENT, `p:${i + j}`),
    ),
  );
const rawPipelined = burst / ((performance.now() - start) / 1000);

// (2) A burst of outbox events through the whole path.
const append = (i: number) => dc.cp.events.append({ at: Date.now(), kind: "bench.synthetic", data: { i } });
start = performance.now();
for (let i = 0; i < burst; i++) append(i);
dc.cp.events.flush();
const burstLast = newestEvent();
await until("the burst on the master", async () => (await outboxSeq(master)) >= burstLast, 300_000);
const pathRate = burst / ((performance.now() - start) / 1000);

// (3) Steady rate: each event's lag from append (dc) to applied (master), sampled.
const appendedAt = new Map<number, number>();
const lags: number[] = [];
let sampling = true;
const sampler = (async () => {
  let seen = await outboxSeq(master);
  while (sampling || seen < newestEvent()) {
    const now = Date.now();
    const s = await outboxSeq(master);
    for (let id = seen + 1; id <= s; id++) {
      const at = appendedAt.get(id);
      if (at !== undefined) lags.push(now - at);
    }
    seen = s;
    await new Promise((r) => setTimeout(r, 10));
  }
})();
const total = rate * seconds;
const t0 = Date.now();
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / rate;
  if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  append(i);
  dc.cp.events.flush();
  appendedAt.set(newestEvent(), Date.now());
}
sampling = false;
await sampler;

// (4) Hub outage: events keep coming on the dc; time from the hub's restart to the master having them all.
await nats.hub.kill();
const outageEnd = Date.now() + outageS * 1000;
let n = 0;
while (Date.now() < outageEnd) {
  append(n++);
  await new Promise((r) => setTimeout(r, 1000 / Math.min(rate, 100)));
}
dc.cp.events.flush();
const outageLast = newestEvent();
const restart = Date.now();
await nats.hub.start();
await until(
  "the master to catch up",
  async () => (await outboxSeq(master).catch(() => 0)) >= outageLast,
  300_000,
);
const catchUpMs = Date.now() - restart;

console.log(
  JSON.stringify(
    {
      raw_jetstream_publish_per_s: { sequential: Math.round(rawRate), pipelined: Math.round(rawPipelined) },
      dc_to_master_events_per_s: Math.round(pathRate),
      steady: { rate, seconds, events: lags.length, lag_p50_ms: pct(lags, 0.5), lag_p99_ms: pct(lags, 0.99) },
      outage: { seconds: outageS, events_during: n, catch_up_ms: catchUpMs },
    },
    null,
    2,
  ),
);
await bus.close();
for (const fn of cleanups.reverse()) await fn();
process.exit(0);
