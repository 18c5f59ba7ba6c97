// An in-memory WorkloadRuntime for unit tests of what sits above the port (the workload manager, the deploy gate's
// wiring): no engine, no images, no processes. It keeps the adapter's observable contract, which
// test/agent/workload-runtime.contract.ts checks against both it and DockerRuntime: labels by deployment and
// owner, start order, one address per container on the deployment's network, idempotent remove, image presence
// and digests, host port clashes, and the EE-WORKLOAD-* codes. A service's command is "run" as a tiny shell:
// `sh -c "a; b"` (or the command words) split on `;` and `&&`; `echo TEXT` logs a stdout line, `exit N` ends the
// container with code N, and a script with neither `sleep`, `exec` nor `httpd` in it ends with code 0.
import { createHash, randomBytes } from "node:crypto";
import type {
  ContainerStats,
  LogLine,
  LogOptions,
  PullOptions,
  RuntimeContainer,
  RuntimeDeployment,
  WorkloadRuntime,
  WorkloadSpec,
} from "../../agent/runtime/runtime.ts";
import type { ComposeService } from "../../compose/compose.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { ImageRef } from "../../spec/images.ts";

interface FakeContainer extends RuntimeContainer {
  deploymentId: string;
  app: string;
  composeHash: string;
  owner: string | undefined;
  lines: LogLine[];
}

/** What several FakeRuntimes share, as agents share one Docker engine: images and containers. */
export class FakeEngine {
  /** Images on the host: reference → digest. */
  readonly images = new Map<string, string>();
  /** Images a pull finds in their registry: reference → digest. */
  readonly registry = new Map<string, string>();
  readonly containers: FakeContainer[] = [];
  /** Set to make every call fail as an engine that does not answer. */
  down = false;
  #nextIp = 2;

  nextIp(): string {
    const n = this.#nextIp++;
    return `10.99.${Math.floor(n / 250)}.${n % 250}`;
  }
}

export const fakeDigest = (seed: string): string =>
  `sha256:${createHash("sha256").update(seed).digest("hex")}`;

export class FakeRuntime implements WorkloadRuntime {
  readonly engine: FakeEngine;
  readonly #owner: string | undefined;

  constructor(opts: { engine?: FakeEngine; owner?: string } = {}) {
    this.engine = opts.engine ?? new FakeEngine();
    this.#owner = opts.owner;
  }

  async ping(): Promise<void> {
    this.#answer();
  }

  async pull(spec: WorkloadSpec, opts: PullOptions = {}): Promise<void> {
    this.#answer();
    for (const s of spec.project.services) {
      opts.signal?.throwIfAborted();
      const ref = s.image;
      if (s.build || ref === undefined || this.engine.images.has(ref)) continue;
      const digest = this.engine.registry.get(ref);
      if (!digest)
        throw new WorkloadError("EE-WORKLOAD-IMAGE-MISSING", `service ${s.name}: ${ref} not found`);
      opts.onProgress?.({ service: s.name, ref, done_bytes: 1, total_bytes: 1 });
      this.engine.images.set(ref, digest);
    }
  }

  async prepare(spec: WorkloadSpec, signal?: AbortSignal): Promise<ImageRef[]> {
    this.#answer();
    return spec.project.services.map((s) => {
      signal?.throwIfAborted();
      if (s.build) {
        if (!spec.context)
          throw new WorkloadError(
            "EE-WORKLOAD-BUILD-FAILED",
            `service ${s.name}: the service needs a build context, and the deployment has none`,
          );
        const ref = s.image ?? `ee-local/${spec.deploymentId}-${s.name}:latest`;
        const digest = fakeDigest(Buffer.from(spec.context).toString("base64"));
        this.engine.images.set(ref, digest);
        return { service: s.name, ref, digest };
      }
      const ref = s.image!;
      const digest = this.engine.images.get(ref);
      if (!digest)
        throw new WorkloadError(
          "EE-WORKLOAD-IMAGE-MISSING",
          `service ${s.name}: image ${ref} is not on this host and was not pulled`,
        );
      return { service: s.name, ref, digest };
    });
  }

  async start(spec: WorkloadSpec, signal?: AbortSignal): Promise<RuntimeContainer[]> {
    this.#answer();
    const id = spec.deploymentId;
    for (const s of spec.project.services) {
      signal?.throwIfAborted();
      if (this.engine.containers.some((c) => c.deploymentId === id && c.service === s.name)) continue;
      const taken = s.ports.find((p) =>
        this.engine.containers.some(
          (c) => c.state === "running" && c.ports.some((q) => q.host_port === p.host_port),
        ),
      );
      if (taken)
        throw new WorkloadError(
          "EE-WORKLOAD-PORT-CONFLICT",
          `service ${s.name}: host port ${taken.host_ip}:${taken.host_port} is already in use`,
        );
      const ref = s.image ?? `ee-local/${id}-${s.name}:latest`;
      this.engine.containers.push({
        ...run(s),
        service: s.name,
        id: randomBytes(32).toString("hex"),
        health: null,
        startedAt: new Date().toISOString(),
        image: ref,
        imageId: this.engine.images.get(ref) ?? fakeDigest(ref),
        ports: s.ports,
        ip: this.engine.nextIp(),
        deploymentId: id,
        app: spec.app,
        composeHash: spec.composeHash,
        owner: this.#owner,
      });
    }
    return this.inspect(id);
  }

  async inspect(deploymentId: string): Promise<RuntimeContainer[]> {
    this.#answer();
    return this.#own(deploymentId).map(
      ({ deploymentId: _d, app: _a, composeHash: _h, owner: _o, lines: _l, ...c }) => c,
    );
  }

  async remove(deploymentId: string): Promise<void> {
    this.#answer();
    const { containers } = this.engine;
    for (let i = containers.length - 1; i >= 0; i--)
      if (containers[i]!.deploymentId === deploymentId) containers.splice(i, 1);
  }

  async deployments(): Promise<RuntimeDeployment[]> {
    this.#answer();
    const found = new Map<string, RuntimeDeployment>();
    for (const c of this.engine.containers) {
      if (this.#owner !== undefined && c.owner !== this.#owner) continue;
      found.set(c.deploymentId, { deploymentId: c.deploymentId, app: c.app, composeHash: c.composeHash });
    }
    return [...found.values()];
  }

  async *logs(deploymentId: string, opts: LogOptions): AsyncIterable<LogLine> {
    this.#answer();
    const own = this.#own(deploymentId);
    if (own.length === 0)
      throw new WorkloadError("EE-WORKLOAD-NONE", `deployment ${deploymentId} has no containers`);
    for (const c of own) {
      const since = opts.since ?? 0;
      const lines = c.lines.filter((l) => Date.parse(l.ts) >= since);
      yield* opts.tail === undefined ? lines : lines.slice(-opts.tail);
    }
    // Nothing is ever written after start: a follow only waits for its end.
    if (opts.follow && opts.signal && !opts.signal.aborted)
      await new Promise((resolve) => opts.signal!.addEventListener("abort", resolve, { once: true }));
  }

  async stats(deploymentId: string): Promise<ContainerStats[]> {
    this.#answer();
    return this.#own(deploymentId)
      .filter((c) => c.state === "running")
      .map((c) => ({
        service: c.service,
        id: c.id,
        cpu_percent: 0,
        memory_bytes: 1 << 20,
        memory_limit_bytes: 1 << 30,
        network_rx_bytes: 0,
        network_tx_bytes: 0,
      }));
  }

  #own(deploymentId: string): FakeContainer[] {
    return this.engine.containers.filter((c) => c.deploymentId === deploymentId);
  }

  #answer(): void {
    if (this.engine.down) throw new WorkloadError("EE-WORKLOAD-ENGINE", "the fake engine is down");
  }
}

/** What the service's command does in the fake: its log lines and whether (and how) it ended. */
function run(s: ComposeService): Pick<FakeContainer, "state" | "exitCode" | "lines"> {
  const words = [...(s.entrypoint ?? []), ...(s.command ?? [])];
  const script = words[0] === "sh" && words[1] === "-c" ? (words[2] ?? "") : words.join(" ");
  const lines: LogLine[] = [];
  const ts = new Date().toISOString();
  for (const part of script.split(/;|&&/).map((p) => p.trim())) {
    const echo = /^echo\s+(.*)$/.exec(part);
    if (echo)
      lines.push({ service: s.name, stream: "stdout", ts, text: echo[1]!.replace(/^["']|["']$/g, "") });
    const exit = /^exit\s+(\d+)$/.exec(part);
    if (exit) return { state: "exited", exitCode: Number(exit[1]), lines };
  }
  const stays = words.length === 0 || /\b(sleep|exec|httpd)\b/.test(script);
  return stays ? { state: "running", exitCode: null, lines } : { state: "exited", exitCode: 0, lines };
}
