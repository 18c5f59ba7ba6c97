// The agent's deploy gate for one deployment: a pure XState machine (pull → prepare → start with bounded retries → poll
// a health probe until healthy or a deadline → running; undeploy → stopping → stopped; any failure → cleanup →
// failed with a stable code). A deployment re-adopted after an agent restart resumes straight in running. It
// imports no I/O: the container work is done by invoked promise actors that agent/workloads/gate.ts provides over the
// WorkloadRuntime port, and the time a step began comes from the `enterStep` action it provides with its clock
// (stampStep), so the context is plain data a snapshot can serialize and tests drive every transition with a
// SimulatedClock. May import xstate, spec/errors (codes) and spec/ types.
import { assign, fromPromise, type StateValue, setup } from "xstate";
import { type ErrorCode, errorCodeOf } from "../spec/errors.ts";
import type { ImageRef } from "../spec/images.ts";
import type { WorkloadStep } from "../spec/protocol.ts";
import { topLevelStateOf } from "./top-level-state.ts";

/** Top-level states. */
export const DEPLOY_GATE_STATES = [
  /** Pulling the images the engine lacks from their registries (progress is reported by the pull actor). */
  "pulling",
  /** Making every service's image present (build or find locally) and resolving each to its digest. */
  "preparing",
  /** Creating and starting the containers; a transient engine failure is cleaned up and retried after a backoff. */
  "starting",
  /** Containers started: probing every pollMs until healthy; fails at the gate deadline (health timeout_s). */
  "gating",
  /** Passed the gate; stays here until undeployed. */
  "running",
  /** Removing everything after a failure; the reported step stays the one that failed until cleanup ends. */
  "failing",
  /** Final: the deploy failed with `code` and `message`; what it created was removed (unless noted in message). */
  "failed",
  /** Undeploy: removing the deployment's containers, network and volumes. */
  "stopping",
  /** Final: undeployed, nothing left. */
  "stopped",
] as const;
export type DeployGateState = (typeof DEPLOY_GATE_STATES)[number];

/** Start attempts (the first included) before a transient failure fails the deploy, and the backoff between them. */
export const START_RETRY = { maxAttempts: 3, baseMs: 1000, factor: 2, capMs: 10_000 } as const;
/** The error code of a transient engine failure: the only one a start is retried on. */
export const TRANSIENT_CODE = "EE-WORKLOAD-ENGINE";
/** Code given to failures that carry none (the provided actors should only ever throw typed errors). */
export const FALLBACK_CODE: ErrorCode = "EE-WORKLOAD-ENGINE";

/** Delay before start attempt `attempt + 1`, after `attempt` (≥ 1) failed attempts. */
export function retryDelayMs(attempt: number): number {
  return Math.min(START_RETRY.capMs, START_RETRY.baseMs * START_RETRY.factor ** Math.max(0, attempt - 1));
}

/** What a probe saw: the gate passes on `healthy` and probes again after pollMs on `waiting`. */
export type ProbeResult = "healthy" | "waiting";

/** What every invoked actor gets. */
export interface GateJob {
  deploymentId: string;
  /** Start attempt number (1-based); 0 before the first start. */
  attempt: number;
}

/** A deployment a restarted agent found running: the gate starts in `running` with what was reported then. */
export interface GateResume {
  step: "running";
  /** When the deployment began running (before the restart). */
  since: number;
  images: ImageRef[];
}

export interface DeployGateInput {
  deploymentId: string;
  /** The gate deadline: health.timeout_s when a health spec is given, else the caller's default. */
  gateTimeoutMs: number;
  pollMs: number;
  /** When the deploy began, by the manager's clock: the time of the first step (`pulling`). */
  at: number;
  /** Resume a re-adopted deployment instead of deploying: nothing is prepared, started or probed. */
  resume?: GateResume;
}

export interface DeployGateContext {
  deploymentId: string;
  /** Each service's image and digest, once prepared. */
  images: ImageRef[];
  gateTimeoutMs: number;
  pollMs: number;
  /** The last step reported; `failing` keeps it until cleanup is done (see stepOf). */
  step: WorkloadStep;
  /** When `step` began, ms since the epoch. */
  since: number;
  /** Start attempts made so far. */
  attempt: number;
  /** Why the deploy failed; set on entering `failing`, kept through a failed cleanup. */
  code: ErrorCode | null;
  message: string | null;
  /** Why the cleanup after a failure failed, when it did. */
  cleanupError: string | null;
}

export type DeployGateEvent =
  /** Stop the deployment: aborts whatever is in progress, removes everything. */
  { type: "UNDEPLOY" };

/** What `report` receives on every step change: all a status needs. */
export interface GateReport {
  step: WorkloadStep;
  since: number;
  images: ImageRef[];
  code: ErrorCode | null;
  message: string | null;
}

/** Why a deploy failed: a stable code and what happened. */
export interface Reason {
  code: ErrorCode;
  message: string;
}

/** The stable code and message of a failure; typed errors carry both. */
export function reasonOf(err: unknown): Reason {
  const message = err instanceof Error && err.message !== "" ? err.message : "unexpected failure";
  return { code: errorCodeOf(err) ?? FALLBACK_CODE, message };
}

/**
 * The assignment of the `enterStep` action, which the manager provides with its clock
 * (`enterStep: assign(stampStep(now))`): the step and when it began. A resumed deployment enters the step it was
 * already in: it keeps the time that step began. `now` is given the action's arguments, so a clock found through
 * the actor's system is read per action from an assignment built once.
 */
export function stampStep<A extends { context: DeployGateContext }>(now: (args: A) => number) {
  return (args: A, params: { step: WorkloadStep }) => ({
    step: params.step,
    since: args.context.step === params.step ? args.context.since : now(args),
  });
}

const notProvided = <O>(name: string) =>
  fromPromise<O, GateJob>(async () => {
    throw new Error(`the ${name} actor must be provided by agent/workloads/gate.ts`);
  });

/** The params of every failure action and guard: the error an invoked actor failed with. */
const failure = ({ event }: { event: { error: unknown } }) => ({ error: event.error });

export const deployGateMachine = setup({
  types: {
    context: {} as DeployGateContext,
    events: {} as DeployGateEvent,
    input: {} as DeployGateInput,
  },
  actors: {
    pull: notProvided<void>("pull"),
    prepare: notProvided<ImageRef[]>("prepare"),
    start: notProvided<void>("start"),
    probe: notProvided<ProbeResult>("probe"),
    cleanup: notProvided<void>("cleanup"),
    remove: notProvided<void>("remove"),
  },
  actions: {
    // Effect, provided by the manager: publish and persist the status.
    report: (_, _params: GateReport) => {},

    // Provided by the manager with its clock: assign(stampStep(now)). Unprovided, a step would have no time.
    enterStep: assign(
      stampStep(() => {
        throw new Error("the enterStep action must be provided by agent/workloads/gate.ts (stampStep)");
      }),
    ),
    takeImages: assign((_, params: { images: ImageRef[] }) => ({ images: params.images })),
    countAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    takeFailure: assign((_, params: { error: unknown }) => reasonOf(params.error)),
    takeTimeout: assign(({ context }) => ({
      code: "EE-WORKLOAD-HEALTH-TIMEOUT",
      message: `the workload did not pass its health gate within ${context.gateTimeoutMs / 1000} s`,
    })),
    // The original reason stays: it is why the deploy failed; the cleanup error is what may be left behind.
    noteCleanupError: assign(({ context }, params: { error: unknown }) => {
      const cleanupError = reasonOf(params.error).message;
      return { cleanupError, message: `${context.message} (cleanup failed: ${cleanupError})` };
    }),
  },
  guards: {
    // Only a failure typed as transient is retried, while attempts are left; anything else (an untyped error
    // included) would fail the same way again.
    canRetry: ({ context }, params: { error: unknown }) =>
      errorCodeOf(params.error) === TRANSIENT_CODE && context.attempt < START_RETRY.maxAttempts,
    isHealthy: (_, params: { result: ProbeResult }) => params.result === "healthy",
    resumesRunning: ({ context }) => context.step === "running",
  },
  delays: {
    retryDelay: ({ context }) => retryDelayMs(context.attempt),
    pollInterval: ({ context }) => context.pollMs,
    gateTimeout: ({ context }) => context.gateTimeoutMs,
  },
}).createMachine({
  id: "deployGate",
  context: ({ input }) => ({
    deploymentId: input.deploymentId,
    images: input.resume?.images ?? [],
    gateTimeoutMs: input.gateTimeoutMs,
    pollMs: input.pollMs,
    step: input.resume?.step ?? "pulling",
    since: input.resume?.since ?? input.at,
    attempt: 0,
    code: null,
    message: null,
    cleanupError: null,
  }),
  initial: "entering",
  states: {
    /** Transient: a new deployment pulls, a resumed one is running already. */
    entering: {
      always: [{ guard: "resumesRunning", target: "running" }, { target: "pulling" }],
    },
    pulling: {
      entry: enter("pulling"),
      invoke: {
        src: "pull",
        input: job,
        onDone: "preparing",
        onError: { target: "failing", actions: { type: "takeFailure", params: failure } },
      },
      on: { UNDEPLOY: "stopping" },
    },
    preparing: {
      entry: enter("preparing"),
      invoke: {
        src: "prepare",
        input: job,
        onDone: {
          target: "starting",
          actions: { type: "takeImages", params: ({ event }) => ({ images: event.output }) },
        },
        onError: { target: "failing", actions: { type: "takeFailure", params: failure } },
      },
      on: { UNDEPLOY: "stopping" },
    },
    starting: {
      entry: enter("starting"),
      initial: "launching",
      on: { UNDEPLOY: "stopping" },
      states: {
        /** One start attempt. */
        launching: {
          entry: "countAttempt",
          invoke: {
            src: "start",
            input: job,
            onDone: "#deployGate.gating",
            onError: [
              { guard: { type: "canRetry", params: failure }, target: "resetting" },
              { target: "#deployGate.failing", actions: { type: "takeFailure", params: failure } },
            ],
          },
        },
        /** A transient failure: remove what the attempt created before trying again. */
        resetting: {
          invoke: {
            src: "cleanup",
            input: job,
            onDone: "backingOff",
            onError: { target: "#deployGate.failing", actions: { type: "takeFailure", params: failure } },
          },
        },
        /** Waiting out the backoff before the next attempt. */
        backingOff: {
          after: { retryDelay: "launching" },
        },
      },
    },
    gating: {
      entry: enter("gating"),
      initial: "probing",
      after: { gateTimeout: { target: "failing", actions: "takeTimeout" } },
      on: { UNDEPLOY: "stopping" },
      states: {
        probing: {
          invoke: {
            src: "probe",
            input: job,
            onDone: [
              {
                guard: { type: "isHealthy", params: ({ event }) => ({ result: event.output }) },
                target: "#deployGate.running",
              },
              { target: "waiting" },
            ],
            onError: { target: "#deployGate.failing", actions: { type: "takeFailure", params: failure } },
          },
        },
        waiting: {
          after: { pollInterval: "probing" },
        },
      },
    },
    running: {
      entry: enter("running"),
      on: { UNDEPLOY: "stopping" },
    },
    failing: {
      invoke: {
        src: "cleanup",
        input: job,
        onDone: "failed",
        onError: { target: "failed", actions: { type: "noteCleanupError", params: failure } },
      },
    },
    failed: {
      type: "final",
      entry: enter("failed"),
    },
    stopping: {
      entry: enter("stopping"),
      invoke: {
        src: "remove",
        input: job,
        onDone: "stopped",
        onError: { target: "failed", actions: { type: "takeFailure", params: failure } },
      },
    },
    stopped: {
      type: "final",
      entry: enter("stopped"),
    },
  },
});

function job({ context }: { context: DeployGateContext }): GateJob {
  return { deploymentId: context.deploymentId, attempt: context.attempt };
}

/** Entry actions of a state that is a step of its own: stamp it, then report it. */
function enter(step: WorkloadStep) {
  return [
    { type: "enterStep", params: { step } },
    {
      type: "report",
      params: ({ context }: { context: DeployGateContext }): GateReport => ({
        step: context.step,
        since: context.since,
        images: context.images,
        code: step === "failed" ? context.code : null,
        message: step === "failed" ? context.message : null,
      }),
    },
  ] as const;
}

/** The top-level state name of a snapshot value (`entering` is transient and never observed). */
export const topLevelState: (value: StateValue) => DeployGateState = topLevelStateOf;

/**
 * The protocol step of a snapshot. Every state but `failing` is a step of its own; `failing` still reports the
 * step that failed, because the protocol promises `failed` only once everything the deploy created is removed.
 */
export function stepOf(snapshot: { context: DeployGateContext }): WorkloadStep {
  return snapshot.context.step;
}
