// The control plane's view of one deployment: a pure XState machine, one actor per live deployment
// (actors/deployments.ts). It follows the agent's deploy_status steps; persistence, frames to the agent and
// the agent session's DEPLOY_* events are effects the coordinator provides. Events carry their receipt time
// (`at`), so the machine never reads a clock.
import { assign, type StateValue, setup } from "xstate";
import type { ImageRef } from "../spec/images.ts";
import type { WorkloadStep } from "../spec/protocol.ts";
import { topLevelStateOf } from "./top-level-state.ts";

/** Top-level states; `status` in the REST API is exactly one of these. */
export const DEPLOYMENT_STATUSES = [
  /** Placed and sent to the agent; the agent has not reported a step yet. */
  "pending",
  /** The agent is preparing images, starting containers or gating on health. */
  "deploying",
  /** The workload passed its health gate and runs. */
  "healthy",
  /** Final: the agent refused or failed it (code says why) and removed what it created, or the agent was lost. */
  "failed",
  /** Undeploy requested; the agent is stopping and removing the workload. */
  "undeploying",
  /** Final: the agent reported everything removed. */
  "undeployed",
] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

export interface ProgressEntry {
  /** rehydrated: recreated from the agent's report; reconciled: a final record the agent contradicted. */
  step:
    | WorkloadStep
    | "dispatched"
    | "undeploy_requested"
    | "agent_lost"
    | "rehydrated"
    | "reconciled"
    | "unrecognized";
  at: number;
  message?: string;
  /** On a `pulling` step: bytes downloaded and expected so far, as the engine reported them. */
  bytes_done?: number;
  bytes_total?: number;
}

export interface DeploymentContext {
  deploymentId: string;
  app: string;
  agentId: string;
  /** Stable EE-* code and message when failed. */
  code: string | null;
  message: string | null;
  composeHash: string | null;
  images: ImageRef[];
  /** The steps so far, oldest first (bounded: a flapping agent cannot grow it without limit). */
  progress: ProgressEntry[];
  createdAt: number;
  updatedAt: number;
  /** How long the agent has to report its first step before the deployment fails as EE-WORKLOAD-AGENT-LOST. */
  ackTimeoutMs: number;
  /** Set when recreated from the store: the status to resume in. */
  resumeStatus: DeploymentStatus | null;
}

export interface DeploymentInput {
  deploymentId: string;
  app: string;
  agentId: string;
  at: number;
  ackTimeoutMs: number;
  /** Recreating a deployment from the store (CP restart): start in this status with this context. */
  resume?: { status: DeploymentStatus; context: Omit<DeploymentContext, "ackTimeoutMs" | "resumeStatus"> };
}

export type DeploymentEvent =
  /** A deploy_status frame from the deployment's agent. */
  | {
      type: "STEP";
      step: WorkloadStep;
      at: number;
      code?: string;
      message?: string;
      composeHash?: string;
      images?: ImageRef[];
      /** While pulling: bytes so far; a repeated `pulling` step updates the last entry's. */
      bytes?: { done_bytes: number; total_bytes: number };
    }
  | { type: "UNDEPLOY"; at: number }
  /** The agent went stale or was forgotten while the deployment was in flight. */
  | { type: "AGENT_LOST"; at: number; reason: string };

const MAX_PROGRESS = 32;

function appendProgress(progress: ProgressEntry[], entry: ProgressEntry): ProgressEntry[] {
  const next = [...progress, entry];
  return next.length > MAX_PROGRESS ? next.slice(next.length - MAX_PROGRESS) : next;
}

const isStep =
  (...steps: WorkloadStep[]) =>
  ({ event }: { event: DeploymentEvent }) =>
    event.type === "STEP" && steps.includes(event.step);

export const deploymentMachine = setup({
  types: {
    context: {} as DeploymentContext,
    events: {} as DeploymentEvent,
    input: {} as DeploymentInput,
  },
  actions: {
    // Effects, provided by the coordinator: write the row, tell the agent session, send undeploy to the agent.
    persist: (_, _params: { status: DeploymentStatus }) => {},
    sessionHealthy: () => {},
    sessionFailed: () => {},
    sessionUndeployed: () => {},
    sendUndeploy: () => {},
    noteStep: assign(({ context, event }) => {
      if (event.type !== "STEP") return context;
      const last = context.progress.at(-1);
      const repeated = last?.step === event.step;
      const bytes = event.bytes
        ? { bytes_done: event.bytes.done_bytes, bytes_total: event.bytes.total_bytes }
        : {};
      return {
        progress: repeated
          ? event.bytes
            ? [...context.progress.slice(0, -1), { ...last, ...bytes }]
            : context.progress
          : appendProgress(context.progress, {
              step: event.step,
              at: event.at,
              ...(event.message ? { message: event.message } : {}),
              ...bytes,
            }),
        composeHash: event.composeHash ?? context.composeHash,
        images: event.images ?? context.images,
        updatedAt: event.at,
      };
    }),
    noteFailure: assign(({ context, event }) => {
      if (event.type === "STEP")
        return { code: event.code ?? "EE-WORKLOAD-START-FAILED", message: event.message ?? null };
      if (event.type === "AGENT_LOST") {
        return {
          code: "EE-WORKLOAD-AGENT-LOST",
          message: event.reason,
          progress: appendProgress(context.progress, {
            step: "agent_lost",
            at: event.at,
            message: event.reason,
          }),
          updatedAt: event.at,
        };
      }
      return context;
    }),
    noteUndeployRequest: assign(({ context, event }) => ({
      progress: appendProgress(context.progress, { step: "undeploy_requested", at: event.at }),
      updatedAt: event.at,
    })),
  },
  guards: {
    deployingStep: isStep("pulling", "preparing", "starting", "gating"),
    repeatedPullProgress: ({ context, event }) =>
      event.type === "STEP" && event.bytes !== undefined && context.progress.at(-1)?.step === event.step,
    repeatedStep: ({ context, event }) =>
      event.type === "STEP" && context.progress.at(-1)?.step === event.step,
    runningStep: isStep("running"),
    failedStep: isStep("failed"),
    stoppingStep: isStep("stopping"),
    // An undeploy that overtook a failing deploy ends the same way: nothing is left on the agent.
    goneStep: isStep("stopped", "failed"),
    resumes: ({ context }, params: { status: DeploymentStatus }) => context.resumeStatus === params.status,
  },
  delays: {
    ackTimeout: ({ context }) => context.ackTimeoutMs,
  },
}).createMachine({
  id: "deployment",
  context: ({ input }) => ({
    ...(input.resume?.context ?? {
      deploymentId: input.deploymentId,
      app: input.app,
      agentId: input.agentId,
      code: null,
      message: null,
      composeHash: null,
      images: [],
      progress: [{ step: "dispatched" as const, at: input.at }],
      createdAt: input.at,
      updatedAt: input.at,
    }),
    ackTimeoutMs: input.ackTimeoutMs,
    resumeStatus: input.resume?.status ?? null,
  }),
  initial: "boot",
  states: {
    // Transient: a new deployment starts pending; one recreated from the store resumes its status.
    boot: {
      always: [
        { guard: { type: "resumes", params: { status: "deploying" } }, target: "deploying" },
        { guard: { type: "resumes", params: { status: "healthy" } }, target: "healthy" },
        { guard: { type: "resumes", params: { status: "undeploying" } }, target: "undeploying" },
        { guard: { type: "resumes", params: { status: "failed" } }, target: "failed" },
        { guard: { type: "resumes", params: { status: "undeployed" } }, target: "undeployed" },
        { target: "pending" },
      ],
    },
    pending: {
      entry: { type: "persist", params: { status: "pending" } },
      after: {
        ackTimeout: {
          target: "failed",
          actions: assign(({ context }) => ({
            code: "EE-WORKLOAD-AGENT-LOST",
            message: `the agent did not acknowledge the deployment within ${context.ackTimeoutMs} ms`,
          })),
        },
      },
      on: {
        STEP: [
          { guard: "deployingStep", target: "deploying", actions: "noteStep" },
          { guard: "runningStep", target: "healthy", actions: "noteStep" },
          { guard: "failedStep", target: "failed", actions: ["noteStep", "noteFailure"] },
        ],
        UNDEPLOY: { target: "undeploying", actions: "noteUndeployRequest" },
        AGENT_LOST: { target: "failed", actions: "noteFailure" },
      },
    },
    deploying: {
      entry: { type: "persist", params: { status: "deploying" } },
      on: {
        STEP: [
          // Agents repeat a step (the answer to the request, then the broadcast; again after a reconnect), and
          // `pulling` again with the bytes so far.
          {
            guard: "repeatedPullProgress",
            actions: ["noteStep", { type: "persist", params: { status: "deploying" } }],
          },
          { guard: "repeatedStep" },
          { guard: "deployingStep", target: "deploying", reenter: true, actions: "noteStep" },
          { guard: "runningStep", target: "healthy", actions: "noteStep" },
          { guard: "failedStep", target: "failed", actions: ["noteStep", "noteFailure"] },
        ],
        UNDEPLOY: { target: "undeploying", actions: "noteUndeployRequest" },
        AGENT_LOST: { target: "failed", actions: "noteFailure" },
      },
    },
    healthy: {
      entry: [{ type: "persist", params: { status: "healthy" } }, "sessionHealthy"],
      on: {
        STEP: { guard: "failedStep", target: "failed", actions: ["noteStep", "noteFailure"] },
        UNDEPLOY: { target: "undeploying", actions: "noteUndeployRequest" },
      },
    },
    undeploying: {
      // The agent keeps the request if it is lost meanwhile: the coordinator sends it again on reconnect.
      entry: [{ type: "persist", params: { status: "undeploying" } }, "sendUndeploy"],
      on: {
        STEP: [
          {
            guard: "stoppingStep",
            actions: ["noteStep", { type: "persist", params: { status: "undeploying" } }],
          },
          { guard: "goneStep", target: "undeployed", actions: "noteStep" },
        ],
      },
    },
    failed: { type: "final", entry: [{ type: "persist", params: { status: "failed" } }, "sessionFailed"] },
    undeployed: {
      type: "final",
      entry: [{ type: "persist", params: { status: "undeployed" } }, "sessionUndeployed"],
    },
  },
});

/** The status of a deployment actor's snapshot value (`boot` is transient and never observed). */
export const statusOf: (value: StateValue) => DeploymentStatus = topLevelStateOf;
