// The deployment machine's effects, provided once per coordinator: every status change is saved (written behind)
// and logged as an event, the agent's session actor hears how its deployment ended up, an update's new deployment
// turning healthy undeploys the one it replaces, and an undeploy is sent to the agent.
// Imports machines/deployment and this folder.
import {
  type DeploymentContext,
  type DeploymentStatus,
  deploymentMachine,
} from "../../machines/deployment.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";
import type { DeploymentsCore } from "./live.ts";

export function provideDeploymentEffects(core: DeploymentsCore) {
  const { live, store, events, log, supervisor, now, commands } = core;
  const sync = (ctx: DeploymentContext, status: DeploymentStatus): DeploymentRow | undefined => {
    const one = live.get(ctx.deploymentId);
    if (!one) return undefined;
    Object.assign(one.row, {
      status,
      code: ctx.code,
      message: ctx.message,
      compose_hash: ctx.composeHash ?? one.row.compose_hash,
      images: ctx.images,
      progress: ctx.progress,
      updated_at: ctx.updatedAt,
    });
    return one.row;
  };
  const persist = (context: DeploymentContext, status: DeploymentStatus) => {
    const was = live.get(context.deploymentId)?.row.status;
    const row = sync(context, status);
    if (!row) return;
    // Changes only: an undeploy's steps repeat its status, a resumed deployment re-enters its stored one.
    if (was !== status) {
      const fields = {
        deployment_id: row.deployment_id,
        app: row.app,
        agent_id: row.agent_id,
        code: row.code,
      };
      if (status === "failed") log.warn({ ...fields, message: row.message }, "deployment failed");
      else log.info(fields, `deployment ${status}`);
    }
    // Written behind, in the tick's batch; a failing batch is logged by the store.
    store.save(row);
    events.append({
      at: now(),
      kind: `deployment.${status}`,
      agent_id: row.agent_id,
      data: { deployment_id: row.deployment_id, app: row.app, ...(row.code ? { code: row.code } : {}) },
    });
  };
  /** Tells the agent's session actor how its deployment ended up. */
  const toSession = (
    ctx: DeploymentContext,
    event: { type: "DEPLOY_HEALTHY" | "UNDEPLOYED" } | { type: "DEPLOY_FAILED"; reason: string },
  ) => supervisor.send(ctx.agentId, { ...event, deploymentId: ctx.deploymentId, at: now() });
  /**
   * An update's new deployment `id` is healthy: the agent has switched its proxy to it and stops the old one,
   * whose record ends undeployed with replaced_by.
   */
  const replaced = (id: string) => {
    const oldId = live.get(id)?.row.request.replaces;
    const old = oldId === undefined ? undefined : live.get(oldId);
    if (!old || old.row.request.replaced_by !== undefined) return;
    old.row.request = { ...old.row.request, replaced_by: id };
    old.actor.send({ type: "UNDEPLOY", at: now() });
  };
  return deploymentMachine.provide({
    actions: {
      persist: ({ context }, { status }) => persist(context, status),
      sessionHealthy: ({ context }) => {
        toSession(context, { type: "DEPLOY_HEALTHY" });
        replaced(context.deploymentId);
      },
      sessionFailed: ({ context }) =>
        toSession(context, { type: "DEPLOY_FAILED", reason: context.code ?? "EE-WORKLOAD-START-FAILED" }),
      sessionUndeployed: ({ context }) => toSession(context, { type: "UNDEPLOYED" }),
      sendUndeploy: ({ context }) =>
        commands.send(context.agentId, "undeploy", { deployment_id: context.deploymentId }),
    },
  });
}
