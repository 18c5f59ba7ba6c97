// What the Docker runtime creates on the engine and how it reads back: the names of a deployment's network,
// volumes, containers and local images, a service's container create options (limits, no-new-privileges,
// loopback-only ports, its alias on the deployment's network), and an inspected container as the port's
// RuntimeContainer. May import dockerode (types), spec/ (compose types) and this folder.
import type Docker from "dockerode";
import type { ComposeService, PortMapping } from "../../compose/compose.ts";
import type { ContainerLimits } from "./limits.ts";
import { LABELS, type RuntimeContainer, type WorkloadSpec } from "./runtime.ts";

const NEVER_STARTED = "0001-01-01T00:00:00Z";

export const networkName = (deploymentId: string): string => `ee-${deploymentId}`;
export const volumeName = (deploymentId: string, volume: string): string => `ee-${deploymentId}-${volume}`;
export const containerName = (deploymentId: string, service: string): string =>
  `ee-${deploymentId}-${service}`;
/** The tag a service's image has: its own `image` or, for a build without one, a local tag. */
export const imageRef = (deploymentId: string, s: ComposeService): string =>
  s.image ?? `ee-local/${deploymentId}-${s.name}:latest`;

export const portKey = (p: PortMapping): string => `${p.container_port}/${p.protocol}`;

export function portsOf(
  bindings: Record<string, { HostIp?: string; HostPort?: string }[] | null> | undefined,
) {
  const ports: PortMapping[] = [];
  for (const [key, hosts] of Object.entries(bindings ?? {})) {
    const [container, proto] = key.split("/");
    for (const h of hosts ?? []) {
      ports.push({
        host_ip: h.HostIp || "0.0.0.0",
        host_port: Number(h.HostPort),
        container_port: Number(container),
        protocol: proto === "udp" ? "udp" : "tcp",
      });
    }
  }
  return ports;
}

export function toRuntimeContainer(info: Docker.ContainerInspectInfo): RuntimeContainer {
  const state = info.State;
  const deployment = info.Config.Labels?.[LABELS.deployment];
  const ip = deployment ? info.NetworkSettings.Networks?.[networkName(deployment)]?.IPAddress : undefined;
  const health = state.Health?.Status;
  const exited = state.Status === "exited" || state.Status === "dead";
  return {
    service: info.Config.Labels?.[LABELS.service] ?? info.Name.replace(/^\//, ""),
    id: info.Id,
    state: state.Status,
    health: health === "starting" || health === "healthy" || health === "unhealthy" ? health : null,
    exitCode: exited ? state.ExitCode : null,
    startedAt: state.StartedAt && state.StartedAt !== NEVER_STARTED ? state.StartedAt : null,
    image: info.Config.Image,
    imageId: info.Image,
    ports: portsOf(info.HostConfig.PortBindings),
    ip: ip || null,
  };
}

/** The engine's create options of service `s`: labels, limits, loopback-only ports, its network alias. */
export function containerOptions(
  spec: WorkloadSpec,
  s: ComposeService,
  labels: Record<string, string>,
  limits: ContainerLimits,
) {
  const id = spec.deploymentId;
  const network = networkName(id);
  const hc = s.healthcheck;
  const ms = (n: number) => n * 1_000_000;
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  // Loopback only whatever the mapping says: the agent's proxy is the one way in from outside the TD.
  for (const p of s.ports) {
    portBindings[portKey(p)] = [
      ...(portBindings[portKey(p)] ?? []),
      { HostIp: "127.0.0.1", HostPort: `${p.host_port}` },
    ];
  }
  return {
    name: containerName(id, s.name),
    Image: imageRef(id, s),
    Labels: labels,
    Cmd: s.command,
    Entrypoint: s.entrypoint,
    Env: Object.entries(s.environment).map(([k, v]) => `${k}=${v}`),
    WorkingDir: s.working_dir,
    User: s.user,
    Tty: false,
    ExposedPorts: Object.fromEntries(s.ports.map((p) => [portKey(p), {}])),
    Healthcheck: hc && {
      Test: hc.test,
      Interval: ms(hc.interval_ms),
      Timeout: ms(hc.timeout_ms),
      Retries: hc.retries,
      StartPeriod: ms(hc.start_period_ms),
    },
    HostConfig: {
      ...limits,
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: s.read_only === true,
      NetworkMode: network,
      RestartPolicy: { Name: s.restart },
      PortBindings: portBindings,
      Mounts: s.volumes.map((v) => ({
        Type: v.type,
        Source: v.type === "volume" ? volumeName(id, v.source) : v.source,
        Target: v.target,
        ReadOnly: v.read_only,
      })),
    },
    NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [s.name] } } },
  };
}
