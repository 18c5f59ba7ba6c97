// The supported Compose subset, shared by the CP (early 400s, preflight) and the agent (the truth: it runs it):
// parse (YAML), validate (refusing unsupported keys by name), canonicalize and hash. Pure: imports spec/errors.ts
// and the yaml package, no I/O.

/** A published port: host_ip defaults to 127.0.0.1 so workloads are reached through the agent's proxy. */
export interface PortMapping {
  host_ip: string;
  host_port: number;
  container_port: number;
  protocol: "tcp" | "udp";
}

export type VolumeMount =
  /** A named volume of this project; created per deployment under the engine's volume store. */
  | { type: "volume"; source: string; target: string; read_only: boolean }
  /** A host path; allowed only under the agent's bind allowlist. */
  | { type: "bind"; source: string; target: string; read_only: boolean };

export interface ComposeHealthcheck {
  /** Docker's form: ["CMD", ...] or ["CMD-SHELL", "..."], or ["NONE"] to disable. */
  test: string[];
  interval_ms: number;
  timeout_ms: number;
  retries: number;
  start_period_ms: number;
}

export interface ComposeService {
  name: string;
  image?: string;
  /** Path of the build inside the deployment's build context, and the Dockerfile relative to it. */
  build?: { context: string; dockerfile: string };
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  ports: PortMapping[];
  volumes: VolumeMount[];
  healthcheck?: ComposeHealthcheck;
  restart: "no" | "always" | "on-failure" | "unless-stopped";
  depends_on: string[];
}

export interface ComposeProject {
  /** In start order: every service after the services it depends on. */
  services: ComposeService[];
  /** Named volumes the project declares. */
  volumes: string[];
}
