// Where the agent's proxy forwards a running deployment's requests, and how many it has in flight there. A target
// is found by the health probe (or by restore) and looked up again in the background every TARGET_REFRESH_MS (a
// restarted container may get a new address); each forwarded request is held until it finishes, so an update
// stops the old deployment only once its requests have drained (drained()). May import spec/ types and the
// runtime port's types.

import type { ComposeProject } from "../../compose/compose.ts";
import type { Logger } from "../../lib/log.ts";
import type { ProxyTarget } from "../proxy.ts";
import type { WorkloadRuntime } from "../runtime/runtime.ts";
import { targetAddress } from "./probe.ts";
import type { Deployment } from "./types.ts";

/** A container may get a new address when it restarts: the proxy's target is looked up again this often. */
const TARGET_REFRESH_MS = 5000;

export class ProxyTargets {
  /** The proxy's target of each deployment with a health spec, by deployment id. */
  readonly #targets = new Map<string, { at: number; host: string | null; refreshing: boolean }>();
  /** Requests the proxy has forwarded and not finished, by deployment id. */
  readonly #inflight = new Map<string, number>();
  /** Who waits for a deployment's in-flight requests to reach none, by deployment id. */
  readonly #drainWaiters = new Map<string, Set<() => void>>();

  readonly #runtime: WorkloadRuntime;
  readonly #log: Logger;

  constructor(runtime: WorkloadRuntime, log: Logger) {
    this.#runtime = runtime;
    this.#log = log;
  }

  note(deploymentId: string, host: string | null): void {
    this.#targets.set(deploymentId, { at: Date.now(), host, refreshing: false });
  }

  forget(deploymentId: string): void {
    this.#targets.delete(deploymentId);
  }

  /** The proxy's target of a running deployment; null when it has none (yet). */
  of(dep: Deployment): ProxyTarget | null {
    if (dep.status.step !== "running" || !dep.gate) return null;
    const { health } = dep.request;
    const id = dep.request.deployment_id;
    const held = { hold: () => this.#hold(id) };
    if (health) {
      const target = this.#targets.get(id);
      if (!target) return null;
      if (Date.now() - target.at >= TARGET_REFRESH_MS && !target.refreshing)
        this.#refresh(id, dep.gate.project);
      return target.host === null ? null : { host: target.host, port: health.port, ...held };
    }
    const published = dep.gate.project.services.flatMap((s) => s.ports).find((p) => p.protocol === "tcp");
    if (!published) return null;
    return { host: "127.0.0.1", port: published.host_port, ...held };
  }

  /** Resolves once deployment `id` has no request in flight, or after timeoutMs whatever is left. */
  drained(id: string, timeoutMs: number): Promise<void> {
    if ((this.#inflight.get(id) ?? 0) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#drainWaiters.get(id) ?? new Set();
      this.#drainWaiters.set(id, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#drainWaiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      waiters.add(done);
    });
  }

  /** Counts one proxied request to deployment `id` until the returned release is called (once). */
  #hold(id: string): () => void {
    this.#inflight.set(id, (this.#inflight.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#inflight.get(id) ?? 1) - 1;
      if (n > 0) {
        this.#inflight.set(id, n);
        return;
      }
      this.#inflight.delete(id);
      for (const done of [...(this.#drainWaiters.get(id) ?? [])]) done();
    };
  }

  #refresh(id: string, project: ComposeProject): void {
    const known = this.#targets.get(id);
    if (known) known.refreshing = true;
    this.#runtime.inspect(id).then(
      (containers) => {
        if (this.#targets.has(id)) this.note(id, targetAddress(project, containers));
      },
      (err) => {
        this.#log.warn(
          { deployment_id: id, err: (err as Error).message },
          "could not look up the proxy target",
        );
        const t = this.#targets.get(id);
        if (t) this.#targets.set(id, { ...t, at: Date.now(), refreshing: false });
      },
    );
  }
}
