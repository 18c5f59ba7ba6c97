// Re-adoption at agent start: the deployment persisted in workload.json is picked up again (a running one with
// every service up keeps its containers untouched and gets a gate resumed in running; anything half done is
// removed and reported failed), and deployments labelled on the engine under any other id are removed as
// orphans. The rules are WorkloadManager.restore's (agent/workloads/types.ts). May import machines/ (types and
// reasonOf), spec/, lib/log (types) and the runtime port.

import { type ComposeProject, type ParseOptions, parseCompose } from "../../compose/compose.ts";
import type { Logger } from "../../lib/log.ts";
import { type GateResume, type Reason, reasonOf } from "../../machines/deploy-gate.ts";
import type { WorkloadRuntime } from "../runtime/runtime.ts";
import type { EngineCall } from "./engine-call.ts";
import { loadPersistedWorkload, type PersistedWorkload } from "./persisted.ts";
import { targetAddress } from "./probe.ts";
import type { Deployment, DeployRequest, StepReport, WorkloadStatus } from "./types.ts";

export interface RestoreDeps {
  runtime: WorkloadRuntime;
  engine: EngineCall;
  log: Logger;
  dataDir: string;
  rules: ParseOptions;
  now: () => number;
  /** Makes `dep` the current deployment (without a gate: it is over, or about to be removed). */
  adopt(dep: Deployment): void;
  publish(dep: Deployment, report: StepReport): void;
  /** Runs a re-adopted deployment under a gate resumed in running, as the current one. */
  launch(req: DeployRequest, project: ComposeProject, hash: string, resume: GateResume): Deployment;
  noteTarget(deploymentId: string, host: string | null): void;
}

export async function restoreWorkload(deps: RestoreDeps): Promise<WorkloadStatus | null> {
  const { log, runtime, engine, now } = deps;
  let record: PersistedWorkload | null;
  try {
    record = loadPersistedWorkload(deps.dataDir);
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      "ignoring an unreadable persisted workload; starting with none",
    );
    return null;
  }
  // A data dir without a record never deployed anything: nothing on the engine is this agent's to judge.
  if (!record) return null;
  const { request, status } = record;
  const id = status.deployment_id;
  const removeAll = (deploymentId: string) => removeDeployment(deps, deploymentId);
  await removeOrphans(deps, id);
  const dep: Deployment = { request, status, gate: null };
  deps.adopt(dep);
  const publishEnd = (
    step: "failed" | "stopped",
    since: number,
    reason: { code: string; message: string } | null,
  ) => {
    const { images } = status;
    deps.publish(dep, { step, since, images, code: reason?.code ?? null, message: reason?.message ?? null });
    return dep.status;
  };
  // Like the gate's failing state: the reason stays, a failed cleanup is noted as what may be left behind.
  const failAfterRemoving = async (reason: Reason) => {
    const failure = await removeAll(id);
    const message = failure ? `${reason.message} (cleanup failed: ${failure.message})` : reason.message;
    return publishEnd("failed", now(), { code: reason.code, message });
  };
  switch (status.step) {
    case "failed":
    case "stopped": {
      const reason = status.code ? { code: status.code, message: status.message ?? "" } : null;
      return publishEnd(status.step, status.since, reason);
    }
    case "stopping": {
      const failure = await removeAll(id);
      return publishEnd(failure ? "failed" : "stopped", now(), failure);
    }
    case "running":
      break;
    default:
      log.warn({ deployment_id: id, step: status.step }, "removing a deploy interrupted by an agent restart");
      return failAfterRemoving({
        code: "EE-WORKLOAD-INTERRUPTED",
        message: `the agent restarted while the deploy was ${status.step}`,
      });
  }
  let project: ComposeProject;
  try {
    project = parseCompose(request.compose, deps.rules);
  } catch (err) {
    // Only a changed policy (bind allowlist, published ports) refuses a compose accepted before.
    return failAfterRemoving(reasonOf(err));
  }
  const containers = await engine(id, "inspect containers", () => runtime.inspect(id));
  const down = project.services.flatMap((s) => {
    const own = containers.filter((c) => c.service === s.name);
    if (own.some((c) => c.state === "running")) return [];
    return [`${s.name} (${own[0]?.state ?? "missing"})`];
  });
  if (down.length > 0) {
    log.warn({ deployment_id: id, down }, "a workload stopped while the agent was away");
    return failAfterRemoving({
      code: "EE-WORKLOAD-EXITED",
      message: `services not running after an agent restart: ${down.join(", ")}`,
    });
  }
  // The addresses may have changed while the agent was away (a container restarted): found again here.
  deps.noteTarget(id, targetAddress(project, containers));
  log.info({ deployment_id: id, app: status.app }, "re-adopting the running workload");
  return deps.launch(request, project, status.compose_hash, {
    step: "running",
    since: status.since,
    images: status.images,
  }).status;
}

/** Removes the deployment from the engine; returns why that failed, or null. */
async function removeDeployment(deps: RestoreDeps, id: string): Promise<Reason | null> {
  try {
    await deps.engine(id, "remove the deployment", () => deps.runtime.remove(id));
    return null;
  } catch (err) {
    return reasonOf(err);
  }
}

// The agent owns its engine: a deployment labelled there that is not the persisted one was left by a crash
// (between creating and persisting, or after a cleanup that failed) and nobody will ever undeploy it.
async function removeOrphans(deps: RestoreDeps, keep: string): Promise<void> {
  const found = await deps.engine(keep, "list deployments", () => deps.runtime.deployments());
  for (const { deploymentId, app } of found) {
    if (deploymentId === keep) continue;
    deps.log.warn(
      { deployment_id: deploymentId, app },
      "removing an orphaned deployment found on the engine",
    );
    const failure = await removeDeployment(deps, deploymentId);
    if (failure)
      deps.log.error({ deployment_id: deploymentId, err: failure.message }, "could not remove an orphan");
  }
}
