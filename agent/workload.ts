// The agent's workload manager: one deployment at a time, each run by a deploy-gate actor
// (machines/deploy-gate.ts) over the WorkloadRuntime port; its status is what the HTTP API, the CP link and the
// state snapshot report. An update in place (a deploy naming the running one as `replaces`) runs a second gate
// beside it: the proxy switches to the new one once it runs, and the old one is stopped after its proxied
// requests drain; a new one that fails leaves the old one untouched. It also holds the gate's probe (HTTP health spec, Docker health checks or a settle
// period, failing fast on exited containers) and persists the current deployment to DATA_DIR/workload.json, from
// which a restarted agent restores it: a workload still running is re-adopted untouched, anything half done is
// removed and reported failed. May import spec/, lib/, machines/, xstate, zod, node: modules and the runtime
// port (with the build-context check that runs before it).
import { request } from "node:http";
import { availableParallelism, freemem, loadavg, totalmem, uptime } from "node:os";
import { join } from "node:path";
import {
  type ActorOptions,
  type AnyActorLogic,
  type AnyActorRef,
  assign,
  createActor,
  fromPromise,
} from "xstate";
import { z } from "zod";
import {
  type ComposeProject,
  composeHash,
  type ParseOptions,
  type PublishedPorts,
  parseCompose,
} from "../compose/compose.ts";
import type { Logger } from "../lib/log.ts";
import { readFileIfExists } from "../lib/read-if-exists.ts";
import { writeFileAtomicSync } from "../lib/write-file-atomic.ts";
import {
  deployGateMachine,
  type GateJob,
  type GateReport,
  type GateResume,
  type ProbeResult,
  type Reason,
  reasonOf,
  stampStep,
} from "../machines/deploy-gate.ts";
import { ComposeError, EeError, NotFoundError, ValidationError, WorkloadError } from "../spec/errors.ts";
import { type ImageRef, imageRefsSchema } from "../spec/images.ts";
import {
  type DeployOrigin,
  deployOriginSchema,
  type HealthSpec,
  healthSpecSchema,
  MAX_CONTEXT_BYTES,
  messageSchemas,
  type WorkloadStep,
  workloadStepSchema,
} from "../spec/protocol.ts";
import type { InspectionObserver } from "../transport/inspection.ts";
import type { ProxyTarget } from "./proxy.ts";
import { checkContext } from "./runtime/build-context.ts";
import type {
  ContainerStats,
  LogLine,
  LogOptions,
  PullProgress,
  RegistryAuth,
  RuntimeContainer,
  WorkloadRuntime,
  WorkloadSpec,
} from "./runtime/runtime.ts";

export interface WorkloadStatus {
  deployment_id: string;
  app: string;
  step: WorkloadStep;
  /** SHA-256 hex over the canonical compose and the build context. */
  compose_hash: string;
  /** Each service's image reference and the digest it resolved to, once prepared. */
  images: ImageRef[];
  /** While pulling: bytes downloaded and expected so far (as far as the engine reports sizes). */
  progress?: { done_bytes: number; total_bytes: number };
  /** Set when step is failed: a stable EE-COMPOSE-* or EE-WORKLOAD-* code and what happened. */
  code?: string;
  message?: string;
  /** When the current step began, ms since the epoch. */
  since: number;
  health: HealthSpec | null;
  /** The CP envelope the deploy came with (spec/protocol.ts deployOriginSchema); absent: it came without one. */
  origin?: DeployOrigin;
}

export interface DeployRequest {
  deployment_id: string;
  app: string;
  compose: string;
  context?: Uint8Array;
  health?: HealthSpec;
  /** Registry credentials, already opened; used for this deploy's pulls only, never persisted or reported. */
  registry_auth?: RegistryAuth;
  /** Update in place: the running deployment this one takes over from once it passes its gate. */
  replaces?: string;
  /** The CP envelope the deploy carried, kept (and persisted) so the CP can recognize its own deployment later. */
  origin?: DeployOrigin;
}

export interface HostStats {
  cpus: number;
  load_avg: [number, number, number];
  memory_total_bytes: number;
  memory_free_bytes: number;
  uptime_s: number;
}

export interface Workloads {
  /** The current deployment (any step, including failed and stopped) or null when none was ever deployed. */
  current(): WorkloadStatus | null;
  /**
   * Validates at once (compose, size, busy) and starts the gate. Throws ComposeError, or WorkloadError
   * EE-WORKLOAD-BUSY when another deployment is preparing, starting, gating, running or stopping, unless the
   * request `replaces` the running one and no other update is under way: then its gate runs beside it.
   * Redeploying the same deployment_id returns its current status (idempotent for retried dispatches).
   */
  deploy(req: DeployRequest): WorkloadStatus;
  /**
   * Starts stopping the deployment (the current one, an update's new one, or an old one being replaced). Throws
   * NotFoundError for any other. Idempotent.
   */
  undeploy(deploymentId: string): WorkloadStatus;
  /** Called on every step change; returns the unsubscribe function. */
  subscribe(listener: (status: WorkloadStatus) => void): () => void;
  /** Throws WorkloadError EE-WORKLOAD-NONE when there are no containers. */
  logs(opts: LogOptions): AsyncIterable<LogLine>;
  stats(): Promise<{ containers: ContainerStats[]; host: HostStats }>;
  /**
   * Where the HTTP API proxies other paths: health.port on the target service's container address (see
   * targetService), else the first published TCP port on loopback; null when not running. `hold` counts a
   * forwarded request until its release is called: an old deployment is stopped only once none is in flight.
   */
  proxyTarget(): ProxyTarget | null;
  /** Stops the gate actors; running containers are left running. */
  stop(): Promise<void>;
}

/** What the agent program holds: the Workloads its API and CP link serve, plus the restore at start. */
export interface WorkloadManager extends Workloads {
  /**
   * Picks up the deployment persisted by the previous agent process; called once, before anything is deployed
   * and before the CP link starts, so the first registration reports it. Running with every service up: re-adopted
   * without touching a container. Running with a service down: removed, failed EE-WORKLOAD-EXITED. Preparing,
   * starting or gating: removed, failed EE-WORKLOAD-INTERRUPTED. Stopping: removed, stopped. Failed or stopped:
   * kept as it was, for a CP that missed it. Deployments labelled on the engine under another id are orphans and
   * removed. Returns the restored status (null when nothing was persisted or the record is unreadable).
   * Throws WorkloadError EE-WORKLOAD-ENGINE when the engine does not answer: nothing is decided blind.
   */
  restore(): Promise<WorkloadStatus | null>;
}

/** What publish takes: a gate's report, or one restored from the record, whose code is as written then. */
type StepReport = Omit<GateReport, "code"> & { code: string | null };

/** The actor clock plus the time it reads; tests pass a SimulatedClock. */
export type WorkloadClock = NonNullable<ActorOptions<AnyActorLogic>["clock"]> & { now(): number };

export interface WorkloadsOptions {
  runtime: WorkloadRuntime;
  /** Where workload.json lives. */
  dataDir: string;
  /** Host directories bind mounts may come from; none by default. */
  bindAllowlist?: string[];
  /** What a compose may publish (workloads.allow_published_ports); `none` by default. */
  publishedPorts?: PublishedPorts;
  log: Logger;
  /** Interval between health probes (default 1 s). */
  pollMs?: number;
  /** Without a health spec or Docker health checks: how long every container must have run (default 5 s). */
  settleMs?: number;
  clock?: WorkloadClock;
  /** Inspection of every deploy gate (`eectl agent --inspect`). */
  inspect?: InspectionObserver;
}

const DEFAULT_POLL_MS = 1000;
/** Pull progress is published at most this often: each one is a frame to the CP and a row write there. */
const PROGRESS_EVERY_MS = 500;
const DEFAULT_SETTLE_MS = 5000;
/** The gate deadline of a deploy without a health spec: the health spec's own default timeout_s. */
const DEFAULT_GATE_TIMEOUT_S = 60;
/** One HTTP health probe may take this long before it counts as not healthy yet. */
const PROBE_TIMEOUT_MS = 2000;
/** A container may get a new address when it restarts: the proxy's target is looked up again this often. */
const TARGET_REFRESH_MS = 5000;
/** After an update's switch: the longest the old deployment waits for its proxied requests to finish. */
const DRAIN_TIMEOUT_MS = 10_000;
const DRAIN_POLL_MS = 20;
export const PERSIST_FILE = "workload.json";

/** Steps in which a deployment holds the agent: another deployment is refused with EE-WORKLOAD-BUSY. */
const BUSY_STEPS: ReadonlySet<WorkloadStep> = new Set([
  "pulling",
  "preparing",
  "starting",
  "gating",
  "running",
  "stopping",
]);

const persistedSchema = z.object({
  request: messageSchemas.deploy
    .omit({ context: true, registry_auth: true })
    .extend({ origin: deployOriginSchema.optional() }),
  status: z.object({
    deployment_id: z.string(),
    app: z.string(),
    step: workloadStepSchema,
    compose_hash: z.string(),
    // Records written before images were resolved to digests hold an object (service → image id): none known.
    images: z.preprocess((v) => (Array.isArray(v) ? v : []), imageRefsSchema),
    code: z.string().optional(),
    message: z.string().optional(),
    since: z.number(),
    health: healthSpecSchema.nullable(),
  }),
});

/** What workload.json holds: the deploy request without its build context, and the last status. */
export type PersistedWorkload = z.infer<typeof persistedSchema>;

/** The deployment persisted in dataDir, or null when there is none. Throws ValidationError when it is corrupt. */
export function loadPersistedWorkload(dataDir: string): PersistedWorkload | null {
  const path = join(dataDir, PERSIST_FILE);
  const text = readFileIfExists(path);
  if (text === null) return null;
  let parsed: ReturnType<typeof persistedSchema.safeParse>;
  try {
    parsed = persistedSchema.safeParse(JSON.parse(text));
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `${path} is not JSON`);
  }
  if (!parsed.success) throw new ValidationError("EE-CONFIG-INVALID", `${path} is not a persisted workload`);
  return parsed.data;
}

// Atomic: a crash leaves either the old file or the new one, never half of one.
function persist(dataDir: string, record: PersistedWorkload): void {
  writeFileAtomicSync(join(dataDir, PERSIST_FILE), JSON.stringify(record), 0o600);
}

/** One deployment the manager knows: its request, last status and, while a gate drives it, project and actor. */
interface Deployment {
  request: DeployRequest;
  status: WorkloadStatus;
  /** Null for a deployment restored already over (failed or stopped): nothing left to drive, probe or proxy. */
  gate: { project: ComposeProject; actor: AnyActorRef } | null;
}

export function createWorkloads(opts: WorkloadsOptions): WorkloadManager {
  const { runtime, log } = opts;
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  const clock = opts.clock;
  const now = clock ? () => clock.now() : Date.now;
  const listeners = new Set<(status: WorkloadStatus) => void>();
  let current: Deployment | null = null;
  /** An update's new deployment while it is gated beside `current`; becomes current once it runs. */
  let incoming: Deployment | null = null;
  /** The deployment an update replaced, until it is stopped. */
  let retiring: Deployment | null = null;
  /** Requests the proxy has forwarded and not finished, by deployment id. */
  const inflight = new Map<string, number>();
  const rules: ParseOptions = {
    bindAllowlist: opts.bindAllowlist ?? [],
    publishedPorts: opts.publishedPorts ?? "none",
  };
  /** The proxy's target of each deployment, found by probes and by restore; refreshed in the background. */
  const targets = new Map<string, { at: number; host: string | null; refreshing: boolean }>();
  const noteTarget = (deploymentId: string, host: string | null) => {
    targets.set(deploymentId, { at: Date.now(), host, refreshing: false });
  };

  // Untyped engine errors become EE-WORKLOAD-ENGINE; their text stays in the log. An abort is the gate leaving
  // the step (undeploy), not a failure: it goes nowhere but is not logged as one.
  async function engine<T>(deploymentId: string, what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof EeError || (err instanceof Error && err.name === "AbortError")) throw err;
      log.error({ deployment_id: deploymentId, err }, `workload ${what} failed`);
      throw new WorkloadError("EE-WORKLOAD-ENGINE", `the engine failed to ${what}; see the agent log`);
    }
  }

  function publish(dep: Deployment, report: StepReport, progress?: PullProgress): void {
    const { request } = dep;
    const status: WorkloadStatus = {
      deployment_id: request.deployment_id,
      app: request.app,
      step: report.step,
      compose_hash: dep.status.compose_hash,
      images: report.images,
      since: report.since,
      health: request.health ?? null,
      ...(request.origin ? { origin: request.origin } : {}),
    };
    if (report.code !== null) status.code = report.code;
    if (report.message !== null) status.message = report.message;
    if (progress) status.progress = { done_bytes: progress.done_bytes, total_bytes: progress.total_bytes };
    dep.status = status;
    if (dep === incoming) {
      if (status.step === "running") switchTo(dep);
      else if (status.step === "failed" || status.step === "stopped") {
        incoming = null;
        targets.delete(status.deployment_id);
      }
    } else if (dep === retiring && (status.step === "failed" || status.step === "stopped")) {
      retiring = null;
      targets.delete(status.deployment_id);
    }
    const fields = { deployment_id: status.deployment_id, app: status.app, step: status.step };
    if (status.code) log.warn({ ...fields, code: status.code, message: status.message }, "workload step");
    else log.info(fields, "workload step");
    // workload.json holds the serving deployment only: an update's new one left half done by a restart is an
    // orphan on the engine then, removed at restore, and the old one is re-adopted still serving.
    if (dep === current) {
      try {
        const { context: _context, registry_auth: _auth, ...persisted } = request;
        persist(opts.dataDir, { request: persisted, status });
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

  function gateFor(spec: WorkloadSpec, health: HealthSpec | null, dep: () => Deployment) {
    const id = spec.deploymentId;
    let lastProgress = 0;
    const onProgress = (p: PullProgress) => {
      if (now() - lastProgress < PROGRESS_EVERY_MS) return;
      lastProgress = now();
      const d = dep();
      const { step, since, images } = d.status;
      publish(d, { step, since, images, code: null, message: null }, p);
    };
    const remove = fromPromise<void, GateJob>(() =>
      engine(id, "remove the deployment", () => runtime.remove(id)),
    );
    // One provide per deployment: the container work, the step clock and where reports go.
    return deployGateMachine.provide({
      actions: {
        enterStep: assign(stampStep(now)),
        report: (_, report) => publish(dep(), report),
      },
      actors: {
        pull: fromPromise<void, GateJob>(async ({ signal }) => {
          const d = dep();
          const auth = d.request.registry_auth;
          try {
            await engine(id, "pull images", () =>
              runtime.pull(spec, { signal, onProgress, ...(auth ? { auth } : {}) }),
            );
          } finally {
            // The credentials served these pulls only: nothing keeps them once they are done.
            delete d.request.registry_auth;
          }
        }),
        prepare: fromPromise<ImageRef[], GateJob>(async ({ signal }) => {
          // Before any image work: what the context unpacks to, streamed, so a gzip bomb is refused unopened.
          if (spec.context) await checkContext(spec.context);
          return engine(id, "prepare images", () => runtime.prepare(spec, signal));
        }),
        start: fromPromise<void, GateJob>(async ({ signal }) => {
          await engine(id, "start containers", () => runtime.start(spec, signal));
        }),
        probe: fromPromise<ProbeResult, GateJob>(({ signal }) => probe(spec, health, signal)),
        cleanup: remove,
        remove,
      },
    });
  }

  async function probe(
    spec: WorkloadSpec,
    health: HealthSpec | null,
    signal: AbortSignal,
  ): Promise<ProbeResult> {
    let containers: RuntimeContainer[];
    try {
      containers = await engine(spec.deploymentId, "inspect containers", () =>
        runtime.inspect(spec.deploymentId),
      );
    } catch (err) {
      // A hiccup of the engine is not the workload's fault; the gate deadline still bounds the wait.
      if (err instanceof WorkloadError && err.code === "EE-WORKLOAD-ENGINE") return "waiting";
      throw err;
    }
    failOnExited(spec.project, containers);
    if (health) {
      const host = targetAddress(spec.project, containers);
      if (host === null) return "waiting";
      if (!(await answers2xx(host, health, signal))) return "waiting";
      noteTarget(spec.deploymentId, host);
      return "healthy";
    }
    const allRunning =
      containers.length >= spec.project.services.length && containers.every((c) => c.state === "running");
    if (!allRunning) return "waiting";
    const checked = new Set(spec.project.services.filter(hasHealthcheck).map((s) => s.name));
    if (checked.size > 0) {
      // Unhealthy is waiting too: Docker keeps checking and the container may recover before the deadline.
      const healthy = containers.filter((c) => checked.has(c.service)).every((c) => c.health === "healthy");
      return healthy ? "healthy" : "waiting";
    }
    const t = now();
    const settled = containers.every((c) => c.startedAt !== null && t - Date.parse(c.startedAt) >= settleMs);
    return settled ? "healthy" : "waiting";
  }

  /**
   * The update's switch: one reference swap makes the new deployment the one served, reported and persisted;
   * the old one is stopped once the requests already forwarded to it have finished (or the drain times out).
   */
  function switchTo(dep: Deployment): void {
    const old = current;
    current = dep;
    incoming = null;
    // An old one that failed meanwhile has removed itself already: nothing to drain or stop.
    if (old?.status.step !== "running") return;
    retiring = old;
    const id = old.request.deployment_id;
    log.info(
      { deployment_id: dep.request.deployment_id, replaces: id },
      "update switched; draining the old one",
    );
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    const stopWhenDrained = () => {
      if ((inflight.get(id) ?? 0) > 0 && Date.now() < deadline) {
        setTimeout(stopWhenDrained, DRAIN_POLL_MS).unref();
        return;
      }
      old.gate?.actor.send({ type: "UNDEPLOY" });
    };
    // After this publish: listeners (the CP link) hear the new one running before the old one stopping.
    queueMicrotask(stopWhenDrained);
  }

  /** Counts one proxied request to deployment `id` until the returned release is called (once). */
  function hold(id: string): () => void {
    inflight.set(id, (inflight.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (inflight.get(id) ?? 1) - 1;
      if (n > 0) inflight.set(id, n);
      else inflight.delete(id);
    };
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
    const health = req.health ?? null;
    const at = now();
    const actor = createActor(
      gateFor(spec, health, () => dep),
      {
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.inspect ? { inspect: opts.inspect } : {}),
        input: {
          deploymentId: spec.deploymentId,
          gateTimeoutMs: (health?.timeout_s ?? DEFAULT_GATE_TIMEOUT_S) * 1000,
          pollMs,
          at,
          ...(resume ? { resume } : {}),
        },
      },
    );
    const dep: Deployment = {
      request: req,
      gate: { project, actor },
      status: {
        deployment_id: req.deployment_id,
        app: req.app,
        step: resume?.step ?? "pulling",
        compose_hash: hash,
        images: resume?.images ?? [],
        since: resume?.since ?? at,
        health,
        ...(req.origin ? { origin: req.origin } : {}),
      },
    };
    // The gate's own failures are reported as steps; an error here is a defect in the manager.
    actor.subscribe({
      error: (err) => log.error({ deployment_id: req.deployment_id, err }, "deploy gate crashed"),
    });
    if (role === "current") current = dep;
    else incoming = dep;
    actor.start();
    return dep;
  }

  function deploy(req: DeployRequest): WorkloadStatus {
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
      const serving = current?.request.deployment_id === req.replaces && current.status.step === "running";
      if (!serving || incoming || retiring) {
        throw new WorkloadError(
          "EE-WORKLOAD-BUSY",
          serving
            ? `an update of deployment ${req.replaces} is already under way`
            : `deployment ${req.replaces} is not the running deployment on this agent`,
        );
      }
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

  /** Removes the deployment from the engine; returns why that failed, or null. */
  async function removeAll(id: string): Promise<Reason | null> {
    try {
      await engine(id, "remove the deployment", () => runtime.remove(id));
      return null;
    } catch (err) {
      return reasonOf(err);
    }
  }

  // The agent owns its engine: a deployment labelled there that is not the persisted one was left by a crash
  // (between creating and persisting, or after a cleanup that failed) and nobody will ever undeploy it.
  async function removeOrphans(keep: string): Promise<void> {
    const found = await engine(keep, "list deployments", () => runtime.deployments());
    for (const { deploymentId, app } of found) {
      if (deploymentId === keep) continue;
      log.warn({ deployment_id: deploymentId, app }, "removing an orphaned deployment found on the engine");
      const failure = await removeAll(deploymentId);
      if (failure)
        log.error({ deployment_id: deploymentId, err: failure.message }, "could not remove an orphan");
    }
  }

  async function restore(): Promise<WorkloadStatus | null> {
    let record: PersistedWorkload | null;
    try {
      record = loadPersistedWorkload(opts.dataDir);
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        "ignoring an unreadable persisted workload; starting with none",
      );
      return null;
    }
    // A data dir without a record never deployed anything: nothing on the engine is this agent's to judge.
    if (!record) return null;
    const { request, status } = record;
    const id = status.deployment_id;
    await removeOrphans(id);
    const dep: Deployment = { request, status, gate: null };
    current = dep;
    const publishEnd = (
      step: "failed" | "stopped",
      since: number,
      reason: { code: string; message: string } | null,
    ) => {
      const { images } = status;
      publish(dep, { step, since, images, code: reason?.code ?? null, message: reason?.message ?? null });
      return dep.status;
    };
    // Like the gate's failing state: the reason stays, a failed cleanup is noted as what may be left behind.
    const failAfterRemoving = async (reason: Reason) => {
      const failure = await removeAll(id);
      const message = failure ? `${reason.message} (cleanup failed: ${failure.message})` : reason.message;
      return publishEnd("failed", now(), { code: reason.code, message });
    };
    switch (status.step) {
      case "failed":
      case "stopped": {
        const reason = status.code ? { code: status.code, message: status.message ?? "" } : null;
        return publishEnd(status.step, status.since, reason);
      }
      case "stopping": {
        const failure = await removeAll(id);
        return publishEnd(failure ? "failed" : "stopped", now(), failure);
      }
      case "running":
        break;
      default:
        log.warn(
          { deployment_id: id, step: status.step },
          "removing a deploy interrupted by an agent restart",
        );
        return failAfterRemoving({
          code: "EE-WORKLOAD-INTERRUPTED",
          message: `the agent restarted while the deploy was ${status.step}`,
        });
    }
    let project: ComposeProject;
    try {
      project = parseCompose(request.compose, rules);
    } catch (err) {
      // Only a changed policy (bind allowlist, published ports) refuses a compose accepted before.
      return failAfterRemoving(reasonOf(err));
    }
    const containers = await engine(id, "inspect containers", () => runtime.inspect(id));
    const down = project.services.flatMap((s) => {
      const own = containers.filter((c) => c.service === s.name);
      if (own.some((c) => c.state === "running")) return [];
      return [`${s.name} (${own[0]?.state ?? "missing"})`];
    });
    if (down.length > 0) {
      log.warn({ deployment_id: id, down }, "a workload stopped while the agent was away");
      return failAfterRemoving({
        code: "EE-WORKLOAD-EXITED",
        message: `services not running after an agent restart: ${down.join(", ")}`,
      });
    }
    // The addresses may have changed while the agent was away (a container restarted): found again here.
    noteTarget(id, targetAddress(project, containers));
    log.info({ deployment_id: id, app: status.app }, "re-adopting the running workload");
    return launch(request, project, status.compose_hash, {
      step: "running",
      since: status.since,
      images: status.images,
    }).status;
  }

  function refreshTarget(id: string, project: ComposeProject): void {
    const known = targets.get(id);
    if (known) known.refreshing = true;
    runtime.inspect(id).then(
      (containers) => {
        if (targets.has(id)) noteTarget(id, targetAddress(project, containers));
      },
      (err) => {
        log.warn({ deployment_id: id, err: (err as Error).message }, "could not look up the proxy target");
        const t = targets.get(id);
        if (t) targets.set(id, { ...t, at: Date.now(), refreshing: false });
      },
    );
  }

  return {
    restore,
    current: () => current?.status ?? null,
    deploy,
    undeploy(deploymentId) {
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
      if (!current)
        throw new WorkloadError("EE-WORKLOAD-NONE", "no workload has been deployed on this agent");
      yield* runtime.logs(current.request.deployment_id, logOpts);
    },
    async stats() {
      const containers = current ? await runtime.stats(current.request.deployment_id) : [];
      return { containers, host: hostStats() };
    },
    proxyTarget() {
      if (current?.status.step !== "running" || !current.gate) return null;
      const { health } = current.request;
      const id = current.request.deployment_id;
      const held = { hold: () => hold(id) };
      if (health) {
        const target = targets.get(id);
        if (!target) return null;
        if (Date.now() - target.at >= TARGET_REFRESH_MS && !target.refreshing)
          refreshTarget(id, current.gate.project);
        return target.host === null ? null : { host: target.host, port: health.port, ...held };
      }
      const published = current.gate.project.services
        .flatMap((s) => s.ports)
        .find((p) => p.protocol === "tcp");
      if (!published) return null;
      return { host: "127.0.0.1", port: published.host_port, ...held };
    },
    async stop() {
      for (const dep of [current, incoming, retiring]) dep?.gate?.actor.stop();
    },
  };
}

function hasHealthcheck(service: ComposeProject["services"][number]): boolean {
  return service.healthcheck !== undefined && service.healthcheck.test[0] !== "NONE";
}

/** A container that is gone for good (restart "no") fails the gate at once instead of waiting for the deadline. */
function failOnExited(project: ComposeProject, containers: RuntimeContainer[]): void {
  for (const c of containers) {
    if (c.state !== "exited" && c.state !== "dead") continue;
    const service = project.services.find((s) => s.name === c.service);
    if (service?.restart !== "no") continue;
    throw new WorkloadError(
      "EE-WORKLOAD-EXITED",
      `service ${c.service} exited with code ${c.exitCode ?? "unknown"} before passing the health gate`,
    );
  }
}

/**
 * The service health.port belongs to: the last in start order, so in `web` depending on `db` it is `web`; with a
 * single service, that one.
 */
function targetService(project: ComposeProject): string {
  return project.services[project.services.length - 1]!.name;
}

/** The target service's address on the deployment's network, when its container is running and has one. */
function targetAddress(project: ComposeProject, containers: RuntimeContainer[]): string | null {
  const name = targetService(project);
  return containers.find((c) => c.service === name && c.state === "running")?.ip ?? null;
}

/** GET {host}:{health.port}{path}: true on 2xx; any other answer, a refused connection or a timeout is false. */
function answers2xx(host: string, health: HealthSpec, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port: health.port,
        path: health.path,
        agent: false,
        timeout: PROBE_TIMEOUT_MS,
        signal,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 300);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

function hostStats(): HostStats {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return {
    cpus: availableParallelism(),
    load_avg: [one, five, fifteen],
    memory_total_bytes: totalmem(),
    memory_free_bytes: freemem(),
    uptime_s: Math.round(uptime()),
  };
}
