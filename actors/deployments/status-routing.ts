// Agents' deploy_status frames: a step of a live deployment goes to its actor; a step for one this CP has no live
// actor for, when it says the deployment is active on the agent, adopts it (the CP lost its records, or ended it
// while the agent carried on): the agent is the truth for what runs. Only a deployment whose origin this CP signed
// for this agent is adopted as its own; any other is recorded as unrecognized. Anything else is logged and dropped.
// Imports attestation/cp-envelope (origin check), machines/deployment types and this folder.
import { originSignedBy } from "../../attestation/cp-envelope.ts";
import type { DeploymentStatus } from "../../machines/deployment.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";
import type { DeploymentsCore } from "./live.ts";

type StatusBody = MessageBody<"deploy_status">;

/** Agent steps that mean a deployment is active on the agent, and the status a record of it resumes in. */
const ADOPTABLE: Partial<Record<StatusBody["step"], DeploymentStatus>> = {
  preparing: "deploying",
  starting: "deploying",
  gating: "deploying",
  running: "healthy",
  stopping: "undeploying",
};

/** A deploy_status frame from an agent. */
export function routeStatus(core: DeploymentsCore, agentId: string, body: StatusBody): void {
  const live = core.live.get(body.deployment_id);
  const adoptAs = ADOPTABLE[body.step];
  if (!live && adoptAs) {
    adopt(core, agentId, body, adoptAs);
    return;
  }
  if (!live || live.row.agent_id !== agentId) {
    core.log.warn(
      { agent_id: agentId, deployment_id: body.deployment_id, step: body.step },
      "deploy_status for a deployment this agent does not hold",
    );
    return;
  }
  live.actor.send({
    type: "STEP",
    step: body.step,
    at: core.now(),
    ...(body.code ? { code: body.code } : {}),
    ...(body.message ? { message: body.message } : {}),
    ...(body.compose_hash ? { composeHash: body.compose_hash } : {}),
    ...(body.images ? { images: body.images } : {}),
    ...(body.progress ? { bytes: body.progress } : {}),
  });
}

/**
 * The agent runs (or is deploying, or stopping) a deployment this CP has no live actor for: the record follows
 * the agent, as `rehydrated` (no record), `reconciled` (an ended record) or `unrecognized` (not this CP's), audited
 * so operators see it and can undeploy it; an unrecognized one is never silently counted as the CP's.
 */
function adopt(core: DeploymentsCore, agentId: string, body: StatusBody, status: DeploymentStatus): void {
  const now = core.now();
  const existing = core.store.get(body.deployment_id);
  if (existing && existing.agent_id !== agentId) {
    core.log.warn(
      { agent_id: agentId, deployment_id: body.deployment_id, holder: existing.agent_id },
      "an agent reported a deployment placed on another agent",
    );
    return;
  }
  const session = core.supervisor.get(agentId)?.getSnapshot().context;
  const app = body.app ?? (session?.deploymentId === body.deployment_id ? session.app : null) ?? "unknown";
  const foreign = unrecognized(core, agentId, body);
  const step = foreign ? "unrecognized" : existing ? "reconciled" : "rehydrated";
  const row: DeploymentRow = existing
    ? {
        ...existing,
        status,
        code: null,
        message: null,
        progress: [...existing.progress, { step, at: now }],
        ...(foreign ? { request: { ...existing.request, unrecognized: true } } : {}),
        updated_at: now,
      }
    : {
        deployment_id: body.deployment_id,
        app,
        app_version: null,
        agent_id: agentId,
        status,
        code: null,
        message: null,
        compose_hash: body.compose_hash ?? null,
        images: body.images ?? [],
        progress: [{ step, at: now }],
        request: foreign ? { unrecognized: true } : {},
        compose: "",
        created_at: now,
        updated_at: now,
        rehydrated: true,
      };
  core.store.save(row);
  core.start(row);
  core.events.append({
    at: now,
    kind: `deployment.${step}`,
    agent_id: agentId,
    data: {
      deployment_id: row.deployment_id,
      app: row.app,
      status,
      ...(existing ? { was: existing.status } : {}),
      ...(foreign ? { reason: foreign } : {}),
    },
  });
  if (foreign)
    core.log.warn(
      { agent_id: agentId, deployment_id: row.deployment_id, app: row.app, reason: foreign },
      "an agent runs a deployment this CP did not create: recorded as unrecognized",
    );
}

/** Why `body`'s deployment is not one this CP dispatched to this agent, or null when it is. */
function unrecognized(core: DeploymentsCore, agentId: string, body: StatusBody): string | null {
  const origin = body.origin;
  if (!origin) return "the agent holds no CP envelope for it (deployed past the CP)";
  const envelope = core.commands.envelope;
  if (!envelope) return "this CP signs no envelopes";
  const at = { deploymentId: body.deployment_id, agentId, cpPubkey: envelope.publicKey };
  if (!originSignedBy(origin, at))
    return `its envelope is not this CP's signature for this agent (cp_pubkey ${origin.cp_pubkey})`;
  return null;
}
