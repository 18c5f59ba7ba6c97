// The workload runtime port: what the agent needs from a container engine to run one Compose project per
// deployment. agent/runtime/docker.ts implements it over the Docker Engine API (dockerode); the deploy gate
// (machines/deploy-gate.ts, driven by agent/workload.ts) only ever sees this interface.
// Everything a runtime creates carries the labels below, so an agent can find (and, after a restart, re-adopt)
// its containers by deployment id without any local bookkeeping.
// Imports types only.
import type { ComposeProject, PortMapping } from "../../compose/compose.ts";
import type { ImageRef, RegistryAuth } from "../../spec/images.ts";

export type { RegistryAuth };

/** Labels on every container, network and volume a runtime creates. */
export const LABELS = {
  deployment: "io.easyenclave.deployment",
  app: "io.easyenclave.app",
  service: "io.easyenclave.service",
  composeHash: "io.easyenclave.compose-hash",
  /** The agent that created it: agents sharing one engine (tests, a dev box) never judge each other's. */
  agent: "io.easyenclave.agent",
} as const;

export interface WorkloadSpec {
  deploymentId: string;
  app: string;
  project: ComposeProject;
  /** SHA-256 hex over the canonical compose and the build context (compose/compose.ts composeHash). */
  composeHash: string;
  /** Build context (a tar archive) for services with `build`; size-capped before it gets here. */
  context?: Uint8Array;
}

/** One container of a deployment as the engine reports it now. */
export interface RuntimeContainer {
  service: string;
  id: string;
  /** The engine's state: created, running, restarting, exited, dead, paused, removing. */
  state: string;
  /** Docker HEALTHCHECK status when the service has one, else null. */
  health: "starting" | "healthy" | "unhealthy" | null;
  exitCode: number | null;
  /** ISO 8601; unchanged while the container keeps running (re-adoption is checked with it). */
  startedAt: string | null;
  image: string;
  /** Image id (sha256:…) the container runs. */
  imageId: string;
  ports: PortMapping[];
  /** The container's address on the deployment's network, where the agent reaches its container ports. */
  ip: string | null;
}

/** A deployment found on the engine by its labels; inspect() gives its containers. */
export interface RuntimeDeployment {
  deploymentId: string;
  app: string;
  composeHash: string | null;
}

export interface LogLine {
  service: string;
  stream: "stdout" | "stderr";
  /** ISO 8601 from the engine's timestamps. */
  ts: string;
  text: string;
}

export interface LogOptions {
  /** Last N lines per container (default all). */
  tail?: number;
  /** Only lines at or after this time (ms since the epoch). */
  since?: number;
  follow?: boolean;
  /** Ends a follow. */
  signal?: AbortSignal;
}

export interface ContainerStats {
  service: string;
  id: string;
  cpu_percent: number;
  memory_bytes: number;
  memory_limit_bytes: number;
  network_rx_bytes: number;
  network_tx_bytes: number;
}

/** Bytes of one image pull so far, summed over its layers (as far as the engine reports sizes). */
export interface PullProgress {
  service: string;
  ref: string;
  done_bytes: number;
  total_bytes: number;
}

export interface PullOptions {
  signal?: AbortSignal;
  /** Credentials by registry host, opened by the agent for one deploy and never kept. */
  auth?: RegistryAuth;
  onProgress?: (p: PullProgress) => void;
  /** Retries after a transient failure and the backoff bounds (default: the runtime's own). */
  retry?: { retries: number; minTimeoutMs: number; maxTimeoutMs: number };
}

export interface WorkloadRuntime {
  /** Throws WorkloadError EE-WORKLOAD-ENGINE when the engine does not answer. */
  ping(): Promise<void>;
  /**
   * Pulls every `image` the engine lacks from its registry (a tag already present is not pulled again), with the
   * credentials for its host. Throws EE-WORKLOAD-IMAGE-MISSING / EE-WORKLOAD-DIGEST-MISMATCH /
   * EE-WORKLOAD-PULL-AUTH at once, EE-WORKLOAD-PULL-FAILED after transient failures were retried.
   */
  pull(spec: WorkloadSpec, opts?: PullOptions): Promise<void>;
  /**
   * Makes every service's image present: builds `build` services from spec.context, finds `image` services on the
   * engine. Returns each service's image resolved to its digest, in service order.
   * Throws EE-WORKLOAD-IMAGE-MISSING / EE-WORKLOAD-BUILD-FAILED.
   */
  prepare(spec: WorkloadSpec, signal?: AbortSignal): Promise<ImageRef[]>;
  /**
   * Creates the project's network and named volumes and creates and starts its containers in depends_on order.
   * Throws EE-WORKLOAD-PORT-CONFLICT / EE-WORKLOAD-START-FAILED (transient engine errors as EE-WORKLOAD-ENGINE,
   * which the caller may retry after remove()).
   */
  start(spec: WorkloadSpec, signal?: AbortSignal): Promise<RuntimeContainer[]>;
  /** The deployment's containers now; [] when it has none. */
  inspect(deploymentId: string): Promise<RuntimeContainer[]>;
  /** Stops and removes everything labelled with the deployment id. Idempotent. */
  remove(deploymentId: string): Promise<void>;
  /** Every deployment with anything labelled on the engine (this agent's only, when the runtime has an owner). */
  deployments(): Promise<RuntimeDeployment[]>;
  /**
   * The deployment's container logs, stdout and stderr demultiplexed, in time order per container.
   * Throws WorkloadError EE-WORKLOAD-NONE when the deployment has no containers.
   */
  logs(deploymentId: string, opts: LogOptions): AsyncIterable<LogLine>;
  stats(deploymentId: string): Promise<ContainerStats[]>;
}
