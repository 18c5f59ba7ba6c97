// The master's deployments port: its own coordinator for direct agents, and for an agent behind a dc a command on
// that dc's stream. A deploy naming a dc's agent goes to that dc; one naming no agent is placed on a direct agent
// when one fits, else among the agents of healthy dcs (placement.ts, the same rules; degraded dcs skipped with
// EE-PLACE-DC-DEGRADED). The deployment keeps the master's id on the dc, so its status shows here as the dc
// reports it (the FederatedView). Registry credentials and build contexts are not relayed: they would rest in
// the stream on disk. Imports actors/ and transport/ types, spec/, this folder.
import type { DeploymentRequest, DeploymentsPort } from "../../contract/deployments.ts";
import { ConflictError, NotFoundError, PlacementError, ValidationError } from "../../spec/errors.ts";
import { type Deployments, newDeploymentId } from "../deployments.ts";
import { place } from "../placement.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";
import type { FederatedAgent, FederatedDeployment, FederatedView } from "./federated-view.ts";
import type { MasterLink } from "./master-link.ts";
import { MASTER_DC } from "./topology.ts";

export interface FederatedDeploymentsOptions {
  local: Deployments;
  view: FederatedView;
  link: MasterLink;
  placementSecret: Uint8Array;
  attestationMaxAgeMs: number;
  /** An agent connected to the master itself: never sent to a dc, whatever a dc reports. */
  isDirect: (agentId: string) => boolean;
  /** Drained on the master (actors/drains.ts): no new deployment on it, whichever dc it is behind. */
  drained?: (agentId: string) => boolean;
  now?: () => number;
}

type Created = { deployment_id: string; agent_id: string; replayed: boolean };

export function federatedDeployments(o: FederatedDeploymentsOptions): DeploymentsPort {
  const now = o.now ?? Date.now;
  const { local, view, link } = o;
  /** Idempotency of deploys sent to dcs (the local coordinator keeps its own in SQLite). */
  const keys = new Map<string, { body: string; created: Created }>();

  const asRow = (d: FederatedDeployment): DeploymentRow => ({ ...d, compose: "" });

  async function toDc(req: DeploymentRequest, agent: FederatedAgent, key?: string): Promise<Created> {
    if (req.registry_auth || req.context || req.replaces)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `agent ${agent.agent_id} is behind dc ${agent.dc_id}: registry_auth, a build context and replaces are not relayed to a dc`,
      );
    const at = now();
    const id = newDeploymentId();
    if (!view.isHealthy(agent.dc_id, at, link.degradedAfterMs))
      throw new PlacementError(
        "EE-PLACE-DC-DEGRADED",
        `agent ${agent.agent_id} is behind dc ${agent.dc_id}, which the master has not heard from lately`,
      );
    const placed = place({ ...req, agent_id: agent.agent_id }, [agent], {
      now: at,
      attestationMaxAgeMs: o.attestationMaxAgeMs,
      secret: o.placementSecret,
      deploymentId: id,
      explain: true,
      ...(o.drained ? { drained: o.drained } : {}),
    });
    if (!placed.chosen)
      throw new PlacementError(
        "EE-PLACE-NO-AGENT",
        `agent ${agent.agent_id} (dc ${agent.dc_id}) cannot take it`,
        {
          considered: placed.considered,
          counts: placed.counts,
          agents: placed.candidates,
        },
      );
    // Validates the compose and resolves a registered app, as for a direct deploy.
    const resolved = await local.preflight({ ...req, agent_id: agent.agent_id });
    const compose =
      req.compose ??
      local.apps().find((a) => a.name === resolved.app && a.version === resolved.app_version)?.compose;
    if (compose === undefined) throw new NotFoundError("EE-NOT-FOUND", `app ${req.app} is not registered`);
    const health =
      req.health ??
      local.apps().find((a) => a.name === resolved.app && a.version === resolved.app_version)?.health ??
      undefined;
    await link.send(agent.dc_id, "deploy", {
      deployment_id: id,
      agent_id: agent.agent_id,
      app: resolved.app,
      compose,
      ...(health ? { health } : {}),
      issued_at: at,
    });
    view.dispatched({
      deployment_id: id,
      app: resolved.app,
      app_version: resolved.app_version,
      agent_id: agent.agent_id,
      status: "pending",
      code: null,
      message: null,
      compose_hash: resolved.compose_hash,
      images: [],
      progress: [{ step: "dispatched", at }],
      request: {
        agent_id: agent.agent_id,
        ...(req.node_size ? { node_size: req.node_size } : {}),
        ...(req.datacenter ? { datacenter: req.datacenter } : {}),
        ...(health ? { health } : {}),
      },
      created_at: at,
      updated_at: at,
      rehydrated: false,
      dc_id: agent.dc_id,
    });
    const created = { deployment_id: id, agent_id: agent.agent_id, replayed: false };
    if (key !== undefined) keys.set(key, { body: requestKey(req), created });
    return created;
  }

  /** Among healthy dcs' agents; null when none fits. */
  function placeInDcs(req: DeploymentRequest): FederatedAgent | null {
    const at = now();
    const healthy = [...view.agents()].filter(
      (a) =>
        a.dc_id !== MASTER_DC && !o.isDirect(a.agent_id) && view.isHealthy(a.dc_id, at, link.degradedAfterMs),
    );
    const placed = place(req, healthy, {
      now: at,
      attestationMaxAgeMs: o.attestationMaxAgeMs,
      secret: o.placementSecret,
      deploymentId: newDeploymentId(),
      ...(o.drained ? { drained: o.drained } : {}),
    });
    return placed.chosen ? (view.agent(placed.chosen.agent_id) ?? null) : null;
  }

  return {
    preflight: (req) => local.preflight(req),
    async create(req, key) {
      if (key !== undefined) {
        const seen = keys.get(key);
        if (seen) {
          if (seen.body !== requestKey(req))
            throw new ConflictError(
              "EE-CONFLICT-IDEMPOTENCY",
              "this Idempotency-Key was used with a different request body",
            );
          return { ...seen.created, replayed: true };
        }
      }
      const named =
        req.agent_id === undefined || o.isDirect(req.agent_id) ? undefined : view.agent(req.agent_id);
      if (named && named.dc_id !== MASTER_DC) return toDc(req, named, key);
      if (req.agent_id !== undefined) return local.create(req, key);
      try {
        return await local.create(req, key);
      } catch (err) {
        if (!(err instanceof PlacementError) || err.code !== "EE-PLACE-NO-AGENT") throw err;
        const agent = placeInDcs(req);
        if (!agent) throw err;
        return toDc(req, agent, key);
      }
    },
    get(id) {
      if (local.has(id)) return local.get(id);
      const remote = view.deployment(id);
      if (!remote) throw new NotFoundError("EE-NOT-FOUND", `deployment ${id} does not exist`);
      return asRow(remote);
    },
    list(opts) {
      const rows = [...local.list(opts)];
      // The master's own deployments are in the view too (dc `master`), but the local store has them whole.
      for (const d of view.deployments())
        if (d.dc_id !== MASTER_DC && (!opts.status || d.status === opts.status)) rows.push(asRow(d));
      rows.sort((a, b) => b.created_at - a.created_at);
      return rows.slice(0, opts.limit ?? 100);
    },
    async undeploy(id) {
      if (local.has(id)) return local.undeploy(id);
      const remote = view.deployment(id);
      if (!remote) throw new NotFoundError("EE-NOT-FOUND", `deployment ${id} does not exist`);
      if (remote.status === "undeployed" || remote.status === "failed")
        throw new ConflictError("EE-CONFLICT-STATE", `deployment ${id} is already ${remote.status}`);
      await link.send(remote.dc_id, "undeploy", { deployment_id: id, issued_at: now() });
      return asRow(remote);
    },
    registerApp: (app) => local.registerApp(app),
    apps: () => local.apps(),
  };
}

function requestKey(req: DeploymentRequest): string {
  const { context, ...rest } = req;
  return JSON.stringify({ ...rest, context: context?.length ?? null });
}
