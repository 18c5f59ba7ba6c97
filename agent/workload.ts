// The agent's workload manager: one deployment at a time, each run by a deploy-gate actor
// (machines/deploy-gate.ts) over the WorkloadRuntime port; its status is what the HTTP API, the CP link and the
// state snapshot report.
import type { HealthSpec, WorkloadStep } from "../spec/protocol.ts";
import type { ContainerStats, LogLine, LogOptions } from "./runtime/runtime.ts";

export interface WorkloadStatus {
  deployment_id: string;
  app: string;
  step: WorkloadStep;
  /** SHA-256 hex over the canonical compose and the build context. */
  compose_hash: string;
  /** Image id by service, once prepared. */
  images: Record<string, string>;
  /** Set when step is failed: a stable EE-COMPOSE-* or EE-WORKLOAD-* code and what happened. */
  code?: string;
  message?: string;
  /** When the current step began, ms since the epoch. */
  since: number;
  health: HealthSpec | null;
}

export interface DeployRequest {
  deployment_id: string;
  app: string;
  compose: string;
  context?: Uint8Array;
  health?: HealthSpec;
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
   * EE-WORKLOAD-BUSY when another deployment is preparing, starting, gating, running or stopping. Redeploying the
   * same deployment_id returns its current status (idempotent for retried dispatches).
   */
  deploy(req: DeployRequest): WorkloadStatus;
  /** Starts stopping the deployment. Throws NotFoundError when it is not the current one. Idempotent. */
  undeploy(deploymentId: string): WorkloadStatus;
  /** Called on every step change; returns the unsubscribe function. */
  subscribe(listener: (status: WorkloadStatus) => void): () => void;
  /** Throws WorkloadError EE-WORKLOAD-NONE when there are no containers. */
  logs(opts: LogOptions): AsyncIterable<LogLine>;
  stats(): Promise<{ containers: ContainerStats[]; host: HostStats }>;
  /** Where the HTTP API proxies other paths: the health port, else the first published TCP port; null when not running. */
  proxyTarget(): { host: string; port: number } | null;
  /** Stops the gate actors; running containers are left running. */
  stop(): Promise<void>;
}
