// The agent's workload manager: one deployment at a time, each run by a deploy-gate actor (agent/workloads/gate.ts
// over the WorkloadRuntime port); its status is what the HTTP API, the CP link and the state snapshot report.
// This file holds the slots (current, an update's incoming, a replaced one retiring), publishing each step
// (slots moved along, workload.json written, listeners told) and the deploy/undeploy entry points; the jobs live
// in agent/workloads/: the gate's wiring (gate.ts), its probe (probe.ts), proxy targets and drains
// (proxy-targets.ts), updates in place (update.ts), re-adoption at start (restore.ts), the persisted record
// (persisted.ts), engine error mapping (engine-call.ts), host figures (host-stats.ts) and the types (types.ts).
// May import spec/, lib/, machines/ (types), xstate and agent/workloads/.

import { type ComposeProject, composeHash, type ParseOptions, parseCompose } from "../compose/compose.ts";
import type { GateResume } from "../machines/deploy-gate.ts";
import { ComposeError, NotFoundError, WorkloadError } from "../spec/errors.ts";
import { MAX_CONTEXT_BYTES, type WorkloadStep } from "../spec/protocol.ts";
import type { PullProgress, WorkloadSpec } from "./runtime/runtime.ts";
import { engineCall } from "./workloads/engine-call.ts";
import { createGate } from "./workloads/gate.ts";
import { hostStats } from "./workloads/host-stats.ts";
import { persistWorkload } from "./workloads/persisted.ts";
import { createProbe } from "./workloads/probe.ts";
import { ProxyTargets } from "./workloads/proxy-targets.ts";
import { restoreWorkload } from "./workloads/restore.ts";
import type {
  Deployment,
  DeployRequest,
  Slots,
  StepReport,
  WorkloadManager,
  WorkloadStatus,
  WorkloadsOptions,
} from "./workloads/types.ts";
import { checkUpdate, followUpdate } from "./workloads/update.ts";

export { loadPersistedWorkload, PERSIST_FILE } from "./workloads/persisted.ts";
export type {
  DeployRequest,
  HostStats,
  WorkloadStatus,
  Workloads,
  WorkloadsOptions,
} from "./workloads/types.ts";

const DEFAULT_POLL_MS = 1000;
const DEFAULT_SETTLE_MS = 5000;

/** Steps in which a deployment holds the agent: another deployment is refused with EE-WORKLOAD-BUSY. */
const BUSY_STEPS: ReadonlySet<WorkloadStep> = new Set([
  "pulling",
  "preparing",
  "starting",
  "gating",
  "running",
  "stopping",
]);

/** The status of `req` at a step, without a failure or progress: a launch's first status and each step's. */
function statusAt(
  req: DeployRequest,
  hash: string,
  at: Pick<WorkloadStatus, "step" | "images" | "since">,
): WorkloadStatus {
  return {
    deployment_id: req.deployment_id,
    app: req.app,
    step: at.step,
    compose_hash: hash,
    images: at.images,
    since: at.since,
    health: req.health ?? null,
    ...(req.origin ? { origin: req.origin } : {}),
  };
}

export function createWorkloads(opts: WorkloadsOptions): WorkloadManager {
  const { runtime, log } = opts;
  const clock = opts.clock;
  const now = clock ? () => clock.now() : Date.now;
  const listeners = new Set<(status: WorkloadStatus) => void>();
  const slots: Slots = { current: null, incoming: null, retiring: null };
  const rules: ParseOptions = {
    bindAllowlist: opts.bindAllowlist ?? [],
    publishedPorts: opts.publishedPorts ?? "none",
  };
  const engine = engineCall(log);
  const targets = new ProxyTargets(runtime, log);
  const noteTarget = (id: string, host: string | null) => targets.note(id, host);
  const probe = createProbe({
    runtime,
    engine,
    now,
    settleMs: opts.settleMs ?? DEFAULT_SETTLE_MS,
    noteTarget,
  });
  const gateDeps = {
    runtime,
    engine,
    probe,
    now,
    pollMs: opts.pollMs ?? DEFAULT_POLL_MS,
    publish,
    ...(clock ? { clock } : {}),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  };

  function publish(dep: Deployment, report: StepReport, progress?: PullProgress): void {
    const { request } = dep;
    const status = statusAt(request, dep.status.compose_hash, report);
    if (report.code !== null) status.code = report.code;
    if (report.message !== null) status.message = report.message;
    if (progress) status.progress = { done_bytes: progress.done_bytes, total_bytes: progress.total_bytes };
    dep.status = status;
    followUpdate(slots, dep, targets, log);
    const fields = { deployment_id: status.deployment_id, app: status.app, step: status.step };
    if (status.code) log.warn({ ...fields, code: status.code, message: status.message }, "workload step");
    else log.info(fields, "workload step");
    // workload.json holds the serving deployment only: an update's new one left half done by a restart is an
    // orphan on the engine then, removed at restore, and the old one is re-adopted still serving.
    if (dep === slots.current) {
      try {
        const { context: _context, registry_auth: _auth, ...persisted } = request;
        persistWorkload(opts.dataDir, { request: persisted, status });
      } catch (err) {
        log.error({ deployment_id: status.deployment_id, err }, "could not persist the workload");
      }
    }
    for (const listener of listeners) {
      try {
        listener(status);
      } catch (err) {
        log.error({ deployment_id: status.deployment_id, err }, "workload listener failed");
      }
    }
  }

  /**
   * Runs `req` under a new gate actor (resumed in running when re-adopted): as the current deployment, or as an
   * update's incoming one beside it.
   */
  function launch(
    req: DeployRequest,
    project: ComposeProject,
    hash: string,
    resume?: GateResume,
    role: "current" | "incoming" = "current",
  ): Deployment {
    const spec: WorkloadSpec = { deploymentId: req.deployment_id, app: req.app, project, composeHash: hash };
    if (req.context) spec.context = req.context;
    const dep: Deployment = {
      request: req,
      gate: null,
      status: statusAt(req, hash, {
        step: resume?.step ?? "pulling",
        images: resume?.images ?? [],
        since: resume?.since ?? now(),
      }),
    };
    const actor = createGate(gateDeps, dep, spec, resume);
    dep.gate = { project, actor };
    // The gate's own failures are reported as steps; an error here is a defect in the manager.
    actor.subscribe({
      error: (err) => log.error({ deployment_id: req.deployment_id, err }, "deploy gate crashed"),
    });
    slots[role] = dep;
    actor.start();
    return dep;
  }

  function deploy(req: DeployRequest): WorkloadStatus {
    const { current, incoming } = slots;
    if (current?.request.deployment_id === req.deployment_id) return current.status;
    if (incoming?.request.deployment_id === req.deployment_id) return incoming.status;
    const project = parseCompose(req.compose, rules);
    if (req.context && req.context.length > MAX_CONTEXT_BYTES) {
      throw new ComposeError(
        "EE-COMPOSE-CONTEXT-TOO-LARGE",
        `the build context is ${req.context.length} bytes; at most ${MAX_CONTEXT_BYTES}`,
      );
    }
    if (req.replaces !== undefined) {
      checkUpdate(slots, { ...req, replaces: req.replaces });
      return launch(req, project, composeHash(project, req.context), undefined, "incoming").status;
    }
    if (current && BUSY_STEPS.has(current.status.step)) {
      throw new WorkloadError(
        "EE-WORKLOAD-BUSY",
        `deployment ${current.request.deployment_id} is ${current.status.step}`,
      );
    }
    current?.gate?.actor.stop();
    return launch(req, project, composeHash(project, req.context)).status;
  }

  return {
    restore: () =>
      restoreWorkload({
        runtime,
        engine,
        log,
        dataDir: opts.dataDir,
        rules,
        now,
        adopt: (dep) => {
          slots.current = dep;
        },
        publish,
        launch: (req, project, hash, resume) => launch(req, project, hash, resume),
        noteTarget,
      }),
    current: () => slots.current?.status ?? null,
    deploy,
    undeploy(deploymentId) {
      const { current, incoming, retiring } = slots;
      const dep = [current, incoming, retiring].find((d) => d?.request.deployment_id === deploymentId);
      if (!dep) throw new NotFoundError("EE-NOT-FOUND", `deployment ${deploymentId} is not on this agent`);
      // A replaced one stops by itself once drained; an early stop would cut its in-flight requests.
      if (dep !== retiring) dep.gate?.actor.send({ type: "UNDEPLOY" });
      return dep.status;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async *logs(logOpts) {
      // No containers is the runtime's own EE-WORKLOAD-NONE: listing them here first would ask the engine twice.
      const { current } = slots;
      if (!current)
        throw new WorkloadError("EE-WORKLOAD-NONE", "no workload has been deployed on this agent");
      yield* runtime.logs(current.request.deployment_id, logOpts);
    },
    async stats() {
      const { current } = slots;
      const containers = current ? await runtime.stats(current.request.deployment_id) : [];
      return { containers, host: hostStats() };
    },
    proxyTarget: () => (slots.current ? targets.of(slots.current) : null),
    async stop() {
      for (const dep of [slots.current, slots.incoming, slots.retiring]) dep?.gate?.actor.stop();
    },
  };
}
