// The deploy coordinator: the deployments API the REST side and federation call (preflight, create, undeploy,
// reads, app registration) over its jobs in deployments/: idempotent creates (idempotency.ts), which compose runs
// (apps.ts), where it goes (placing.ts), the live deployment actors (live.ts) and their effects (effects.ts),
// signed commands to agents (commands.ts), agents' deploy_status frames (status-routing.ts) and session
// transitions (reconciliation.ts). Creating one moves the agent's session (DEPLOY) before the frame goes out.
import { randomBytes } from "node:crypto";
import type { EnvelopeSigner } from "../attestation/cp-envelope.ts";
import { workloadHash } from "../compose/images.ts";
import type { DeploymentRequest, PreflightResult } from "../contract/deployments.ts";
import type { Logger } from "../lib/log.ts";
import type { DeploymentStatus } from "../machines/deployment.ts";
import { ConflictError, NotFoundError, PlacementError } from "../spec/errors.ts";
import type { HealthSpec, MessageBody } from "../spec/protocol.ts";
import type { InspectionObserver } from "./actor-watchers.ts";
import type { AgentIndex } from "./agent-index.ts";
import type { AgentLink } from "./agent-link.ts";
import type { AuditEntry } from "./business/audit-chain.ts";
import type { AppRegistry } from "./business/store.ts";
import { AppCatalog } from "./deployments/apps.ts";
import { AgentCommands } from "./deployments/commands.ts";
import { provideDeploymentEffects } from "./deployments/effects.ts";
import { hashRequest, replayOf } from "./deployments/idempotency.ts";
import { type DeploymentsCore, LiveDeployments } from "./deployments/live.ts";
import { describeNoFit, Placer } from "./deployments/placing.ts";
import { Reconciler } from "./deployments/reconciliation.ts";
import { routeStatus } from "./deployments/status-routing.ts";
import type { AppRow, DeploymentRow, DeploymentStore } from "./store/deployment-store.ts";
import type { EventLog } from "./store/event-log.ts";
import type { Supervisor } from "./supervisor.ts";

export interface DeploymentsOptions {
  store: DeploymentStore;
  /** Registered apps (the business store). */
  apps: AppRegistry;
  index: AgentIndex;
  supervisor: Supervisor;
  link: AgentLink;
  events: EventLog;
  log: Logger;
  /** An attestation older than this takes an agent out of placement. */
  attestationMaxAgeMs: number;
  /** How long an agent has to report the first step of a dispatched deployment. */
  ackTimeoutMs?: number;
  /** After an agent re-registers without a deployment, how long its deploy_status may take to explain why. */
  reconcileGraceMs?: number;
  /** Placement needs the rebuilt runtime state: before readiness, deploys and preflights are EE-NOT-READY. */
  readiness?: () => { ready: boolean; reason: string };
  now?: () => number;
  /** Signs every deploy/undeploy frame for the agent it goes to (the CP attestation envelope). */
  envelope?: EnvelopeSigner;
  /** Refuse images not pinned by `@sha256:` digest (EE-COMPOSE-UNPINNED) at deploy and preflight. */
  requirePinnedImages?: boolean;
  /** Keys placement's tie-break among equally loaded agents (actors/bootstrap-secret.ts). */
  placementSecret: Uint8Array;
  /**
   * Billing's funds gate (billing/ledger.ts fundsCheck) for the deploying tenant (null: the admin, not charged):
   * read before placement, since it awaits the ledger; the returned check runs on the chosen agent's node_size and
   * throws EE-PLACE-INSUFFICIENT-FUNDS. None: free.
   */
  funds?: (tenant: string | null) => Promise<(nodeSize: string | null) => void>;
  /** The tenant an agent is dedicated to (actors/business/enrollment.ts), if any. */
  dedicatedTo?: (agentId: string) => string | undefined;
  /** Drained agents (actors/drains.ts) take no new deployment. */
  drained?: (agentId: string) => boolean;
  /**
   * A federation dc: the compose hash the master's catalog gives name@version, if it holds it. A deploy or an app
   * registration of that name@version with another compose is refused, so a dc cannot diverge from the catalog.
   */
  masterApp?: (name: string, version: string) => string | undefined;
}

export class Deployments {
  readonly #o: Required<Omit<DeploymentsOptions, "envelope" | "funds">>;
  readonly #funds: DeploymentsOptions["funds"];
  readonly #live: LiveDeployments;
  readonly #apps: AppCatalog;
  readonly #placer: Placer;
  readonly #commands: AgentCommands;
  readonly #core: DeploymentsCore;
  readonly #reconciler: Reconciler;
  readonly #machine;
  readonly #offTransitions: () => void;

  constructor(o: DeploymentsOptions) {
    this.#o = {
      ackTimeoutMs: 30_000,
      reconcileGraceMs: 2_000,
      now: Date.now,
      readiness: () => ({ ready: true, reason: "" }),
      requirePinnedImages: false,
      dedicatedTo: () => undefined,
      drained: () => false,
      masterApp: () => undefined,
      ...o,
    };
    const { store, supervisor, events, log, now } = this.#o;
    this.#funds = o.funds;
    this.#live = new LiveDeployments(log);
    this.#apps = new AppCatalog({
      apps: o.apps,
      events,
      now,
      requirePinnedImages: this.#o.requirePinnedImages,
      masterApp: this.#o.masterApp,
    });
    this.#placer = new Placer({ ...this.#o, live: this.#live });
    this.#commands = new AgentCommands(o.link, supervisor, o.envelope ?? null);
    const start = (row: DeploymentRow) => this.#start(row);
    const core = { live: this.#live, store, supervisor, events, log, now, commands: this.#commands, start };
    this.#core = core;
    this.#machine = provideDeploymentEffects(core);
    this.#reconciler = new Reconciler(core, this.#o.reconcileGraceMs);
    this.#offTransitions = o.index.onTransition((t) => this.#reconciler.onAgentTransition(t));
  }

  /** Placement and validation only: what a deploy would do, with every agent's reasons. Changes nothing. */
  async preflight(req: DeploymentRequest): Promise<PreflightResult> {
    const afford = await this.#fundsCheck(req);
    const resolved = this.#apps.resolve(req);
    // No deployment exists yet: a fresh id shows where a deploy could go (a real one ranks idle agents afresh).
    const placement = this.#placer.place(req, true, newDeploymentId());
    afford(placement.chosen?.node_size ?? req.node_size ?? null);
    return {
      ok: placement.chosen !== null,
      app: resolved.name,
      app_version: resolved.version,
      compose_hash: resolved.hash,
      services: resolved.services,
      placement,
    };
  }

  /**
   * Places and dispatches a deployment. With an idempotency key, a retried request with the same body returns
   * the first result (`replayed`), a different body is EE-CONFLICT-IDEMPOTENCY.
   */
  async create(
    req: DeploymentRequest,
    idempotencyKey?: string,
    /** A federation master's id for a deployment it sent to this dc CP: the same id on both sides. */
    givenId?: string,
  ): Promise<{ deployment_id: string; agent_id: string; replayed: boolean }> {
    // The only wait, before anything is looked at: from here to the dispatch nothing yields, so the next
    // placement already sees the chosen agent busy.
    const afford = await this.#fundsCheck(req);
    const requestHash = idempotencyKey === undefined ? "" : hashRequest(req);
    const seen = idempotencyKey === undefined ? null : replayOf(this.#o.store, idempotencyKey, requestHash);
    if (seen !== null) {
      const first = this.get(seen);
      return { deployment_id: first.deployment_id, agent_id: first.agent_id, replayed: true };
    }
    const resolved = this.#apps.resolve(req);
    const replaces =
      req.replaces ?? (req.agent_id === undefined ? this.#placer.soleHealthy(resolved.name) : undefined);
    const replaced =
      replaces === undefined ? null : this.#placer.replaceable(this.get(replaces), resolved.name, req);
    const placeReq = replaced ? { ...req, agent_id: replaced.agent_id } : req;
    // The id exists before placement: it keys the tie-break, so each deployment ranks the agents afresh.
    const deploymentId = givenId ?? newDeploymentId();
    const placement = this.#placer.place(placeReq, false, deploymentId, replaced?.agent_id);
    if (!placement.chosen) {
      const explained = this.#placer.place(placeReq, true, deploymentId, replaced?.agent_id);
      throw new PlacementError("EE-PLACE-NO-AGENT", describeNoFit(explained), {
        considered: explained.considered,
        counts: explained.counts,
        agents: explained.candidates,
      });
    }
    afford(placement.chosen.node_size);
    const now = this.#o.now();
    const agentId = placement.chosen.agent_id;
    const health = req.health ?? resolved.health ?? undefined;
    // Sealed before anything is created: a failure here leaves no record behind.
    const sealedAuth = req.registry_auth && this.#commands.sealAuth(req.registry_auth, agentId, deploymentId);
    const row: DeploymentRow = {
      deployment_id: deploymentId,
      app: resolved.name,
      app_version: resolved.version,
      agent_id: agentId,
      status: "pending",
      code: null,
      message: null,
      compose_hash: resolved.hash,
      images: [],
      progress: [{ step: "dispatched", at: now }],
      request: {
        ...(req.node_size ? { node_size: req.node_size } : {}),
        ...(req.datacenter ? { datacenter: req.datacenter } : {}),
        ...(req.agent_id ? { agent_id: req.agent_id } : {}),
        ...(health ? { health } : {}),
        ...(req.context ? { context_bytes: req.context.length } : {}),
        ...(replaced ? { replaces: replaced.deployment_id } : {}),
      },
      compose: resolved.compose,
      created_at: now,
      updated_at: now,
      rehydrated: false,
    };
    this.#o.store.create(
      row,
      idempotencyKey === undefined ? undefined : { key: idempotencyKey, requestHash },
    );
    const frame: MessageBody<"deploy"> = {
      deployment_id: deploymentId,
      app: resolved.name,
      compose: resolved.compose,
      ...(req.context ? { context: req.context } : {}),
      ...(health ? { health } : {}),
      ...(replaced ? { replaces: replaced.deployment_id } : {}),
      ...(sealedAuth ? { registry_auth: sealedAuth } : {}),
    };
    // The session moves to deploying (or notes the update) first, so the next placement already sees it busy.
    this.#o.supervisor.send(agentId, {
      type: "DEPLOY",
      deploymentId,
      app: resolved.name,
      at: now,
      ...(replaced ? { replaces: replaced.deployment_id } : {}),
    });
    this.#start(row);
    this.#commands.send(agentId, "deploy", frame);
    this.#o.events.append({
      at: now,
      kind: "deployment.created",
      agent_id: agentId,
      data: {
        deployment_id: deploymentId,
        app: resolved.name,
        version: resolved.version,
        compose_hash: resolved.hash,
      },
    });
    this.#o.log.info(
      { deployment_id: deploymentId, app: resolved.name, version: resolved.version, agent_id: agentId },
      "deployment placed",
    );
    return { deployment_id: deploymentId, agent_id: agentId, replayed: false };
  }

  undeploy(deploymentId: string): DeploymentRow {
    const live = this.#live.get(deploymentId);
    if (!live) {
      const row = this.#o.store.get(deploymentId);
      if (!row) throw new NotFoundError("EE-NOT-FOUND", `deployment ${deploymentId} does not exist`);
      throw new ConflictError("EE-CONFLICT-STATE", `deployment ${deploymentId} is already ${row.status}`);
    }
    const status = this.#live.status(live);
    if (status === "undeploying") return this.get(deploymentId);
    live.actor.send({ type: "UNDEPLOY", at: this.#o.now() });
    return this.get(deploymentId);
  }

  /** Whether this CP has a record of the deployment, live or ended. */
  has(deploymentId: string): boolean {
    return this.#live.get(deploymentId) !== undefined || this.#o.store.get(deploymentId) !== undefined;
  }

  get(deploymentId: string): DeploymentRow {
    const live = this.#live.get(deploymentId);
    if (live) return live.row;
    const row = this.#o.store.get(deploymentId);
    if (!row) throw new NotFoundError("EE-NOT-FOUND", `deployment ${deploymentId} does not exist`);
    return row;
  }

  /**
   * Streams the live deployment actor's inspection events to `observer` (its present state first); `end` is called
   * when the actor retires (the deployment ended). Returns the detach function. An ended deployment has no actor.
   */
  inspect(deploymentId: string, observer: InspectionObserver, end: () => void): () => void {
    const detach = this.#live.watch(deploymentId, observer, end);
    if (detach) return detach;
    const row = this.#o.store.get(deploymentId);
    throw new NotFoundError(
      "EE-NOT-FOUND",
      row
        ? `deployment ${deploymentId} is ${row.status}: only a live deployment has an actor to inspect`
        : `deployment ${deploymentId} does not exist`,
    );
  }

  list(opts: { status?: DeploymentStatus; limit?: number }): DeploymentRow[] {
    return this.#o.store.list(opts);
  }

  /** Registers `name@version`; versions are immutable (a second put of the same version is a conflict). */
  registerApp(
    app: { name: string; version: string; compose: string; health?: HealthSpec },
    audit: AuditEntry | null = null,
  ): Promise<AppRow> {
    return this.#apps.register(app, audit);
  }

  apps(): AppRow[] {
    return this.#apps.list();
  }

  /** A deploy_status frame from an agent (deployments/status-routing.ts). */
  status(agentId: string, body: MessageBody<"deploy_status">): void {
    routeStatus(this.#core, agentId, body);
  }

  /**
   * The workload hash of the agent's healthy deployment: its compose hash and the image digests the agent
   * reported (re-attestation checks the agent's quote binds it).
   */
  runningWorkloadHash(agentId: string): string | null {
    for (const id of this.#live.ofAgent(agentId)) {
      const live = this.#live.get(id);
      if (live && this.#live.status(live) === "healthy" && live.row.compose_hash !== null)
        return workloadHash(live.row.compose_hash, live.row.images);
    }
    return null;
  }

  /**
   * The live deployments that are healthy now, with when they became so (their last step: `running`, or the
   * rehydration that found them running): what billing charges for a closed period.
   */
  healthy(): { deployment_id: string; agent_id: string; healthy_since: number }[] {
    const out = [];
    for (const [id, live] of this.#live.entries())
      if (this.#live.status(live) === "healthy")
        out.push({ deployment_id: id, agent_id: live.row.agent_id, healthy_since: live.row.updated_at });
    return out;
  }

  /** How many live deployments are in each status (metrics). */
  liveByStatus(): Partial<Record<DeploymentStatus, number>> {
    const out: Partial<Record<DeploymentStatus, number>> = {};
    for (const [, live] of this.#live.entries()) {
      const status = this.#live.status(live);
      out[status] = (out[status] ?? 0) + 1;
    }
    return out;
  }

  /** Recreates actors for deployments a previous run of this CP left active (its database survived). */
  resume(): number {
    const rows = this.#o.store.active();
    for (const row of rows) this.#start(row);
    return rows.length;
  }

  stop(): void {
    this.#offTransitions();
    this.#live.stopAll();
  }

  #fundsCheck(req: DeploymentRequest): Promise<(nodeSize: string | null) => void> {
    return this.#funds ? this.#funds(req.tenant ?? null) : Promise.resolve(() => {});
  }

  #start(row: DeploymentRow): void {
    this.#live.start(row, this.#machine, this.#o.ackTimeoutMs);
  }
}

export function newDeploymentId(): string {
  return `d-${randomBytes(8).toString("hex")}`;
}
