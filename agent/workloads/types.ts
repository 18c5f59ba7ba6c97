// What the workload manager offers and is built from: the public Workloads / WorkloadManager interfaces, their
// options and statuses, and the one internal record every part of the manager shares (a Deployment and the
// three slots one can be in). Types only; agent/workload.ts re-exports the public ones. May import spec/,
// machines/ (types), transport/inspection (types), lib/log (types) and the runtime port's types.
import type { ActorOptions, AnyActorLogic, AnyActorRef } from "xstate";
import type { ComposeProject, PublishedPorts } from "../../compose/compose.ts";
import type { Logger } from "../../lib/log.ts";
import type { GateReport } from "../../machines/deploy-gate.ts";
import type { ImageRef } from "../../spec/images.ts";
import type { DeployOrigin, HealthSpec, WorkloadStep } from "../../spec/protocol.ts";
import type { InspectionObserver } from "../../transport/inspection.ts";
import type { ProxyTarget } from "../proxy.ts";
import type {
  ContainerStats,
  LogLine,
  LogOptions,
  RegistryAuth,
  WorkloadRuntime,
} from "../runtime/runtime.ts";

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
export type StepReport = Omit<GateReport, "code"> & { code: string | null };

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

/** One deployment the manager knows: its request, last status and, while a gate drives it, project and actor. */
export interface Deployment {
  request: DeployRequest;
  status: WorkloadStatus;
  /** Null for a deployment restored already over (failed or stopped): nothing left to drive, probe or proxy. */
  gate: { project: ComposeProject; actor: AnyActorRef } | null;
}

/**
 * Where a deployment stands in the manager: the one served and persisted (`current`), an update's new one gated
 * beside it (`incoming`, current once it runs), and the one an update replaced, until it is stopped (`retiring`).
 */
export interface Slots {
  current: Deployment | null;
  incoming: Deployment | null;
  retiring: Deployment | null;
}
