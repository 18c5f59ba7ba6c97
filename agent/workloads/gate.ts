// The deploy gate of one deployment wired to the world: machines/deploy-gate.ts, provided once per process,
// whose invoked actors do the image work (pull with throttled progress and one-deploy credentials, then the
// build-context check and prepare), the container lifecycle (start, remove) and the health probe over the
// WorkloadRuntime port, and whose `report` publishes each step. Each gate actor finds its deployment's jobs
// through its actor system, as the CP client's machines do (provide() rebuilds every state node). May import
// machines/, spec/, xstate, the runtime port and agent/runtime/build-context.
import { type ActorSystem, type AnyActorRef, assign, createActor, fromPromise } from "xstate";
import {
  deployGateMachine,
  type GateJob,
  type GateReport,
  type GateResume,
  type ProbeResult,
  stampStep,
} from "../../machines/deploy-gate.ts";
import type { ImageRef } from "../../spec/images.ts";
import type { InspectionObserver } from "../../transport/inspection.ts";
import { checkContext } from "../runtime/build-context.ts";
import type { PullProgress, WorkloadRuntime, WorkloadSpec } from "../runtime/runtime.ts";
import type { EngineCall } from "./engine-call.ts";
import type { Probe } from "./probe.ts";
import type { Deployment, StepReport, WorkloadClock } from "./types.ts";

/** Pull progress is published at most this often: each one is a frame to the CP and a row write there. */
const PROGRESS_EVERY_MS = 500;
/** The gate deadline of a deploy without a health spec: the health spec's own default timeout_s. */
const DEFAULT_GATE_TIMEOUT_S = 60;

/** What one gate actor does to the world. */
interface GateJobs {
  pull(signal: AbortSignal): Promise<void>;
  prepare(signal: AbortSignal): Promise<ImageRef[]>;
  start(signal: AbortSignal): Promise<void>;
  probe(signal: AbortSignal): Promise<ProbeResult>;
  remove(): Promise<void>;
  report(report: GateReport): void;
  /** The manager's clock: when a step begins. */
  now(): number;
}

// biome-ignore lint/suspicious/noExplicitAny: any actor system, as xstate's own AnyActorSystem (not exported).
type AnySystem = ActorSystem<any>;
const jobs = new WeakMap<AnySystem, GateJobs>();

function jobsOf(system: AnySystem): GateJobs {
  const found = jobs.get(system);
  if (!found) throw new Error("a deploy gate is running without its deployment");
  return found;
}

const remove = fromPromise<void, GateJob>(({ system }) => jobsOf(system).remove());

const gateMachine = deployGateMachine.provide({
  actors: {
    pull: fromPromise<void, GateJob>(({ signal, system }) => jobsOf(system).pull(signal)),
    prepare: fromPromise<ImageRef[], GateJob>(({ signal, system }) => jobsOf(system).prepare(signal)),
    start: fromPromise<void, GateJob>(({ signal, system }) => jobsOf(system).start(signal)),
    probe: fromPromise<ProbeResult, GateJob>(({ signal, system }) => jobsOf(system).probe(signal)),
    cleanup: remove,
    remove,
  },
  actions: {
    // The step clock stays out of the context (a snapshot must serialize): each gate stamps with its manager's.
    enterStep: assign(stampStep(({ system }) => jobsOf(system).now())),
    report: ({ system }, report) => jobsOf(system).report(report),
  },
});

export interface GateDeps {
  runtime: WorkloadRuntime;
  engine: EngineCall;
  probe: Probe;
  now: () => number;
  pollMs: number;
  clock?: WorkloadClock;
  inspect?: InspectionObserver;
  /** Publishes the deployment's status: each step, and pull progress within the pulling step. */
  publish(dep: Deployment, report: StepReport, progress?: PullProgress): void;
}

/** The (not yet started) gate actor of `dep`, resumed in running when re-adopted. */
export function createGate(
  deps: GateDeps,
  dep: Deployment,
  spec: WorkloadSpec,
  resume?: GateResume,
): AnyActorRef {
  const { runtime, engine, now } = deps;
  const id = spec.deploymentId;
  const health = dep.request.health ?? null;
  let lastProgress = 0;
  const onProgress = (p: PullProgress) => {
    if (now() - lastProgress < PROGRESS_EVERY_MS) return;
    lastProgress = now();
    const { step, since, images } = dep.status;
    deps.publish(dep, { step, since, images, code: null, message: null }, p);
  };
  const actor = createActor(gateMachine, {
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
    input: {
      deploymentId: id,
      gateTimeoutMs: (health?.timeout_s ?? DEFAULT_GATE_TIMEOUT_S) * 1000,
      pollMs: deps.pollMs,
      at: now(),
      ...(resume ? { resume } : {}),
    },
  });
  jobs.set(actor.system, {
    async pull(signal) {
      const auth = dep.request.registry_auth;
      try {
        await engine(id, "pull images", () =>
          runtime.pull(spec, { signal, onProgress, ...(auth ? { auth } : {}) }),
        );
      } finally {
        // The credentials served these pulls only: nothing keeps them once they are done.
        delete dep.request.registry_auth;
      }
    },
    async prepare(signal) {
      // Before any image work: what the context unpacks to, streamed, so a gzip bomb is refused unopened.
      if (spec.context) await checkContext(spec.context);
      return engine(id, "prepare images", () => runtime.prepare(spec, signal));
    },
    async start(signal) {
      await engine(id, "start containers", () => runtime.start(spec, signal));
    },
    probe: (signal) => deps.probe(spec, health, signal),
    remove: () => engine(id, "remove the deployment", () => runtime.remove(id)),
    report: (report) => deps.publish(dep, report),
    now,
  });
  return actor;
}
