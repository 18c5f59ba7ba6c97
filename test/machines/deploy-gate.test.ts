// The deploy gate machine, driven with a SimulatedClock and recording promise actors: no engine, no real timers.
import test from "ava";
import { assign, createActor, fromPromise, SimulatedClock } from "xstate";
import {
  deployGateMachine,
  type GateJob,
  type GateReport,
  type GateResume,
  type ProbeResult,
  retryDelayMs,
  START_RETRY,
  stampStep,
  stepOf,
  topLevelState,
} from "../../machines/deploy-gate.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { ImageRef } from "../../spec/images.ts";
import type { HealthSpec } from "../../spec/protocol.ts";

const POLL = 1000;
const T0 = 1_000_000;
const HEALTH: HealthSpec = { port: 8080, path: "/", timeout_s: 5 };
const IMAGES = [{ service: "web", ref: "web:1", digest: `sha256:${"ab".repeat(32)}` }];

type Step = () => Promise<void>;
interface Script {
  pull?: Step;
  prepare?: Step;
  /** Called with the 1-based attempt. */
  start?: (attempt: number) => Promise<void>;
  probe?: (n: number) => Promise<ProbeResult>;
  cleanup?: Step;
  remove?: Step;
}

/** Lets settled promise actors deliver their done/error events. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function harness(script: Script = {}, health: HealthSpec | null = HEALTH, resume?: GateResume) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const calls: string[] = [];
  const reports: GateReport[] = [];
  const aborted: string[] = [];
  let probes = 0;
  const recording = <O>(name: string, run: (job: GateJob) => Promise<O>) =>
    fromPromise<O, GateJob>(async ({ input, signal }) => {
      calls.push(name);
      signal.addEventListener("abort", () => aborted.push(name));
      return run(input);
    });
  const machine = deployGateMachine.provide({
    actors: {
      pull: recording<void>("pull", async () => script.pull?.()),
      prepare: recording<ImageRef[]>("prepare", async () => {
        await script.prepare?.();
        return IMAGES;
      }),
      start: recording<void>("start", async (job) => script.start?.(job.attempt)),
      probe: recording<ProbeResult>("probe", async () => (script.probe ? script.probe(++probes) : "healthy")),
      cleanup: recording<void>("cleanup", async () => script.cleanup?.()),
      remove: recording<void>("remove", async () => script.remove?.()),
    },
    actions: { enterStep: assign(stampStep(() => clock.now())), report: (_, params) => reports.push(params) },
  });
  const input = {
    deploymentId: "d-1",
    gateTimeoutMs: (health?.timeout_s ?? 60) * 1000,
    pollMs: POLL,
    at: clock.now(),
    ...(resume ? { resume } : {}),
  };
  const actor = createActor(machine, { clock, input });
  actor.subscribe({ error: () => {} });
  actor.start();
  const state = () => topLevelState(actor.getSnapshot().value);
  const ctx = () => actor.getSnapshot().context;
  const steps = () => reports.map((r) => r.step);
  return { clock, machine, input, actor, calls, reports, aborted, state, ctx, steps };
}

const engineDown = () => new WorkloadError("EE-WORKLOAD-ENGINE", "engine did not answer");
const never = <T>() => new Promise<T>(() => {});

test("happy path: pulling → preparing → starting → gating → running, then undeploy → stopping → stopped", async (t) => {
  const h = harness({ probe: async (n) => (n < 3 ? "waiting" : "healthy") });
  t.is(h.state(), "pulling");
  await settle();
  t.is(h.state(), "gating");
  t.deepEqual(h.calls, ["pull", "prepare", "start", "probe"]);
  h.clock.increment(POLL);
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "probe", "probe"]);
  h.clock.increment(POLL - 1);
  await settle();
  t.is(h.calls.length, 5, "no probe before pollMs has passed");
  h.clock.increment(1);
  await settle();
  t.is(h.state(), "running");
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "gating", "running"]);
  t.deepEqual(h.reports.at(-1), {
    step: "running",
    since: T0 + 2 * POLL,
    images: IMAGES,
    code: null,
    message: null,
  });
  t.like(h.ctx(), { images: IMAGES, attempt: 1, code: null });
  t.is(stepOf(h.actor.getSnapshot()), "running");

  h.clock.increment(60_000);
  await settle();
  t.is(h.calls.filter((c) => c === "probe").length, 3, "no probes once running");
  h.actor.send({ type: "UNDEPLOY" });
  t.is(h.state(), "stopping");
  await settle();
  t.is(h.state(), "stopped");
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "gating", "running", "stopping", "stopped"]);
  t.is(h.calls.at(-1), "remove");
  t.false(h.calls.includes("cleanup"));
  t.is(h.actor.getSnapshot().status, "done");
});

test("a resumed deployment starts in running without preparing, starting or probing, and undeploys", async (t) => {
  const since = T0 - 3_600_000;
  const h = harness({}, HEALTH, { step: "running", since, images: IMAGES });
  t.is(h.state(), "running");
  t.deepEqual(h.reports, [{ step: "running", since, images: IMAGES, code: null, message: null }]);
  h.clock.increment(HEALTH.timeout_s * 1000 * 10);
  await settle();
  t.deepEqual(h.calls, [], "nothing prepared, started or probed; no gate deadline");
  t.is(h.state(), "running");
  h.actor.send({ type: "UNDEPLOY" });
  t.is(h.state(), "stopping");
  await settle();
  t.is(h.state(), "stopped");
  t.deepEqual(h.calls, ["remove"]);
  t.deepEqual(h.steps(), ["running", "stopping", "stopped"]);
  t.like(h.reports.at(-1), { step: "stopped", since: h.clock.now() });
});

test("a transient start failure is cleaned up and retried after the backoff, then succeeds", async (t) => {
  const h = harness({
    start: async (attempt) => {
      if (attempt === 1) throw engineDown();
    },
  });
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "cleanup"]);
  t.is(h.state(), "starting");
  h.clock.increment(retryDelayMs(1) - 1);
  await settle();
  t.is(h.calls.length, 4, "no retry before the backoff has passed");
  h.clock.increment(1);
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "cleanup", "start", "probe"]);
  t.is(h.state(), "running");
  t.is(h.ctx().attempt, 2);
  t.deepEqual(
    h.steps(),
    ["pulling", "preparing", "starting", "gating", "running"],
    "a retry is not a new step",
  );
});

test("the backoff grows exponentially and stays bounded", (t) => {
  t.deepEqual([1, 2, 3].map(retryDelayMs), [1000, 2000, 4000]);
  t.is(retryDelayMs(50), START_RETRY.capMs);
});

test("a transient start failure on every attempt fails after maxAttempts", async (t) => {
  const h = harness({
    start: async () => {
      throw engineDown();
    },
  });
  await settle();
  for (let attempt = 1; attempt < START_RETRY.maxAttempts; attempt++) {
    h.clock.increment(retryDelayMs(attempt));
    await settle();
  }
  t.is(h.state(), "failed");
  t.is(h.calls.filter((c) => c === "start").length, START_RETRY.maxAttempts);
  // One cleanup before each retry and one for the failure.
  t.is(h.calls.filter((c) => c === "cleanup").length, START_RETRY.maxAttempts);
  t.like(h.ctx(), { code: "EE-WORKLOAD-ENGINE", message: "engine did not answer" });
});

test("a permanent start failure is cleaned up once and fails with its code", async (t) => {
  const h = harness({
    start: async () => {
      throw new WorkloadError("EE-WORKLOAD-PORT-CONFLICT", "port 8080 is in use");
    },
  });
  await settle();
  t.is(h.state(), "failed");
  t.deepEqual(h.calls, ["pull", "prepare", "start", "cleanup"]);
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "failed"]);
  t.like(h.reports.at(-1), {
    step: "failed",
    code: "EE-WORKLOAD-PORT-CONFLICT",
    message: "port 8080 is in use",
  });
});

test("a prepare failure fails with its code without starting anything", async (t) => {
  const h = harness({
    prepare: async () => {
      throw new WorkloadError("EE-WORKLOAD-IMAGE-MISSING", "image nope:1 is not present");
    },
  });
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "cleanup"]);
  t.like(h.reports.at(-1), { step: "failed", code: "EE-WORKLOAD-IMAGE-MISSING" });
});

test("a probe that never passes fails with EE-WORKLOAD-HEALTH-TIMEOUT after exactly timeout_s", async (t) => {
  const h = harness({ probe: async () => "waiting" });
  await settle();
  const gatingSince = h.ctx().since;
  const deadline = gatingSince + HEALTH.timeout_s * 1000;
  while (h.clock.now() < deadline - 1) {
    h.clock.increment(Math.min(POLL, deadline - 1 - h.clock.now()));
    await settle();
  }
  t.is(h.state(), "gating", "still gating 1 ms before the deadline");
  t.false(h.calls.includes("cleanup"));
  h.clock.increment(1);
  await settle();
  t.is(h.state(), "failed");
  t.is(h.ctx().since, deadline);
  t.is(h.calls.at(-1), "cleanup");
  t.like(h.reports.at(-1), { step: "failed", code: "EE-WORKLOAD-HEALTH-TIMEOUT" });
  const probes = h.calls.filter((c) => c === "probe").length;
  h.clock.increment(10 * POLL);
  await settle();
  t.is(h.calls.filter((c) => c === "probe").length, probes, "no probes after the gate failed");
});

test("a probe that rejects with EE-WORKLOAD-EXITED fails at once", async (t) => {
  const h = harness({
    probe: async () => {
      throw new WorkloadError("EE-WORKLOAD-EXITED", "service web exited with code 3");
    },
  });
  await settle();
  t.is(h.state(), "failed");
  t.is(h.clock.now(), T0);
  t.deepEqual(h.calls, ["pull", "prepare", "start", "probe", "cleanup"]);
  t.like(h.reports.at(-1), { code: "EE-WORKLOAD-EXITED", message: "service web exited with code 3" });
});

test("failing keeps reporting the failed step until cleanup is done", async (t) => {
  let finishCleanup = () => {};
  const h = harness({
    probe: async () => {
      throw new WorkloadError("EE-WORKLOAD-EXITED", "service web exited with code 1");
    },
    cleanup: () => new Promise<void>((resolve) => (finishCleanup = resolve)),
  });
  await settle();
  t.is(h.state(), "failing");
  t.is(stepOf(h.actor.getSnapshot()), "gating");
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "gating"]);
  finishCleanup();
  await settle();
  t.is(stepOf(h.actor.getSnapshot()), "failed");
});

test("undeploy while gating aborts the probe, removes everything and stops probing", async (t) => {
  const h = harness({ probe: async (n) => (n === 1 ? "waiting" : never()) });
  await settle();
  h.clock.increment(POLL);
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "probe", "probe"]);
  h.actor.send({ type: "UNDEPLOY" });
  t.deepEqual(h.aborted, ["probe"]);
  await settle();
  t.is(h.state(), "stopped");
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "gating", "stopping", "stopped"]);
  h.clock.increment(10 * POLL);
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "probe", "probe", "remove"]);
});

test("a failed pull fails the deploy with its code after the cleanup, and nothing is prepared or started", async (t) => {
  const h = harness({
    pull: async () => {
      throw new WorkloadError("EE-WORKLOAD-PULL-AUTH", "unauthorized");
    },
  });
  await settle();
  await settle();
  t.deepEqual(h.calls, ["pull", "cleanup"]);
  t.deepEqual(h.steps(), ["pulling", "failed"]);
  t.like(h.reports.at(-1), { code: "EE-WORKLOAD-PULL-AUTH", message: "unauthorized" });
});

test("undeploy while pulling aborts the pull", async (t) => {
  const h = harness({ pull: never });
  t.is(h.state(), "pulling");
  h.actor.send({ type: "UNDEPLOY" });
  await settle();
  t.deepEqual(h.aborted, ["pull"]);
  t.deepEqual(h.calls, ["pull", "remove"]);
  t.is(h.state(), "stopped");
});

test("undeploy while preparing aborts the prepare and never starts", async (t) => {
  const h = harness({ prepare: never });
  await settle();
  t.is(h.state(), "preparing");
  h.actor.send({ type: "UNDEPLOY" });
  await settle();
  t.deepEqual(h.aborted, ["prepare"]);
  t.deepEqual(h.calls, ["pull", "prepare", "remove"]);
  t.is(h.state(), "stopped");
});

test("undeploy during the start backoff cancels the retry", async (t) => {
  const h = harness({
    start: async () => {
      throw engineDown();
    },
  });
  await settle();
  h.actor.send({ type: "UNDEPLOY" });
  await settle();
  h.clock.increment(retryDelayMs(1) * 10);
  await settle();
  t.deepEqual(h.calls, ["pull", "prepare", "start", "cleanup", "remove"]);
  t.is(h.state(), "stopped");
});

test("a failed cleanup keeps the original reason and notes the cleanup error", async (t) => {
  const h = harness({
    probe: async () => {
      throw new WorkloadError("EE-WORKLOAD-EXITED", "service web exited with code 2");
    },
    cleanup: async () => {
      throw engineDown();
    },
  });
  await settle();
  t.is(h.state(), "failed");
  t.like(h.ctx(), { code: "EE-WORKLOAD-EXITED", cleanupError: "engine did not answer" });
  t.like(h.reports.at(-1), {
    step: "failed",
    code: "EE-WORKLOAD-EXITED",
    message: "service web exited with code 2 (cleanup failed: engine did not answer)",
  });
});

test("a failed removal on undeploy ends failed with its code", async (t) => {
  const h = harness({ remove: async () => Promise.reject(engineDown()) });
  await settle();
  h.actor.send({ type: "UNDEPLOY" });
  await settle();
  t.is(h.state(), "failed");
  t.like(h.reports.at(-1), { step: "failed", code: "EE-WORKLOAD-ENGINE" });
});

test("an untyped error gets the fallback code", async (t) => {
  const h = harness({
    start: async () => {
      throw new Error("boom");
    },
  });
  await settle();
  t.like(h.ctx(), { code: "EE-WORKLOAD-ENGINE", message: "boom" });
});

test("a gate's snapshot is plain data: it survives JSON, and the restored gate stamps its next steps by the clock", async (t) => {
  const h = harness();
  await settle();
  t.is(h.state(), "running");
  const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
  t.deepEqual(persisted.context, h.ctx(), "nothing in the context is lost to JSON (no clock function)");
  h.actor.stop();
  h.clock.increment(5000);
  const restored = createActor(h.machine, { clock: h.clock, snapshot: persisted, input: h.input });
  restored.start();
  t.is(topLevelState(restored.getSnapshot().value), "running");
  restored.send({ type: "UNDEPLOY" });
  await settle();
  t.is(topLevelState(restored.getSnapshot().value), "stopped");
  t.deepEqual(h.steps(), ["pulling", "preparing", "starting", "gating", "running", "stopping", "stopped"]);
  t.like(h.reports.at(-1), { step: "stopped", since: T0 + 5000 });
});
