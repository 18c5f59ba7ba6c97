// The deploy gate's probe: is the deployment healthy yet? An HTTP health spec is probed on the target service's
// container address; without one, Docker health checks decide; without those, every container must have run for
// the settle period. A container gone for good (restart "no", exited) fails at once instead of at the deadline.
// Also where the proxy's target service and address are decided. May import spec/, node:http and the runtime
// port's types.
import { request } from "node:http";
import type { ComposeProject } from "../../compose/compose.ts";
import type { ProbeResult } from "../../machines/deploy-gate.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { HealthSpec } from "../../spec/protocol.ts";
import type { RuntimeContainer, WorkloadRuntime, WorkloadSpec } from "../runtime/runtime.ts";
import type { EngineCall } from "./engine-call.ts";

/** One HTTP health probe may take this long before it counts as not healthy yet. */
const PROBE_TIMEOUT_MS = 2000;

export interface ProbeDeps {
  runtime: WorkloadRuntime;
  engine: EngineCall;
  now: () => number;
  /** Without a health spec or Docker health checks: how long every container must have run. */
  settleMs: number;
  /** Told the address a health probe reached, which is where the proxy forwards to. */
  noteTarget: (deploymentId: string, host: string | null) => void;
}

export type Probe = (
  spec: WorkloadSpec,
  health: HealthSpec | null,
  signal: AbortSignal,
) => Promise<ProbeResult>;

export function createProbe(deps: ProbeDeps): Probe {
  const { runtime, engine, now, settleMs } = deps;
  return async (spec, health, signal) => {
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
      deps.noteTarget(spec.deploymentId, host);
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
export function targetAddress(project: ComposeProject, containers: RuntimeContainer[]): string | null {
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
