// The `scale` phase: one control plane process against N simulated agents in one or two load-generator processes
// (real agent protocol code, dev attestation, no Docker), with the baselines measured in the same run. Steps:
// handshake baseline → register storm → steady heartbeats (ack latency, CP memory and CPU) → heartbeat flood
// interleaved with the echo baseline (ingest throughput) → listing → deploy fan-out → CP SIGKILL with a wiped DB
// and rehydration.
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { devInit } from "../../attestation/dev-pki.ts";
import type { AgentsProcessArgs, Throughput } from "./agents-process.ts";
import { Child } from "./child.ts";
import type { CpProcessArgs, CpStats } from "./cp-process.ts";
import { quantile, round } from "./measure.ts";
import type { Pauses } from "./pauses.ts";
import type { BenchOptions, Figure, Phase, PhaseResult } from "./phase.ts";

/** Agents per load-generator process at most: above it a second process keeps the generators off the critical path. */
const AGENTS_PER_GENERATOR = 5_000;
const GENERATORS_MAX = 2;
/** The throughput method (heartbeat flood and echo alike): this many connections, this many messages in flight each. */
const FLOOD_CONNECTIONS = 100;
const FLOOD_WINDOW = 16;
const FLOOD_ROUNDS = 3;
/** Concurrent POST /api/v2/deployments, each naming its agent. */
const DEPLOYS = 1_000;
/** --expose-gc: RSS is read after a full GC. EE_BENCH_CP_FLAGS and EE_BENCH_GEN_FLAGS add V8 flags to try. */
const CP_NODE_FLAGS = ["--expose-gc", ...flagsFrom(process.env.EE_BENCH_CP_FLAGS)];
const GEN_NODE_FLAGS = flagsFrom(process.env.EE_BENCH_GEN_FLAGS);
/** Keep-alive connections the deploy burst is sent over. */
const DEPLOY_SOCKETS = 32;
const HANDSHAKE_CONCURRENCY = 32;
const LIST_REPEATS = 5;
const ADMIN_TOKEN = "bench-admin-token-0123456789";
// An image no registry has is fine: the simulated agents run nothing.
const COMPOSE = "services:\n  app:\n    image: bench/app:1\n";

export const scalePhase: Phase = {
  name: "scale",
  async run(opts: BenchOptions): Promise<PhaseResult> {
    const work = mkdtempSync(join(tmpdir(), "ee-bench-scale-"));
    const children: Child[] = [];
    try {
      return await runScale(opts, work, children);
    } finally {
      await Promise.all(children.map((c) => c.close()));
      rmSync(work, { recursive: true, force: true });
    }
  },
};

type Spawn = (module: string, args: unknown, nodeFlags?: string[]) => Child;

/** The load generators and the echo server: all the handshake baseline needs, up before the CP. */
interface Load {
  opts: BenchOptions;
  spawn: Spawn;
  generators: Child[];
  echo: Child;
  echoUrl: string;
}

/** What the steps after the CP's start share. `cp` is replaced by the rehydration step's restart. */
interface Run extends Load {
  cpArgs: CpProcessArgs;
  cp: Child;
  port: number;
  api: (method: string, path: string, body?: unknown) => Promise<unknown>;
}

/** The counters read at the end of each step; their labels are also the CP's and generators' CPU-profile cut points. */
interface Cut {
  cp: CpStats;
  genCpuS: number;
}

async function runScale(opts: BenchOptions, work: string, children: Child[]): Promise<PhaseResult> {
  const n = opts.agents;
  const devDir = join(work, "dev");
  await devInit(devDir);
  const spawn: Spawn = (module, args, nodeFlags = []) => {
    const c = new Child(module, args, { nodeFlags });
    children.push(c);
    return c;
  };

  const load = await startLoad(opts, spawn, devDir);
  const handshakes = await handshakeStep(load);
  const run = await startCp(load, devDir, join(work, "cp"));
  const boot = await cut(run, "boot");
  const storm = await stormStep(run, boot);
  const steady = await steadyStep(run, boot, storm.after);
  const flood = await floodStep(run, steady.after);
  const listing = await listingStep(run);
  const deploy = await deployStep(run, flood.after);
  const rehydrate = await rehydrateStep(run);
  await Promise.all(run.generators.map((g) => g.request("stop")));

  const rssPerAgentKb = (steady.after.cp.rss - boot.cp.rss) / n / 1024;
  const metrics = {
    register_storm_s: round(storm.stormS, 2),
    registrations_per_s: round(n / storm.stormS),
    register_p50_ms: round(quantile(storm.registerMs, 0.5), 1),
    register_p99_ms: round(quantile(storm.registerMs, 0.99), 1),
    heartbeat_msgs_per_s: round(flood.hbPerS),
    echo_baseline_msgs_per_s: round(flood.echoPerS),
    echo_handshakes_per_s: round(handshakes.perS),
    heartbeat_ratio: round(flood.hbPerS / flood.echoPerS, 3),
    heartbeat_ack_p50_ms: round(quantile(steady.acks, 0.5), 1),
    heartbeat_ack_p99_ms: round(quantile(steady.acks, 0.99), 1),
    heartbeat_acks_sampled: steady.acks.length,
    reregistered_in_steady: steady.reregistered,
    rss_idle_mb: round(boot.cp.rss / 2 ** 20, 1),
    rss_at_n_mb: round(steady.after.cp.rss / 2 ** 20, 1),
    rss_per_agent_kb: round(rssPerAgentKb, 1),
    cp_loop_max_steady_ms: round(steady.after.cp.loop_max_ms),
    cp_gc_max_steady_ms: round(steady.after.cp.gc_max_ms),
    generators_gc_max_steady_ms: round(steady.genGcMaxMs),
    cp_cpu_storm_s: round(storm.cpCpuS, 2),
    generators_cpu_storm_s: round(storm.genCpuS, 2),
    generators_cpu_steady_pct: round(steady.genCpuPct, 1),
    cp_cpu_steady_pct: round(steady.cpCpuPct, 1),
    cp_cpu_flood_s: round(flood.cpCpuS, 2),
    cp_cpu_deploy_s: round(deploy.cpCpuS, 2),
    deploys: deploy.deploys,
    deploy_posts_s: round(deploy.postsS, 2),
    deploy_all_healthy_s: round(deploy.allHealthyS, 2),
    deploy_dispatch_p50_ms: round(quantile(deploy.dispatchMs, 0.5), 1),
    deploy_dispatch_p99_ms: round(quantile(deploy.dispatchMs, 0.99), 1),
    deploy_burst_p50_ms: round(quantile(deploy.burstMs, 0.5), 1),
    deploy_burst_p99_ms: round(quantile(deploy.burstMs, 0.99), 1),
    cp_loop_max_deploy_ms: round(deploy.cpLoopMaxMs),
    generators_loop_max_deploy_ms: round(deploy.genLoopMaxMs),
    cp_boot_s: round(rehydrate.bootS, 2),
    rehydrate_s: round(rehydrate.rehydrateS, 2),
    cp_cpu_rehydrate_s: round(rehydrate.cpCpuS, 2),
    list_agents_ms: round(listing.p50Ms, 1),
    load_generators: run.generators.length,
  };
  const fig = (label: string, value: number | null, unit: string, baseline?: string): Figure => ({
    label,
    value,
    unit,
    ...(baseline ? { baseline } : {}),
  });
  const figures: Record<string, Figure> = {
    echo_baseline_msgs_per_s: fig(
      "raw ws + msgpackr echo (baseline)",
      metrics.echo_baseline_msgs_per_s,
      " msg/s",
    ),
    heartbeat_msgs_per_s: fig(
      "heartbeat ingest (goal ≥ 0.5)",
      metrics.heartbeat_msgs_per_s,
      " msg/s",
      "echo_baseline_msgs_per_s",
    ),
    echo_handshakes_per_s: fig("raw ws handshakes (baseline)", metrics.echo_handshakes_per_s, "/s"),
    registrations_per_s: fig(
      "registrations in the storm",
      metrics.registrations_per_s,
      "/s",
      "echo_handshakes_per_s",
    ),
    register_storm_s: fig(`storm of ${n} (goal ≤ 15 s)`, metrics.register_storm_s, " s"),
    register_p50_ms: fig("registration p50", metrics.register_p50_ms, " ms"),
    register_p99_ms: fig("registration p99", metrics.register_p99_ms, " ms"),
    heartbeat_ack_p99_ms: fig(
      `heartbeat ack p99 at ${opts.heartbeatMs} ms (goal < 100)`,
      metrics.heartbeat_ack_p99_ms,
      " ms",
    ),
    rss_per_agent_kb: fig("CP RSS per agent above idle (goal ≤ 30)", metrics.rss_per_agent_kb, " KB"),
    cp_cpu_steady_pct: fig("CP CPU at steady heartbeats", metrics.cp_cpu_steady_pct, " %"),
    deploy_dispatch_p50_ms: fig(
      `deploy dispatch p50 (${deploy.deploys} concurrent)`,
      metrics.deploy_dispatch_p50_ms,
      " ms",
    ),
    deploy_dispatch_p99_ms: fig(`deploy dispatch p99 (goal < 100)`, metrics.deploy_dispatch_p99_ms, " ms"),
    rehydrate_s: fig(`rehydration of ${n} (goal ≤ 20 s)`, metrics.rehydrate_s, " s"),
    list_agents_ms: fig("GET /api/v2/agents (goal < 200)", metrics.list_agents_ms, " ms"),
  };
  return { metrics, figures, notes: [] };
}

/** Spawns the load generators, each with its share of the agents (not yet connected), and the echo server. */
async function startLoad(opts: BenchOptions, spawn: Spawn, devDir: string): Promise<Load> {
  const n = opts.agents;
  const gens = Math.min(GENERATORS_MAX, Math.ceil(n / AGENTS_PER_GENERATOR));
  const share = (i: number) => Math.floor(n / gens) + (i < n % gens ? 1 : 0);
  opts.log(`scale: ${n} agents in ${gens} load generator(s), heartbeat every ${opts.heartbeatMs} ms`);
  const generators = Array.from({ length: gens }, (_, i) =>
    spawn(
      "./agents-process.ts",
      {
        devDir,
        count: share(i),
        heartbeatMs: opts.heartbeatMs,
      } satisfies AgentsProcessArgs,
      GEN_NODE_FLAGS,
    ),
  );
  await Promise.all(generators.map((g) => g.ready));
  const echo = spawn("./echo-server.ts", { port: 0 });
  const { port: echoPort } = (await echo.ready) as { port: number };
  return { opts, spawn, generators, echo, echoUrl: `ws://127.0.0.1:${echoPort}` };
}

/** Raw WebSocket handshakes per second against the echo server: the baseline of the register storm. */
async function handshakeStep(load: Load): Promise<{ perS: number }> {
  const { opts, generators } = load;
  const perS = await across(generators, HANDSHAKE_CONCURRENCY * generators.length, (g, k) =>
    g.request<Throughput>("handshakes", { url: load.echoUrl, concurrency: k, seconds: opts.seconds }),
  );
  opts.log(`  handshakes ${Math.round(perS)}/s`);
  return { perS };
}

/** Starts the CP, idle, and the admin API client it is measured through. */
async function startCp(load: Load, devDir: string, dataDir: string): Promise<Run> {
  const cpArgs: CpProcessArgs = {
    port: 0,
    dataDir,
    devDir,
    adminToken: ADMIN_TOKEN,
    heartbeatMs: load.opts.heartbeatMs,
  };
  const cp = load.spawn("./cp-process.ts", cpArgs, CP_NODE_FLAGS);
  const { port } = (await cp.ready) as { port: number };
  // A connection per request: a kept-alive one can be closed by the server's idle timeout under our feet.
  const http = new Agent({ keepAlive: false });
  const api = (method: string, path: string, body?: unknown) => call(http, port, method, path, body);
  return { ...load, cpArgs, cp, port, api };
}

/** Reads the CP's stats labelled `label` and the generators' CPU labelled `gen-<label>`, in that order. */
async function cut(run: Run, label: string): Promise<Cut> {
  const cp = await run.cp.request<CpStats>("stats", { label });
  const genCpuS = (
    await Promise.all(run.generators.map((g) => g.request<number>("cpu", { label: `gen-${label}` })))
  ).reduce((a, b) => a + b, 0);
  return { cp, genCpuS };
}

/** CPU seconds the CP and the generators spent from one cut to the next. */
function cpuBetween(before: Cut, after: Cut): { cpS: number; genS: number } {
  return { cpS: after.cp.cpu_s - before.cp.cpu_s, genS: after.genCpuS - before.genCpuS };
}

/** How long all N agents take to register at once, each registration's latency, and the CPU it costs both sides. */
async function stormStep(
  run: Run,
  before: Cut,
): Promise<{ stormS: number; registerMs: number[]; cpCpuS: number; genCpuS: number; after: Cut }> {
  const log = run.opts.log;
  log(`scale: register storm (${run.opts.agents} agents)`);
  const t0 = Number(process.hrtime.bigint());
  const storms = await Promise.all(
    run.generators.map((g) =>
      g.request<{ lastRegisteredNs: number; registerMs: number[] }>("storm", {
        url: `ws://127.0.0.1:${run.port}`,
        timeoutMs: 300_000,
      }),
    ),
  );
  const stormS = (Math.max(...storms.map((s) => s.lastRegisteredNs)) - t0) / 1e9;
  const registerMs = storms.flatMap((s) => s.registerMs);
  const after = await cut(run, "storm");
  const cpu = cpuBetween(before, after);
  log(
    `  storm ${stormS.toFixed(2)} s; registration p50 ${quantile(registerMs, 0.5)?.toFixed(1)} ms, p99 ${quantile(registerMs, 0.99)?.toFixed(1)} ms; CP CPU ${cpu.cpS.toFixed(1)} s, generators ${cpu.genS.toFixed(1)} s`,
  );
  return { stormS, registerMs, cpCpuS: cpu.cpS, genCpuS: cpu.genS, after };
}

/** Heartbeat ack latency at the configured interval, and the CP's memory, pauses and CPU share at N agents. */
async function steadyStep(
  run: Run,
  boot: Cut,
  before: Cut,
): Promise<{
  acks: number[];
  reregistered: number;
  genGcMaxMs: number;
  cpCpuPct: number;
  genCpuPct: number;
  after: Cut;
}> {
  const log = run.opts.log;
  const steadyMs = Math.max(2 * run.opts.heartbeatMs, run.opts.seconds * 1000);
  log(`scale: steady heartbeats for ${steadyMs / 1000} s`);
  const ackParts = await Promise.all(
    run.generators.map((g) =>
      g.request<{ ackMs: number[]; reregistered: number } & Pauses>("acks", { ms: steadyMs }),
    ),
  );
  const genGcMaxMs = Math.max(...ackParts.map((p) => p.gc_max_ms));
  const acks = ackParts.flatMap((p) => p.ackMs);
  const reregistered = ackParts.reduce((sum, p) => sum + p.reregistered, 0);
  const after = await cut(run, "steady");
  const cp = after.cp;
  const cpu = cpuBetween(before, after);
  log(
    `  ack p50 ${quantile(acks, 0.5)?.toFixed(1)} ms, p99 ${quantile(acks, 0.99)?.toFixed(1)} ms (${acks.length} acks, ${reregistered} re-registrations); RSS idle ${(boot.cp.rss / 2 ** 20).toFixed(0)} MB, at N ${(cp.rss / 2 ** 20).toFixed(0)} MB; CP loop max ${cp.loop_max_ms.toFixed(0)} ms, GC max ${cp.gc_max_ms.toFixed(0)} ms (generators ${genGcMaxMs.toFixed(0)} ms), CPU ${cpu.cpS.toFixed(2)} s, generators ${cpu.genS.toFixed(2)} s`,
  );
  return {
    acks,
    reregistered,
    genGcMaxMs,
    cpCpuPct: (100 * cpu.cpS) / (steadyMs / 1000),
    genCpuPct: (100 * cpu.genS) / (steadyMs / 1000),
    after,
  };
}

/** Heartbeat ingest throughput against the echo baseline, by the same method at the same moment; stops the echo. */
async function floodStep(
  run: Run,
  before: Cut,
): Promise<{ hbPerS: number; echoPerS: number; cpCpuS: number; after: Cut }> {
  const { opts, generators } = run;
  const floodConns = Math.min(FLOOD_CONNECTIONS, opts.agents);
  // Every agent is still heartbeating. Slices alternate and each keeps its best, so a burst of foreign load skews
  // one slice, not the ratio.
  opts.log(
    `scale: heartbeat flood vs echo (${floodConns} connections × ${FLOOD_WINDOW} in flight, ${FLOOD_ROUNDS} × ${(opts.seconds / FLOOD_ROUNDS).toFixed(2)} s each)`,
  );
  let hbPerS = 0;
  let echoPerS = 0;
  const slice = { window: FLOOD_WINDOW, warmupS: 0.5, seconds: opts.seconds / FLOOD_ROUNDS };
  for (let r = 0; r < FLOOD_ROUNDS; r++) {
    const e = await across(generators, floodConns, (g, k) =>
      g.request<Throughput>("echoFlood", { ...slice, url: run.echoUrl, connections: k }),
    );
    const h = await across(generators, floodConns, (g, k) =>
      g.request<Throughput>("flood", { ...slice, url: "", connections: k }),
    );
    opts.log(`  round ${r + 1}: echo ${Math.round(e)} msg/s, heartbeats ${Math.round(h)} msg/s`);
    echoPerS = Math.max(echoPerS, e);
    hbPerS = Math.max(hbPerS, h);
  }
  await run.echo.kill();
  const after = await cut(run, "flood");
  return { hbPerS, echoPerS, cpCpuS: cpuBetween(before, after).cpS, after };
}

/** The median time of GET /api/v2/agents listing all N agents. */
async function listingStep(run: Run): Promise<{ p50Ms: number | null }> {
  const n = run.opts.agents;
  const listMs: number[] = [];
  let listed = 0;
  for (let i = 0; i < LIST_REPEATS; i++) {
    const t = performance.now();
    const res = await run.api("GET", "/api/v2/agents");
    listMs.push(performance.now() - t);
    listed = (res as { agents: unknown[] }).agents.length;
  }
  const p50Ms = quantile(listMs, 0.5);
  run.opts.log(`  listing ${p50Ms?.toFixed(1)} ms (median of ${LIST_REPEATS})`);
  if (listed !== n) throw new Error(`GET /api/v2/agents listed ${listed} agents, expected ${n}`);
  return { p50Ms };
}

/** How fast concurrent deployments reach their agents and all turn healthy, and the pauses they cause. */
async function deployStep(
  run: Run,
  before: Cut,
): Promise<{
  deploys: number;
  postsS: number;
  allHealthyS: number;
  /** From the request's hand-off to the socket to the frame's receipt at the agent. */
  dispatchMs: number[];
  /** From the request's issue (queued behind the connection pool) to the frame's receipt at the agent. */
  burstMs: number[];
  cpCpuS: number;
  cpLoopMaxMs: number;
  genLoopMaxMs: number;
}> {
  const { generators, port } = run;
  // All POSTs are issued at once, each naming a different agent, through a pool of keep-alive connections (as an
  // operator's client would; a thousand fresh connections at once measure the accept queue).
  const ids = (await Promise.all(generators.map((g) => g.request<string[]>("agentIds")))).flat();
  const d = Math.min(DEPLOYS, run.opts.agents);
  run.opts.log(`scale: ${d} concurrent deploys over ${DEPLOY_SOCKETS} connections`);
  const deployHttp = new Agent({ keepAlive: true, maxSockets: DEPLOY_SOCKETS });
  // The pool is opened first, as a running client's would be: Node (libuv ≥ 1.45) accepts one connection per turn
  // of the loop, so the first request on each of 32 new connections can wait up to 32 turns of a busy CP (0.4–0.9 s
  // in 2 of 10 runs with a cold pool), which is the accept rate, not dispatch (docs/performance.md).
  await Promise.all(Array.from({ length: DEPLOY_SOCKETS }, () => call(deployHttp, port, "GET", "/healthz")));
  // Receipt times are taken at the agents, so a generator's stall is in the figures too: its pauses are reported.
  await Promise.all(generators.map((g) => g.request<Pauses>("pauses")));
  const written = new Map<string, number>();
  const issued = new Map<string, number>();
  const tDeploy = performance.now();
  await Promise.all(
    ids.slice(0, d).map(async (agentId) => {
      const t = Number(process.hrtime.bigint());
      let tw = t;
      const res = (await call(
        deployHttp,
        port,
        "POST",
        "/api/v2/deployments",
        { app: "bench", compose: COMPOSE, agent_id: agentId },
        () => {
          tw = Number(process.hrtime.bigint());
        },
      )) as { deployment_id: string };
      issued.set(res.deployment_id, t);
      written.set(res.deployment_id, tw);
    }),
  );
  deployHttp.destroy();
  const postsS = (performance.now() - tDeploy) / 1000;
  let healthy = 0;
  while (healthy < d) {
    const res = (await run.api("GET", `/api/v2/deployments?status=healthy&limit=${DEPLOYS}`)) as {
      deployments: unknown[];
    };
    healthy = res.deployments.length;
    // Each poll lists up to a thousand deployments: not so often that the poll is the CP's main work.
    if (healthy < d) await new Promise((r) => setTimeout(r, 250));
  }
  const allHealthyS = (performance.now() - tDeploy) / 1000;
  const received = Object.assign(
    {},
    ...(await Promise.all(generators.map((g) => g.request<Record<string, number>>("deploys")))),
  ) as Record<string, number>;
  const since = (from: Map<string, number>) =>
    [...from].map(([id, t]) => {
      const r = received[id];
      if (r === undefined) throw new Error(`deploy frame of ${id} never reached its agent`);
      return (r - t) / 1e6;
    });
  const dispatchMs = since(written);
  const burstMs = since(issued);
  // Read before the cut, whose profile write (EE_BENCH_PROFILE_DIR) would stall the generators' loop.
  const genPauses = await Promise.all(generators.map((g) => g.request<Pauses>("pauses")));
  const genLoopMaxMs = Math.max(...genPauses.map((p) => p.loop_max_ms));
  const after = await cut(run, "deploy");
  run.opts.log(
    `  dispatch p50 ${quantile(dispatchMs, 0.5)?.toFixed(1)} ms, p99 ${quantile(dispatchMs, 0.99)?.toFixed(1)} ms; from issue p99 ${quantile(burstMs, 0.99)?.toFixed(1)} ms; all healthy ${allHealthyS.toFixed(2)} s; CP loop max ${after.cp.loop_max_ms.toFixed(0)} ms, GC max ${after.cp.gc_max_ms.toFixed(0)} ms; generators' loop max ${genLoopMaxMs.toFixed(0)} ms`,
  );
  return {
    deploys: d,
    postsS,
    allHealthyS,
    dispatchMs,
    burstMs,
    cpCpuS: cpuBetween(before, after).cpS,
    cpLoopMaxMs: after.cp.loop_max_ms,
    genLoopMaxMs,
  };
}

/** After a CP SIGKILL and a wiped DB, how long the restarted CP takes to boot and every agent to register again. */
async function rehydrateStep(run: Run): Promise<{ bootS: number; rehydrateS: number; cpCpuS: number }> {
  const { generators, port } = run;
  run.opts.log(`scale: CP SIGKILL, wiped data dir, restart on port ${port}`);
  const tKill = Number(process.hrtime.bigint());
  await run.cp.kill("SIGKILL");
  rmSync(run.cpArgs.dataDir, { recursive: true, force: true });
  run.cp = run.spawn("./cp-process.ts", { ...run.cpArgs, port }, CP_NODE_FLAGS);
  await run.cp.ready;
  const bootS = (Number(process.hrtime.bigint()) - tKill) / 1e9;
  const back = await Promise.all(
    generators.map((g) => g.request<number>("reregistered", { afterNs: tKill, timeoutMs: 120_000 })),
  );
  const rehydrateS = (Math.max(...back) - tKill) / 1e9;
  // A new CP process: its CPU counts from zero.
  const after = await cut(run, "rehydrate");
  run.opts.log(`  rehydration ${rehydrateS.toFixed(2)} s (CP boot ${bootS.toFixed(2)} s)`);
  return { bootS, rehydrateS, cpCpuS: after.cp.cpu_s };
}

function flagsFrom(value: string | undefined): string[] {
  return value?.split(" ").filter(Boolean) ?? [];
}

/** Runs `fn` on every generator with its share of `total`; the summed rate, per second. */
async function across(
  generators: Child[],
  total: number,
  fn: (g: Child, share: number) => Promise<Throughput>,
): Promise<number> {
  const k = generators.length;
  const parts = await Promise.all(
    generators.map((g, i) => fn(g, Math.floor(total / k) + (i < total % k ? 1 : 0))),
  );
  // Each part is a rate over its own window; the windows overlap, so the rates add.
  return parts.reduce((sum, p) => sum + p.messages / p.seconds, 0);
}

/** One JSON request with the admin token; `onWritten` when the request has been handed to the socket. */
function call(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  body?: unknown,
  onWritten?: () => void,
): Promise<unknown> {
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(data ? { "content-type": "application/json", "content-length": data.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on("error", reject);
    if (onWritten) req.on("finish", onWritten);
    req.end(data);
  });
}
