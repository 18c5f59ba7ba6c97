// `npm run bench -- federation [--dcs N --dc-agents M --outage-s S --seconds S]`: federation figures on this
// machine, opt-in (it needs nats-server; the default bench run leaves it out). Real nats-servers (a hub and one
// leaf per dc, from `eectl nats config`), a master and N dc CPs in this process, and N × M simulated agents
// (sim-agent.ts, dev quotes) in one load generator process per dc. Measures, in one run: the raw JetStream
// publish rate on a leaf (acked, pipelined by 500 like the outbox: the baseline), the dc → master rate for a burst of outbox events on every dc at once, the
// time from N × M agents connecting to the master listing them all, end-to-end lag (event appended on a dc →
// applied on the master, sampled every 10 ms) at a steady rate, and catch-up after a hub outage of --outage-s.
// test/load/federation.ts is the same drill as a standalone script with one dc and no agents.
import type { ExecutionContext } from "ava";
import { connectBus } from "../../actors/federation/bus.ts";
import { encodeJson, type UpEvent } from "../../actors/federation/messages.ts";
import { silentLogger } from "../../lib/log.ts";
import { startTestCp, type TestCp } from "../helpers/cluster.ts";
import { startNatsFederation } from "../helpers/nats.ts";
import type { AgentsProcessArgs } from "./agents-process.ts";
import { Child } from "./child.ts";
import { quantile, round } from "./measure.ts";
import type { BenchOptions, Phase, PhaseResult } from "./phase.ts";

export interface FederationBenchOptions {
  dcs: number;
  agentsPerDc: number;
  outageS: number;
  /** Synthetic outbox events per dc in the burst. */
  burst: number;
  /** Events per second in the steady-lag measurement. */
  rate: number;
}

export const FEDERATION_DEFAULTS: FederationBenchOptions = {
  dcs: 2,
  agentsPerDc: 200,
  outageS: 10,
  burst: 2_000,
  rate: 200,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The raw baselines' message: an outbox event (the UpEvent the dc publishes) the size of a synthetic one. */
export const SYNTHETIC_EVENT = encodeJson({
  type: "event",
  seq: 1,
  at: Date.now(),
  kind: "bench.synthetic",
  agent_id: null,
  agent: null,
  deployment: null,
  data: { i: 1 },
} satisfies UpEvent);

/** Polls every 10 ms (the figures' resolution) until `ok`, or throws after `timeoutMs`. */
export async function until(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function federationPhase(f: FederationBenchOptions): Phase {
  return { name: "federation", run: (opts) => runFederation(opts, f) };
}

async function runFederation(opts: BenchOptions, f: FederationBenchOptions): Promise<PhaseResult> {
  const cleanups: (() => unknown)[] = [];
  // The test helpers only need teardown (and log).
  const t = {
    teardown: (fn: () => unknown) => cleanups.push(fn),
    log: () => {},
  } as unknown as ExecutionContext;
  try {
    const ids = Array.from({ length: f.dcs }, (_, i) => `dc${i + 1}`);
    opts.log(`federation: starting a hub, ${f.dcs} leaves, a master and ${f.dcs} dc CPs`);
    const nats = await startNatsFederation(t, ids);
    const natsOf = (s: { url: string; credsFile: string | null }) => ({
      url: s.url,
      ...(s.credsFile ? { credsFile: s.credsFile } : {}),
    });
    // Agents heartbeat at the bench's interval; staleness well above it, so no churn shows up as events. As in
    // the scale phase's CP: every simulated agent dials from 127.0.0.1, so the per-address handshake cap would
    // throttle the storm (refused agents back off and retry), and a re-attestation round would be a second
    // storm mid-run.
    const timing = {
      heartbeatMs: opts.heartbeatMs,
      staleAfterMs: Math.max(30_000, opts.heartbeatMs * 4),
      handshake: { maxPendingPerAddress: 1_000_000, maxPending: 1_000_000 },
      reattestMs: 24 * 3600_000,
    };
    const master = await startTestCp(t, {
      ...timing,
      federation: { role: "master", nats: natsOf(nats.hub) },
    });
    const dcs: TestCp[] = [];
    for (const dcId of ids)
      dcs.push(
        await startTestCp(t, {
          ...timing,
          federation: { role: "dc", dcId, nats: natsOf(nats.leaves.get(dcId)!), summaryMs: 500 },
        }),
      );
    type Dc = { dc_id: string; outbox_seq: number; agents: { by_state: Record<string, number> } };
    /** The master's datacenters; a keep-alive socket the busy master closed under a request is retried. */
    const view = async (): Promise<Dc[]> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return (await master.api<{ datacenters: Dc[] }>("/api/v2/datacenters")).body.datacenters;
        } catch (err) {
          if (attempt === 5) throw err;
          await sleep(100);
        }
      }
    };
    const newest = (cp: TestCp) => cp.cp.events.list({ tail: 1 })[0]?.id ?? 0;
    /** Every dc's newest event applied on the master. */
    const caughtUp = async () => {
      const v = await view().catch(() => []);
      return dcs.every((cp, i) => (v.find((d) => d.dc_id === ids[i])?.outbox_seq ?? -1) >= newest(cp));
    };
    await until("the master to follow every dc", caughtUp, 60_000);

    // (1) The baseline: raw JetStream publishes on dc1's leaf, pipelined by 500 like the outbox.
    const leaf = nats.leaves.get(ids[0]!)!;
    const bus = await connectBus({ ...natsOf(leaf), name: "bench", log: silentLogger });
    cleanups.push(() => bus.close());
    await bus.putStream({ name: "BENCH", description: "bench baseline", subjects: ["bench.>"] });
    let start = performance.now();
    for (let i = 0; i < f.burst; i += 500)
      await Promise.all(
        Array.from({ length: Math.min(500, f.burst - i) }, (_, j) =>
          bus.publish("bench.x", SYNTHETIC_EVENT, `p:${i + j}`),
        ),
      );
    const rawPerS = f.burst / ((performance.now() - start) / 1000);
    opts.log(`federation: raw JetStream ${Math.round(rawPerS)}/s`);

    // (2) N × M agents connect to their dcs at once; time until the master lists every one registered. The
    // agents run in one load generator per dc (agents-process.ts, as in the scale phase), not in this process:
    // with 9,000 sockets and quotes sharing one event loop with four CPs (and the default handshake caps), the
    // dcs held 7,149 of 3 × 3,000 after 300 s, and stopping 9,000 clients then never finished.
    const generators = dcs.map(
      () =>
        new Child("./agents-process.ts", {
          devDir: master.devDir,
          count: f.agentsPerDc,
          heartbeatMs: opts.heartbeatMs,
        } satisfies AgentsProcessArgs),
    );
    cleanups.push(() => Promise.all(generators.map((g) => g.kill())));
    await Promise.all(generators.map((g) => g.ready));
    start = performance.now();
    const storms = Promise.all(
      generators.map((g, d) => g.request("storm", { url: dcs[d]!.cp.wsUrl, timeoutMs: 600_000 })),
    );
    // A generator that fails (or is killed) ends the run with its error, not an unhandled rejection.
    let stormFailed: unknown = null;
    storms.catch((err: unknown) => {
      stormFailed = err;
    });
    const total = f.dcs * f.agentsPerDc;
    // Progress every 30 s: on a slow run it shows whether the storm stalls on the dcs or on the way up.
    let listed = 0;
    const progress = setInterval(() => {
      const onDcs = dcs
        .map((cp) => [...cp.cp.index.values()].filter((r) => r.state === "registered").length)
        .join(" + ");
      opts.log(`federation: ${listed} of ${total} listed on the master; registered on the dcs: ${onDcs}`);
    }, 30_000);
    cleanups.push(() => clearInterval(progress));
    await until(
      "every agent listed on the master",
      async () => {
        if (stormFailed) throw stormFailed;
        listed = (await view()).reduce((n, d) => n + (d.agents.by_state.registered ?? 0), 0);
        return listed >= total;
      },
      600_000,
    );
    clearInterval(progress);
    const listedMs = performance.now() - start;
    await storms;
    opts.log(
      `federation: ${total} agents registered on the dcs → listed on the master in ${Math.round(listedMs)} ms`,
    );

    // (3) A burst of outbox events on every dc at once, through the whole path.
    start = performance.now();
    for (const cp of dcs) {
      for (let i = 0; i < f.burst; i++)
        cp.cp.events.append({ at: Date.now(), kind: "bench.synthetic", data: { i } });
      cp.cp.events.flush();
    }
    await until("the burst on the master", caughtUp, 300_000);
    const eventsPerS = (f.dcs * f.burst) / ((performance.now() - start) / 1000);
    opts.log(`federation: dc → master ${Math.round(eventsPerS)} events/s`);

    // (4) Steady rate on dc1: each event's lag from append to applied on the master.
    const dc1 = dcs[0]!;
    const appendedAt = new Map<number, number>();
    const lags: number[] = [];
    let sampling = true;
    const outbox1 = async () => (await view()).find((d) => d.dc_id === ids[0])?.outbox_seq ?? 0;
    const sampler = (async () => {
      let seen = await outbox1();
      while (sampling || seen < newest(dc1)) {
        const now = Date.now();
        const s = await outbox1();
        for (let id = seen + 1; id <= s; id++) {
          const at = appendedAt.get(id);
          if (at !== undefined) lags.push(now - at);
        }
        seen = s;
        await sleep(10);
      }
    })();
    const steady = Math.round(f.rate * opts.seconds);
    const t0 = Date.now();
    for (let i = 0; i < steady; i++) {
      const due = t0 + (i * 1000) / f.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      dc1.cp.events.append({ at: Date.now(), kind: "bench.synthetic", data: { i } });
      dc1.cp.events.flush();
      appendedAt.set(newest(dc1), Date.now());
    }
    sampling = false;
    await sampler;

    // (5) Hub outage: events keep coming on every dc; time from the hub's restart to the master having them all.
    opts.log(`federation: hub down for ${f.outageS} s`);
    await nats.hub.kill();
    const outageEnd = Date.now() + f.outageS * 1000;
    let during = 0;
    while (Date.now() < outageEnd) {
      for (const cp of dcs)
        cp.cp.events.append({ at: Date.now(), kind: "bench.synthetic", data: { i: during } });
      during++;
      await sleep(1000 / Math.min(f.rate, 100));
    }
    for (const cp of dcs) cp.cp.events.flush();
    const restart = Date.now();
    await nats.hub.start();
    await until("the master to catch up after the outage", caughtUp, 300_000);
    const catchUpMs = Date.now() - restart;
    opts.log(`federation: caught up ${catchUpMs} ms after the hub came back`);

    const metrics = {
      fed_dcs: f.dcs,
      fed_agents_per_dc: f.agentsPerDc,
      fed_raw_jetstream_publish_per_s: round(rawPerS),
      fed_events_per_s: round(eventsPerS),
      fed_agents_listed_ms: round(listedMs),
      fed_lag_p50_ms: quantile(lags, 0.5),
      fed_lag_p99_ms: quantile(lags, 0.99),
      fed_outage_s: f.outageS,
      fed_catch_up_ms: catchUpMs,
    };
    return {
      metrics,
      figures: {
        fed_raw_jetstream_publish_per_s: {
          label: "raw JetStream publish (leaf, pipelined)",
          value: metrics.fed_raw_jetstream_publish_per_s,
          unit: "/s",
        },
        fed_events_per_s: {
          label: `dc → master events (${f.dcs} dcs at once)`,
          value: metrics.fed_events_per_s,
          unit: "/s",
          baseline: "fed_raw_jetstream_publish_per_s",
        },
        fed_agents_listed_ms: {
          label: `${total} agents on the dcs → listed on the master`,
          value: metrics.fed_agents_listed_ms,
          unit: " ms",
        },
        fed_lag_p50_ms: {
          label: `end-to-end lag p50 at ${f.rate}/s`,
          value: metrics.fed_lag_p50_ms,
          unit: " ms",
        },
        fed_lag_p99_ms: {
          label: `end-to-end lag p99 at ${f.rate}/s`,
          value: metrics.fed_lag_p99_ms,
          unit: " ms",
        },
        fed_catch_up_ms: {
          label: `catch-up after a ${f.outageS} s hub outage`,
          value: catchUpMs,
          unit: " ms",
        },
      },
      notes: [
        `federation: ${lags.length} lag samples; ${during * f.dcs} events written on the dcs during the outage`,
      ],
    };
  } finally {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
  }
}
