// The WorkloadRuntime over the Docker Engine API (dockerode): one bridge network, named volumes and containers
// per deployment, all found again by their labels. Images come from the deployment's build context, the host, or
// are pulled from their registry (docker-pull.ts) or built (docker-build.ts) and resolved to their digests; what
// is created is named and shaped in docker-objects.ts, engine failures mapped in engine-error.ts.
// Imports dockerode, spec/ (compose types, images, errors), lib/log.ts and this folder.
import type { Readable } from "node:stream";
import Docker from "dockerode";
import type { ComposeService } from "../../compose/compose.ts";
import { type Logger, silentLogger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { ImageRef } from "../../spec/images.ts";
import { buildService } from "./docker-build.ts";
import { LogDecoder } from "./docker-logs.ts";
import { containerOptions, networkName, toRuntimeContainer, volumeName } from "./docker-objects.ts";
import { digestOf, pullImage } from "./docker-pull.ts";
import { engine, statusOf, tolerateGone, toWorkloadError } from "./engine-error.ts";
import { type ContainerLimits, limitsFor } from "./limits.ts";
import {
  type ContainerStats,
  LABELS,
  type LogLine,
  type LogOptions,
  type PullOptions,
  type RuntimeContainer,
  type RuntimeDeployment,
  type WorkloadRuntime,
  type WorkloadSpec,
} from "./runtime.ts";

/** Seconds a container gets between SIGTERM and SIGKILL on remove: undeploys must not hang on stubborn PIDs 1. */
const STOP_TIMEOUT_S = 2;

/** A listed container's service label, else its id. */
const serviceOf = (c: Docker.ContainerInfo): string => c.Labels[LABELS.service] ?? c.Id;

function cpuPercent(s: Docker.ContainerStats): number {
  const cpu = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats.cpu_usage?.total_usage ?? 0);
  const system = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  if (!(cpu > 0 && system > 0)) return 0;
  const cpus = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 1;
  return (cpu / system) * cpus * 100;
}

export interface DockerRuntimeOptions {
  docker?: Docker;
  socketPath?: string;
  log?: Logger;
  /** The agent id stamped on everything created (LABELS.agent); deployments() then lists only its own. */
  owner?: string;
  /** Memory, CPU and pid limits of every container (default: the `standard` preset). */
  limits?: ContainerLimits;
}

export class DockerRuntime implements WorkloadRuntime {
  readonly #docker: Docker;
  readonly #log: Logger;
  readonly #owner: string | undefined;
  readonly #limits: ContainerLimits;
  /** References pulled per deployment, removed with it. */
  readonly #pulls = new Map<string, string[]>();

  constructor(opts: DockerRuntimeOptions = {}) {
    this.#docker = opts.docker ?? new Docker(opts.socketPath ? { socketPath: opts.socketPath } : undefined);
    this.#log = opts.log ?? silentLogger;
    this.#owner = opts.owner;
    this.#limits = opts.limits ?? limitsFor("standard");
  }

  /** The labels of everything a deployment creates; `service` for containers and images. */
  #labels(spec: WorkloadSpec, service?: string): Record<string, string> {
    return {
      [LABELS.deployment]: spec.deploymentId,
      [LABELS.app]: spec.app,
      [LABELS.composeHash]: spec.composeHash,
      ...(service ? { [LABELS.service]: service } : {}),
      ...(this.#owner ? { [LABELS.agent]: this.#owner } : {}),
    };
  }

  async ping(): Promise<void> {
    await engine("the Docker engine does not answer", () => this.#docker.ping());
  }

  async pull(spec: WorkloadSpec, opts: PullOptions = {}): Promise<void> {
    const pulled = new Set<string>();
    for (const s of spec.project.services) {
      opts.signal?.throwIfAborted();
      const ref = s.image;
      // Only a missing image is pulled: a digest is immutable, and a tag already on the engine is used as it is
      // (compose's `pull_policy: missing`); the digest it resolves to is what the deployment reports and binds.
      if (s.build || ref === undefined || pulled.has(ref) || (await this.#present(ref))) continue;
      const started = Date.now();
      this.#pulls.set(spec.deploymentId, [...(this.#pulls.get(spec.deploymentId) ?? []), ref]);
      await pullImage(this.#docker, this.#log, s.name, ref, opts);
      pulled.add(ref);
      this.#log.info(
        { deployment: spec.deploymentId, service: s.name, ref, ms: Date.now() - started },
        "image pulled",
      );
    }
  }

  async prepare(spec: WorkloadSpec, signal?: AbortSignal): Promise<ImageRef[]> {
    const images: ImageRef[] = [];
    for (const s of spec.project.services) {
      signal?.throwIfAborted();
      images.push(
        s.build
          ? await buildService(this.#docker, this.#log, this.#labels(spec, s.name), spec, s, s.build, signal)
          : await this.#resolve(s),
      );
    }
    return images;
  }

  async start(spec: WorkloadSpec, signal?: AbortSignal): Promise<RuntimeContainer[]> {
    const id = spec.deploymentId;
    const labels = this.#labels(spec);
    await this.#ensureNetwork(id, labels);
    for (const v of spec.project.volumes) {
      // Creating an existing volume returns it, so a retried start reuses the data.
      await engine(`volume ${v}`, () =>
        this.#docker.createVolume({ Name: volumeName(id, v), Labels: labels }),
      );
    }
    for (const s of spec.project.services) {
      signal?.throwIfAborted();
      const what = `service ${s.name}`;
      const container = await engine(
        what,
        () =>
          this.#docker.createContainer(containerOptions(spec, s, this.#labels(spec, s.name), this.#limits)),
        "EE-WORKLOAD-START-FAILED",
      );
      await engine(what, () => container.start(), "EE-WORKLOAD-START-FAILED");
      this.#log.info({ deployment: id, service: s.name, container: container.id }, "container started");
    }
    return this.inspect(id);
  }

  async inspect(deploymentId: string): Promise<RuntimeContainer[]> {
    const listed = await this.#containers(deploymentId);
    const infos = await Promise.all(
      listed.map((c) =>
        this.#docker
          .getContainer(c.Id)
          .inspect()
          .catch((err) => {
            if (statusOf(err) === 404) return null;
            throw toWorkloadError(err, `container ${c.Id}`, "EE-WORKLOAD-ENGINE");
          }),
      ),
    );
    // Creation order is start order (depends_on); a container removed meanwhile drops out.
    return infos
      .filter((i): i is Docker.ContainerInspectInfo => i !== null)
      .sort((a, b) => (a.Created < b.Created ? -1 : a.Created > b.Created ? 1 : 0))
      .map(toRuntimeContainer);
  }

  async remove(deploymentId: string): Promise<void> {
    const filters = { label: [`${LABELS.deployment}=${deploymentId}`] };
    const containers = await this.#containers(deploymentId);
    await Promise.all(
      containers.map(async (c) => {
        const container = this.#docker.getContainer(c.Id);
        if (c.State === "running" || c.State === "restarting") {
          await tolerateGone(`stop ${c.Id}`, () => container.stop({ t: STOP_TIMEOUT_S }));
        }
        await tolerateGone(`remove ${c.Id}`, () => container.remove({ force: true, v: true }));
      }),
    );
    const networks = await engine("list networks", () => this.#docker.listNetworks({ filters }));
    const volumes = await engine("list volumes", () => this.#docker.listVolumes({ filters }));
    const images = await engine("list images", () => this.#docker.listImages({ filters }));
    await Promise.all([
      ...networks.map((n) => tolerateGone(`network ${n.Name}`, () => this.#docker.getNetwork(n.Id).remove())),
      ...(volumes.Volumes ?? []).map((v) =>
        tolerateGone(`volume ${v.Name}`, () => this.#docker.getVolume(v.Name).remove()),
      ),
    ]);
    // Images built for the deployment go with it; an image still used elsewhere (409) stays.
    for (const image of images) {
      await tolerateGone(`image ${image.Id}`, () => this.#docker.getImage(image.Id).remove({ force: true }));
    }
    // Images this runtime pulled for the deployment go too (only the reference: another tag of the same image
    // stays, and an image a container still uses answers 409 and stays).
    for (const ref of this.#pulls.get(deploymentId) ?? []) {
      await tolerateGone(`image ${ref}`, () => this.#docker.getImage(ref).remove());
    }
    this.#pulls.delete(deploymentId);
    this.#log.info({ deployment: deploymentId, containers: containers.length }, "deployment removed");
  }

  async deployments(): Promise<RuntimeDeployment[]> {
    const filters = {
      label: [LABELS.deployment, ...(this.#owner ? [`${LABELS.agent}=${this.#owner}`] : [])],
    };
    const [containers, networks, volumes] = await Promise.all([
      engine("list containers", () => this.#docker.listContainers({ all: true, filters })),
      engine("list networks", () => this.#docker.listNetworks({ filters })),
      engine("list volumes", () => this.#docker.listVolumes({ filters })),
    ]);
    const labelSets = [
      ...containers.map((c) => c.Labels),
      ...networks.map((n) => n.Labels ?? {}),
      ...(volumes.Volumes ?? []).map((v) => v.Labels ?? {}),
    ];
    const found = new Map<string, RuntimeDeployment>();
    for (const labels of labelSets) {
      const id = labels[LABELS.deployment];
      if (!id || found.has(id)) continue;
      const app = labels[LABELS.app] ?? "";
      found.set(id, { deploymentId: id, app, composeHash: labels[LABELS.composeHash] ?? null });
    }
    return [...found.values()];
  }

  async *logs(deploymentId: string, opts: LogOptions): AsyncIterable<LogLine> {
    const containers = await this.#containers(deploymentId);
    if (containers.length === 0) {
      throw new WorkloadError("EE-WORKLOAD-NONE", `deployment ${deploymentId} has no containers`);
    }
    const query: Docker.ContainerLogsOptions = { stdout: true, stderr: true, timestamps: true };
    if (opts.tail !== undefined) query.tail = opts.tail;
    if (opts.since !== undefined) query.since = Math.floor(opts.since / 1000);
    // The engine's `since` has whole seconds; the rest is filtered here.
    const sinceIso =
      opts.since === undefined ? "" : new Date(opts.since).toISOString().replace("Z", "000000Z");
    const keep = (line: LogLine) => line.ts >= sinceIso;

    if (!opts.follow) {
      const lines: LogLine[] = [];
      for (const c of containers) {
        const raw = await engine(`logs of ${serviceOf(c)}`, () =>
          this.#docker.getContainer(c.Id).logs({ ...query, follow: false }),
        );
        const decoder = new LogDecoder(serviceOf(c), (line) => keep(line) && lines.push(line));
        decoder.push(raw);
        decoder.end();
      }
      // A stable sort keeps each container's own order for equal timestamps.
      yield* lines.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
      return;
    }
    yield* this.#follow(containers, query, keep, opts.signal);
  }

  async stats(deploymentId: string): Promise<ContainerStats[]> {
    const running = (await this.#containers(deploymentId)).filter((c) => c.State === "running");
    return Promise.all(
      running.map(async (c) => {
        const s = await engine(`stats of ${c.Id}`, () =>
          this.#docker.getContainer(c.Id).stats({ stream: false }),
        );
        const mem = s.memory_stats;
        const inactive = mem.stats?.inactive_file ?? mem.stats?.total_inactive_file ?? 0;
        const nets = Object.values(s.networks ?? {});
        return {
          service: serviceOf(c),
          id: c.Id,
          cpu_percent: cpuPercent(s),
          memory_bytes: Math.max(0, (mem.usage ?? 0) - inactive),
          memory_limit_bytes: mem.limit ?? 0,
          network_rx_bytes: nets.reduce((n, x) => n + x.rx_bytes, 0),
          network_tx_bytes: nets.reduce((n, x) => n + x.tx_bytes, 0),
        };
      }),
    );
  }

  #containers(deploymentId: string): Promise<Docker.ContainerInfo[]> {
    return engine("list containers", () =>
      this.#docker.listContainers({
        all: true,
        filters: { label: [`${LABELS.deployment}=${deploymentId}`] },
      }),
    );
  }

  async #ensureNetwork(id: string, labels: Record<string, string>): Promise<void> {
    const name = networkName(id);
    const existing = await engine("list networks", () =>
      this.#docker.listNetworks({ filters: { name: [name], label: [`${LABELS.deployment}=${id}`] } }),
    );
    // The name filter matches substrings; only an exact name is ours to reuse.
    if (existing.some((n) => n.Name === name)) return;
    await engine(
      `network ${name}`,
      () =>
        this.#docker.createNetwork({ Name: name, Driver: "bridge", Labels: labels, CheckDuplicate: true }),
      "EE-WORKLOAD-START-FAILED",
    );
  }

  /** The image a service runs, resolved to its digest (see spec/images.ts ImageRef). */
  async #resolve(s: ComposeService): Promise<ImageRef> {
    const ref = s.image!;
    try {
      const info = await this.#docker.getImage(ref).inspect();
      return { service: s.name, ref, digest: digestOf(ref, info) };
    } catch (err) {
      if (statusOf(err) !== 404) throw toWorkloadError(err, `image ${ref}`, "EE-WORKLOAD-ENGINE");
      throw new WorkloadError(
        "EE-WORKLOAD-IMAGE-MISSING",
        `service ${s.name}: image ${ref} is not on this host and was not pulled`,
      );
    }
  }

  async #present(ref: string): Promise<boolean> {
    try {
      await this.#docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw toWorkloadError(err, `image ${ref}`, "EE-WORKLOAD-ENGINE");
    }
  }

  /** Interleaves the containers' followed logs as lines arrive, until every stream ends or `signal` aborts. */
  async *#follow(
    containers: Docker.ContainerInfo[],
    query: Docker.ContainerLogsOptions,
    keep: (line: LogLine) => boolean,
    signal?: AbortSignal,
  ): AsyncIterable<LogLine> {
    const queue: LogLine[] = [];
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    let open = containers.length;
    const streams: Readable[] = [];
    const stop = () => {
      for (const s of streams) s.destroy();
      open = 0;
      notify();
    };
    signal?.addEventListener("abort", stop, { once: true });
    try {
      for (const c of containers) {
        const stream = (await engine(`logs of ${serviceOf(c)}`, () =>
          this.#docker.getContainer(c.Id).logs({ ...query, follow: true }),
        )) as Readable;
        streams.push(stream);
        const decoder = new LogDecoder(serviceOf(c), (line) => {
          if (keep(line)) queue.push(line);
        });
        stream.on("data", (chunk: Buffer) => {
          decoder.push(chunk);
          notify();
        });
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          decoder.end();
          open = Math.max(0, open - 1);
          notify();
        };
        stream.once("end", end);
        stream.once("error", end);
      }
      if (signal?.aborted) stop();
      while (open > 0 || queue.length > 0) {
        if (signal?.aborted) return;
        const line = queue.shift();
        if (line) yield line;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      for (const s of streams) s.destroy();
    }
  }
}
