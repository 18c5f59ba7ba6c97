// Update in place: a deploy naming the running deployment as `replaces` is gated beside it (the incoming slot);
// once it runs, one reference swap makes it the deployment served, reported and persisted, and the old one
// (retiring) is stopped after the requests the proxy already forwarded to it have finished or the drain times
// out. A new one that fails only leaves its slot; the old one keeps serving untouched. May import spec/errors.
import type { Logger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { ProxyTargets } from "./proxy-targets.ts";
import type { Deployment, DeployRequest, Slots } from "./types.ts";

/** After an update's switch: the longest the old deployment waits for its proxied requests to finish. */
const DRAIN_TIMEOUT_MS = 10_000;

/** Throws EE-WORKLOAD-BUSY unless `req.replaces` is the running deployment and no other update is under way. */
export function checkUpdate(slots: Slots, req: DeployRequest & { replaces: string }): void {
  const { current, incoming, retiring } = slots;
  const serving = current?.request.deployment_id === req.replaces && current.status.step === "running";
  if (serving && !incoming && !retiring) return;
  throw new WorkloadError(
    "EE-WORKLOAD-BUSY",
    serving
      ? `an update of deployment ${req.replaces} is already under way`
      : `deployment ${req.replaces} is not the running deployment on this agent`,
  );
}

/**
 * Moves the slots along after `dep` published a step: an incoming one that runs is switched to, one that ended
 * leaves its slot, and so does a retiring one once stopped (or failed).
 */
export function followUpdate(slots: Slots, dep: Deployment, targets: ProxyTargets, log: Logger): void {
  const { step, deployment_id } = dep.status;
  const ended = step === "failed" || step === "stopped";
  if (dep === slots.incoming) {
    if (step === "running") switchTo(slots, dep, targets, log);
    else if (ended) {
      slots.incoming = null;
      targets.forget(deployment_id);
    }
  } else if (dep === slots.retiring && ended) {
    slots.retiring = null;
    targets.forget(deployment_id);
  }
}

/**
 * The update's switch: one reference swap makes the new deployment the one served, reported and persisted;
 * the old one is stopped once the requests already forwarded to it have finished (or the drain times out).
 */
function switchTo(slots: Slots, dep: Deployment, targets: ProxyTargets, log: Logger): void {
  const old = slots.current;
  slots.current = dep;
  slots.incoming = null;
  // An old one that failed meanwhile has removed itself already: nothing to drain or stop.
  if (old?.status.step !== "running") return;
  slots.retiring = old;
  const id = old.request.deployment_id;
  log.info(
    { deployment_id: dep.request.deployment_id, replaces: id },
    "update switched; draining the old one",
  );
  // Resolves in a later microtask at the earliest: listeners (the CP link) hear the new one running (this
  // publish) before the old one stopping.
  void targets.drained(id, DRAIN_TIMEOUT_MS).then(() => old.gate?.actor.send({ type: "UNDEPLOY" }));
}
