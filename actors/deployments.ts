// The deploy coordinator: validates and places deployments, runs one deployment actor per live deployment
// (machines/deployment.ts), dispatches deploy/undeploy frames to the chosen agent and moves its session actor
// (DEPLOY, DEPLOY_HEALTHY, DEPLOY_FAILED, UNDEPLOYED), and keeps every status change in SQLite. Agents'
// deploy_status frames and session transitions (an agent lost mid-deploy) arrive here.
import { createHash, randomBytes } from "node:crypto";
import { type Actor, createActor } from "xstate";
import {
  type EnvelopeCommand,
  type EnvelopedType,
  type EnvelopeSigner,
  originSignedBy,
} from "../attestation/cp-envelope.ts";
import { type Sealed, seal } from "../attestation/seal.ts";
import type { DeploymentRequest, PreflightResult } from "../contract/deployments.ts";
import { canonicalJson } from "../lib/canonical-json.ts";
import type { Logger } from "../lib/log.ts";
import {
  type DeploymentContext,
  type DeploymentStatus,
  deploymentMachine,
  statusOf,
} from "../machines/deployment.ts";
import {
  ComposeError,
  ConflictError,
  NotFoundError,
  NotReadyError,
  PlacementError,
  ValidationError,
} from "../spec/errors.ts";
import { type RegistryAuth, workloadHash } from "../spec/images.ts";
import type { HealthSpec, MessageBody } from "../spec/protocol.ts";
import { encodeFrame } from "../transport/frame.ts";
import type { InspectionObserver } from "../transport/inspection.ts";
import { ActorWatchers } from "./actor-watchers.ts";
import type { AgentIndex, Transition } from "./agent-index.ts";
import type { AuditEntry } from "./business/audit-chain.ts";
import type { AppRegistry } from "./business/store.ts";
import { ComposeSummaries } from "./compose-summary.ts";
import { type Placement, type PlacementRequest, place } from "./placement.ts";
import type { AppRow, DeploymentRow, DeploymentStore } from "./store/deployment-store.ts";
import type { EventLog } from "./store/event-log.ts";
import type { AgentLink, Supervisor } from "./supervisor.ts";

export type { DeploymentRequest, PreflightResult } from "../contract/deployments.ts";

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
}

type DeploymentActor = Actor<typeof deploymentMachine>;

interface Live {
  actor: DeploymentActor;
  row: DeploymentRow;
}

/** Agent steps that mean a deployment is active on the agent, and the status a record of it resumes in. */
const ADOPTABLE: Partial<Record<MessageBody<"deploy_status">["step"], DeploymentStatus>> = {
  preparing: "deploying",
  starting: "deploying",
  gating: "deploying",
  running: "healthy",
  stopping: "undeploying",
};
const IN_FLIGHT: ReadonlySet<DeploymentStatus> = new Set(["pending", "deploying"]);
const LOST_STATES = new Set(["stale", "gone", "rejected"]);

export class Deployments {
  readonly #o: Required<Omit<DeploymentsOptions, "envelope" | "funds">>;
  readonly #funds: DeploymentsOptions["funds"];
  readonly #envelope: EnvelopeSigner | null;
  readonly #live = new Map<string, Live>();
  /** Live deployments by agent: a transition of the agent reaches them without a scan. */
  readonly #byAgent = new Map<string, Set<string>>();
  readonly #composes = new ComposeSummaries();
  /** Inspector streams (GET /api/v2/deployments/{id}/inspect), by deployment id. */
  readonly #watchers = new ActorWatchers();
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
      ...o,
    };
    this.#envelope = o.envelope ?? null;
    this.#funds = o.funds;
    this.#machine = this.#provideEffects();
    this.#offTransitions = o.index.onTransition((t) => this.#onAgentTransition(t));
  }

  /** Placement and validation only: what a deploy would do, with every agent's reasons. Changes nothing. */
  async preflight(req: DeploymentRequest): Promise<PreflightResult> {
    const afford = await this.#fundsCheck(req);
    const resolved = this.#resolve(req);
    // No deployment exists yet: a fresh id shows where a deploy could go (a real one ranks idle agents afresh).
    const placement = this.#place(req, true, newDeploymentId());
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
    if (idempotencyKey !== undefined) {
      const seen = this.#o.store.idempotencyKey(idempotencyKey);
      if (seen) {
        if (seen.request_hash !== requestHash)
          throw new ConflictError(
            "EE-CONFLICT-IDEMPOTENCY",
            "this Idempotency-Key was used with a different request body",
          );
        const first = this.get(seen.deployment_id);
        return { deployment_id: first.deployment_id, agent_id: first.agent_id, replayed: true };
      }
    }
    const resolved = this.#resolve(req);
    const replaces =
      req.replaces ?? (req.agent_id === undefined ? this.#soleHealthy(resolved.name) : undefined);
    const replaced = replaces === undefined ? null : this.#replaceable(replaces, resolved.name, req);
    const placeReq = replaced ? { ...req, agent_id: replaced.agent_id } : req;
    // The id exists before placement: it keys the tie-break, so each deployment ranks the agents afresh.
    const deploymentId = givenId ?? newDeploymentId();
    const placement = this.#place(placeReq, false, deploymentId, replaced?.agent_id);
    if (!placement.chosen) {
      const explained = this.#place(placeReq, true, deploymentId, replaced?.agent_id);
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
    const sealedAuth = req.registry_auth && this.#sealAuth(req.registry_auth, agentId, deploymentId);
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
    this.#sendCommand(agentId, "deploy", frame);
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
    const status = statusOf(live.actor.getSnapshot().value);
    if (status === "undeploying") return this.get(deploymentId);
    live.actor.send({ type: "UNDEPLOY", at: this.#o.now() });
    return this.get(deploymentId);
  }

  /** Whether this CP has a record of the deployment, live or ended. */
  has(deploymentId: string): boolean {
    return this.#live.has(deploymentId) || this.#o.store.get(deploymentId) !== undefined;
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
    const live = this.#live.get(deploymentId);
    if (!live) {
      const row = this.#o.store.get(deploymentId);
      throw new NotFoundError(
        "EE-NOT-FOUND",
        row
          ? `deployment ${deploymentId} is ${row.status}: only a live deployment has an actor to inspect`
          : `deployment ${deploymentId} does not exist`,
      );
    }
    return this.#watchers.watch(deploymentId, live.actor, observer, end);
  }

  list(opts: { status?: DeploymentStatus; limit?: number }): DeploymentRow[] {
    return this.#o.store.list(opts);
  }

  /** Registers `name@version`; versions are immutable (a second put of the same version is a conflict). */
  async registerApp(
    app: { name: string; version: string; compose: string; health?: HealthSpec },
    audit: AuditEntry | null = null,
  ): Promise<AppRow> {
    const row: AppRow = {
      name: app.name,
      version: app.version,
      compose: app.compose,
      compose_hash: this.#composes.summarize(app.compose).hash,
      health: app.health ?? null,
      created_at: this.#o.now(),
    };
    if (!(await this.#o.apps.putApp(row, audit)))
      throw new ConflictError("EE-CONFLICT-STATE", `app ${app.name}@${app.version} already exists`);
    this.#o.events.append({
      at: row.created_at,
      kind: "app.registered",
      data: { name: row.name, version: row.version, compose_hash: row.compose_hash },
    });
    return row;
  }

  apps(): AppRow[] {
    return this.#o.apps.apps();
  }

  /** A deploy_status frame from an agent. Steps for deployments it does not hold are logged and dropped. */
  status(agentId: string, body: MessageBody<"deploy_status">): void {
    const live = this.#live.get(body.deployment_id);
    if (!live && ADOPTABLE[body.step]) {
      this.#adopt(agentId, body, ADOPTABLE[body.step]!);
      return;
    }
    if (!live || live.row.agent_id !== agentId) {
      this.#o.log.warn(
        { agent_id: agentId, deployment_id: body.deployment_id, step: body.step },
        "deploy_status for a deployment this agent does not hold",
      );
      return;
    }
    live.actor.send({
      type: "STEP",
      step: body.step,
      at: this.#o.now(),
      ...(body.code ? { code: body.code } : {}),
      ...(body.message ? { message: body.message } : {}),
      ...(body.compose_hash ? { composeHash: body.compose_hash } : {}),
      ...(body.images ? { images: body.images } : {}),
      ...(body.progress ? { bytes: body.progress } : {}),
    });
  }

  /**
   * The agent runs (or is deploying, or stopping) a deployment this CP has no live actor for: the CP lost its
   * records (rehydrated) or ended it while the agent carried on (reconciled). The agent is the truth for what
   * runs, so the record follows it. Only a deployment whose origin this CP signed for this agent is taken as its
   * own; any other (deployed past the CP, or by another CP) is recorded as unrecognized and audited, so operators
   * see it and can undeploy it, and is never silently counted as one of the CP's deployments.
   */
  #adopt(agentId: string, body: MessageBody<"deploy_status">, status: DeploymentStatus): void {
    const now = this.#o.now();
    const existing = this.#o.store.get(body.deployment_id);
    if (existing && existing.agent_id !== agentId) {
      this.#o.log.warn(
        { agent_id: agentId, deployment_id: body.deployment_id, holder: existing.agent_id },
        "an agent reported a deployment placed on another agent",
      );
      return;
    }
    const session = this.#o.supervisor.get(agentId)?.getSnapshot().context;
    const app = body.app ?? (session?.deploymentId === body.deployment_id ? session.app : null) ?? "unknown";
    const foreign = this.#unrecognized(agentId, body);
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
    this.#o.store.save(row);
    this.#start(row);
    this.#o.events.append({
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
      this.#o.log.warn(
        { agent_id: agentId, deployment_id: row.deployment_id, app: row.app, reason: foreign },
        "an agent runs a deployment this CP did not create: recorded as unrecognized",
      );
  }

  /** Why `body`'s deployment is not one this CP dispatched to this agent, or null when it is. */
  #unrecognized(agentId: string, body: MessageBody<"deploy_status">): string | null {
    const origin = body.origin;
    if (!origin) return "the agent holds no CP envelope for it (deployed past the CP)";
    if (!this.#envelope) return "this CP signs no envelopes";
    const at = { deploymentId: body.deployment_id, agentId, cpPubkey: this.#envelope.publicKey };
    if (!originSignedBy(origin, at))
      return `its envelope is not this CP's signature for this agent (cp_pubkey ${origin.cp_pubkey})`;
    return null;
  }

  /**
   * The workload hash of the agent's healthy deployment: its compose hash and the image digests the agent
   * reported (re-attestation checks the agent's quote binds it).
   */
  runningWorkloadHash(agentId: string): string | null {
    for (const id of this.#byAgent.get(agentId) ?? []) {
      const live = this.#live.get(id);
      if (live && statusOf(live.actor.getSnapshot().value) === "healthy" && live.row.compose_hash !== null)
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
    for (const [id, live] of this.#live)
      if (statusOf(live.actor.getSnapshot().value) === "healthy")
        out.push({
          deployment_id: id,
          agent_id: live.row.agent_id,
          healthy_since: live.row.updated_at,
        });
    return out;
  }

  /** How many live deployments are in each status (metrics). */
  liveByStatus(): Partial<Record<DeploymentStatus, number>> {
    const out: Partial<Record<DeploymentStatus, number>> = {};
    for (const live of this.#live.values()) {
      const status = statusOf(live.actor.getSnapshot().value);
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
    this.#watchers.endAll();
    for (const live of this.#live.values()) live.actor.stop();
    this.#live.clear();
    this.#byAgent.clear();
  }

  #fundsCheck(req: DeploymentRequest): Promise<(nodeSize: string | null) => void> {
    return this.#funds ? this.#funds(req.tenant ?? null) : Promise.resolve(() => {});
  }

  #resolve(req: DeploymentRequest): {
    name: string;
    version: string | null;
    compose: string;
    hash: string;
    services: string[];
    health: HealthSpec | null;
  } {
    const [name, version] = splitAppRef(req.app);
    let compose = req.compose;
    let health: HealthSpec | null = null;
    if (compose === undefined) {
      const app = this.#o.apps.app(name, version);
      if (!app)
        throw new NotFoundError(
          "EE-NOT-FOUND",
          version === undefined
            ? `app ${name} is not registered`
            : `app ${name}@${version} is not registered`,
        );
      compose = app.compose;
      health = app.health;
      return { ...this.#summarize(compose, req.context), name, version: app.version, compose, health };
    }
    if (version !== undefined)
      throw new ValidationError(
        "EE-REQ-INVALID",
        "give either compose or an app@version reference, not both",
      );
    return { ...this.#summarize(compose, req.context), name, version: null, compose, health };
  }

  /** The compose summary, refusing unpinned images when the policy says so (before anything is created). */
  #summarize(compose: string, context: Uint8Array | undefined) {
    const summary = this.#composes.summarize(compose, context);
    if (this.#o.requirePinnedImages && summary.unpinned.length > 0)
      throw new ComposeError(
        "EE-COMPOSE-UNPINNED",
        `this control plane requires images pinned by @sha256: digest; not pinned: ${summary.unpinned.join(", ")}`,
      );
    return summary;
  }

  /**
   * The deployment `id` an update may replace: healthy, of app `name`, on the agent the request names (if any),
   * with no other update under way on its agent. Throws EE-NOT-FOUND, EE-CONFLICT-STATE or EE-REQ-INVALID.
   */
  #replaceable(id: string, name: string, req: PlacementRequest): DeploymentRow {
    const row = this.get(id);
    const live = this.#live.get(id);
    const status = live ? statusOf(live.actor.getSnapshot().value) : row.status;
    if (status !== "healthy")
      throw new ConflictError(
        "EE-CONFLICT-STATE",
        `deployment ${id} is ${status}: only a healthy deployment can be replaced`,
      );
    if (row.app !== name)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `replaces: deployment ${id} runs app ${row.app}, not ${name}; an update keeps the app name`,
      );
    if (req.agent_id !== undefined && req.agent_id !== row.agent_id)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `replaces: deployment ${id} runs on agent ${row.agent_id}; an update goes to that agent`,
      );
    if (this.#o.supervisor.get(row.agent_id)?.getSnapshot().context.replacing)
      throw new ConflictError(
        "EE-CONFLICT-STATE",
        `an update of deployment ${id} is already under way on agent ${row.agent_id}`,
      );
    return row;
  }

  /**
   * A deploy of an app already running (any version), naming no agent, updates it in place: the id of the one
   * healthy deployment of that app name. None, or several (the app runs on more than one agent, so which one to
   * replace is ambiguous), is undefined: the deploy is placed as a new one.
   */
  #soleHealthy(app: string): string | undefined {
    let found: string | undefined;
    for (const [id, live] of this.#live) {
      if (live.row.app !== app || statusOf(live.actor.getSnapshot().value) !== "healthy") continue;
      if (found !== undefined) return undefined;
      found = id;
    }
    return found;
  }

  #place(req: PlacementRequest, explain: boolean, deploymentId: string, replacingOn?: string): Placement {
    const { index } = this.#o;
    // Before its agents are back, the CP would place onto agents that already run something it forgot.
    const ready = this.#o.readiness();
    if (!ready.ready) throw new NotReadyError("EE-NOT-READY", ready.reason);
    const named = req.agent_id === undefined ? undefined : index.get(req.agent_id);
    // Naming an agent is the common CI case: judge that one agent instead of scanning all of them.
    const agents = req.agent_id === undefined ? index.values() : named ? [named] : [];
    return place(req, agents, {
      now: this.#o.now(),
      attestationMaxAgeMs: this.#o.attestationMaxAgeMs,
      explain,
      secret: this.#o.placementSecret,
      deploymentId,
      ...(replacingOn ? { replacingOn } : {}),
      dedicatedTo: this.#o.dedicatedTo,
    });
  }

  #start(row: DeploymentRow): void {
    // The machine always starts from the row: a new one (pending, just dispatched) or one a restarted CP resumes
    // in its stored status, with its progress so far.
    const resume = {
      status: row.status,
      context: {
        deploymentId: row.deployment_id,
        app: row.app,
        agentId: row.agent_id,
        code: row.code,
        message: row.message,
        composeHash: row.compose_hash,
        images: row.images,
        progress: row.progress,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      },
    };
    const actor = createActor(this.#machine, {
      input: {
        deploymentId: row.deployment_id,
        app: row.app,
        agentId: row.agent_id,
        at: row.created_at,
        ackTimeoutMs: this.#o.ackTimeoutMs,
        resume,
      },
    });
    this.#live.set(row.deployment_id, { actor, row });
    this.#watchers.started(row.deployment_id, actor);
    const ids = this.#byAgent.get(row.agent_id) ?? new Set<string>();
    this.#byAgent.set(row.agent_id, ids);
    ids.add(row.deployment_id);
    actor.subscribe({
      next: (snap) => {
        if (snap.status === "done") this.#retire(row.deployment_id);
      },
      error: (err) => {
        this.#o.log.error({ err, deployment_id: row.deployment_id }, "deployment actor crashed");
        this.#retire(row.deployment_id);
      },
    });
    actor.start();
  }

  #retire(deploymentId: string): void {
    const live = this.#live.get(deploymentId);
    if (!live) return;
    this.#live.delete(deploymentId);
    this.#watchers.ended(deploymentId);
    const ids = this.#byAgent.get(live.row.agent_id);
    ids?.delete(deploymentId);
    if (ids?.size === 0) this.#byAgent.delete(live.row.agent_id);
    live.actor.stop();
  }

  #onAgentTransition(t: Transition): void {
    const ids = this.#byAgent.get(t.agent_id);
    if (!ids) return;
    const at = this.#o.now();
    for (const id of [...ids]) {
      const live = this.#live.get(id);
      if (!live) continue;
      const status = statusOf(live.actor.getSnapshot().value);
      if (LOST_STATES.has(t.to) && IN_FLIGHT.has(status)) {
        live.actor.send({ type: "AGENT_LOST", at, reason: `the agent became ${t.to} during the deployment` });
      } else if (
        t.from === "challenged" &&
        (t.to === "registered" || t.to === "healthy" || t.to === "deploying") &&
        (IN_FLIGHT.has(status) || status === "healthy")
      ) {
        // It re-registered saying it runs nothing, or another deployment (an update's old one, after a restart
        // mid-update). Its deploy_status (sent right after registering) carries the real outcome, so give it a
        // moment before concluding the workload is simply gone.
        const timer = setTimeout(() => this.#settleMissing(id, t.agent_id), this.#o.reconcileGraceMs);
        timer.unref();
      } else if (status === "undeploying" && (t.from === "stale" || t.from === "challenged")) {
        // Back after a blip: it may have missed the undeploy.
        this.#sendCommand(t.agent_id, "undeploy", { deployment_id: id });
      }
    }
  }

  /** The agent re-registered without `id` and has not reported it since: end the record the way it ended. */
  #settleMissing(id: string, agentId: string): void {
    const live = this.#live.get(id);
    const session = this.#o.supervisor.get(agentId)?.getSnapshot().context;
    if (!live || session?.deploymentId === id) return;
    const at = this.#o.now();
    const status = statusOf(live.actor.getSnapshot().value);
    if (IN_FLIGHT.has(status)) {
      live.actor.send({ type: "AGENT_LOST", at, reason: "the agent re-registered without the deployment" });
    } else if (status === "healthy") {
      live.actor.send({
        type: "STEP",
        step: "failed",
        at,
        code: "EE-WORKLOAD-NONE",
        message: "the agent re-registered without this workload",
      });
    }
  }

  /**
   * An update's new deployment `id` is healthy: the agent has switched its proxy to it and stops the old one, whose
   * record ends undeployed with replaced_by.
   */
  #replaced(id: string): void {
    const oldId = this.#live.get(id)?.row.request.replaces;
    const old = oldId === undefined ? undefined : this.#live.get(oldId);
    if (!old || old.row.request.replaced_by !== undefined) return;
    old.row.request = { ...old.row.request, replaced_by: id };
    old.actor.send({ type: "UNDEPLOY", at: this.#o.now() });
  }

  /** Seals registry credentials to the agent's attested identity key, for this deployment only. */
  #sealAuth(auth: RegistryAuth, agentId: string, deploymentId: string): Sealed {
    const pubkey = this.#o.supervisor.get(agentId)?.getSnapshot().context.facts?.agent_pubkey;
    if (!pubkey)
      throw new PlacementError("EE-PLACE-NO-AGENT", `agent ${agentId} has no known key to seal to`);
    return seal(Buffer.from(JSON.stringify(auth)), Buffer.from(pubkey, "hex"), agentId, deploymentId);
  }

  /**
   * Sends a deploy/undeploy frame to the agent's current connection, if it has one; signed at send time, so every
   * (re)send gets its own nonce and issued_at.
   */
  #sendCommand<T extends EnvelopedType>(agentId: string, type: T, body: EnvelopeCommand<T>): void {
    const connId = this.#o.supervisor.connOf(agentId);
    if (connId === null) return;
    const envelope = this.#envelope?.sign(type, body, agentId);
    const signed = (envelope ? { ...body, envelope } : body) as MessageBody<T>;
    this.#o.link.send(connId, encodeFrame(type, signed, { id: this.#o.link.nextFrameId() }));
  }

  #provideEffects() {
    const o = this.#o;
    const sync = (ctx: DeploymentContext, status: DeploymentStatus): DeploymentRow | undefined => {
      const live = this.#live.get(ctx.deploymentId);
      if (!live) return undefined;
      Object.assign(live.row, {
        status,
        code: ctx.code,
        message: ctx.message,
        compose_hash: ctx.composeHash ?? live.row.compose_hash,
        images: ctx.images,
        progress: ctx.progress,
        updated_at: ctx.updatedAt,
      });
      return live.row;
    };
    const persist = (context: DeploymentContext, status: DeploymentStatus) => {
      const was = this.#live.get(context.deploymentId)?.row.status;
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
        if (status === "failed") o.log.warn({ ...fields, message: row.message }, "deployment failed");
        else o.log.info(fields, `deployment ${status}`);
      }
      // Written behind, in the tick's batch; a failing batch is logged by the store.
      o.store.save(row);
      o.events.append({
        at: o.now(),
        kind: `deployment.${status}`,
        agent_id: row.agent_id,
        data: { deployment_id: row.deployment_id, app: row.app, ...(row.code ? { code: row.code } : {}) },
      });
    };
    /** Tells the agent's session actor how its deployment ended up. */
    const toSession = (
      ctx: DeploymentContext,
      event: { type: "DEPLOY_HEALTHY" | "UNDEPLOYED" } | { type: "DEPLOY_FAILED"; reason: string },
    ) => o.supervisor.send(ctx.agentId, { ...event, deploymentId: ctx.deploymentId, at: o.now() });
    return deploymentMachine.provide({
      actions: {
        persist: ({ context }, { status }) => persist(context, status),
        sessionHealthy: ({ context }) => {
          toSession(context, { type: "DEPLOY_HEALTHY" });
          this.#replaced(context.deploymentId);
        },
        sessionFailed: ({ context }) =>
          toSession(context, { type: "DEPLOY_FAILED", reason: context.code ?? "EE-WORKLOAD-START-FAILED" }),
        sessionUndeployed: ({ context }) => toSession(context, { type: "UNDEPLOYED" }),
        sendUndeploy: ({ context }) =>
          this.#sendCommand(context.agentId, "undeploy", { deployment_id: context.deploymentId }),
      },
    });
  }
}

export function newDeploymentId(): string {
  return `d-${randomBytes(8).toString("hex")}`;
}

function splitAppRef(ref: string): [string, string | undefined] {
  const at = ref.indexOf("@");
  return at < 0 ? [ref, undefined] : [ref.slice(0, at), ref.slice(at + 1)];
}

// Registry credentials are left out: an idempotency record must not hold even a hash a password could be
// guessed from, so a retry that only changes them is the same request.
function hashRequest(req: DeploymentRequest): string {
  const h = createHash("sha256");
  const { context, registry_auth: _auth, ...rest } = req;
  h.update(canonicalJson(rest));
  if (context) h.update(context);
  return h.digest("hex");
}

function describeNoFit(p: Placement): string {
  if (p.considered === 0) return "no agent fits: no agents are connected";
  const counts = Object.entries(p.counts)
    .map(([code, n]) => `${n} ${code}`)
    .join(", ");
  return `no agent fits among ${p.considered} considered (${counts})`;
}
