// REST routes for workloads: deployments (create with Idempotency-Key, list, show, undeploy), preflight, the
// app registry (name@version), and the agent reads the CP relays over the agent's WebSocket (logs, stats,
// snapshot). Bodies are validated here; the port (actors/deployments.ts + actors/agent-requests.ts) does the
// rest. Imports spec/, transport/ and contract/ types only.
import { PassThrough } from "node:stream";
import type { Router } from "@koa/router";
import type Koa from "koa";
import type { AgentReadsPort, AgentRecord, LogLines } from "../../contract/agents.ts";
import type {
  AppRow,
  Candidate,
  CapacityHintPort,
  DeploymentRequest,
  DeploymentRow,
  DeploymentStatus,
  DeploymentsPort,
} from "../../contract/deployments.ts";
import type { AuditEntry, IdentityPort } from "../../contract/identity.ts";
import { appBody, deploymentBody } from "../../contract/rest-bodies.ts";
import type { AppJson, DeploymentJson, PreflightJson } from "../../contract/rest-responses.ts";
import {
  ConflictError,
  EeError,
  NotFoundError,
  PlacementError,
  toEeError,
  ValidationError,
} from "../../spec/errors.ts";
import { MAX_COMPOSE_BYTES, MAX_CONTEXT_BYTES, type MessageBody } from "../../spec/protocol.ts";
import { ownerOf, type Principal, principalName } from "../../spec/scopes.ts";
import type { AgentVisibility } from "./app.ts";
import { readJsonBody } from "./body.ts";
import { mustOwn, need, visible } from "./guard.ts";
import { iso } from "./json.ts";
import { boolParam, intParam, single } from "./query.ts";
import { dropIfUndrained, slowConsumer } from "./stream.ts";

const STATUSES = ["pending", "deploying", "healthy", "failed", "undeploying", "undeployed"] as const;
const DEPLOY_BODY_LIMIT = MAX_COMPOSE_BYTES + Math.ceil(MAX_CONTEXT_BYTES / 3) * 4 + 64 * 1024;

const FOLLOW_REFUSAL_WAIT_MS = 500;
/**
 * What a log follow may hold for its HTTP client before the client counts as not reading: the agent has no flow
 * control, so without a cap every line would wait in memory. Several MiB, so that a client that reads but is
 * briefly outpaced by the agent (the burst of a large `tail`) is not dropped; followers are operators, few at a
 * time, so the worst case stays small.
 */
export const FOLLOW_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function deploymentJson(r: DeploymentRow): DeploymentJson {
  return {
    deployment_id: r.deployment_id,
    app: r.app,
    app_version: r.app_version,
    agent_id: r.agent_id,
    status: r.status,
    code: r.code,
    message: r.message,
    compose_hash: r.compose_hash,
    images: r.images,
    progress: r.progress.map((p) => ({ ...p, at: iso(p.at) })),
    request: requestJson(r.request),
    replaces: r.request.replaces ?? null,
    replaced_by: r.request.replaced_by ?? null,
    // A federation master's deployment behind a dc says which.
    ...("dc_id" in r && typeof r.dc_id === "string" ? { dc_id: r.dc_id } : {}),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    rehydrated: r.rehydrated,
    unrecognized: r.request.unrecognized === true,
  };
}

/** What the deploy asked for; the update links and the unrecognized flag are shown beside it, not in it. */
function requestJson({ replaced_by: _by, unrecognized: _u, ...request }: DeploymentRow["request"]) {
  return request;
}

function appJson(a: AppRow, withCompose: boolean): AppJson & { compose?: string } {
  return {
    name: a.name,
    version: a.version,
    ref: `${a.name}@${a.version}`,
    compose_hash: a.compose_hash,
    health: a.health,
    created_at: iso(a.created_at),
    ...(withCompose ? { compose: a.compose } : {}),
  };
}

/** The body as a request of `p` (a tenant's is placed only on agents not dedicated to another tenant). */
async function deploymentRequest(ctx: Koa.Context, p: Principal): Promise<DeploymentRequest> {
  const { value } = await readJsonBody(ctx, deploymentBody, DEPLOY_BODY_LIMIT);
  const { context, ...rest } = value;
  const req: DeploymentRequest = { ...rest, ...(p.kind === "account" ? { tenant: p.accountId } : {}) };
  if (context !== undefined) {
    const bytes = Buffer.from(context, "base64");
    if (bytes.length > MAX_CONTEXT_BYTES)
      throw new ValidationError("EE-REQ-INVALID", `context: must be at most ${MAX_CONTEXT_BYTES} bytes`);
    req.context = new Uint8Array(bytes);
  }
  return req;
}

export interface DeploymentRoutesOptions {
  slowConsumerDrainMs?: number;
  /** Ownership (the business store) and audit; without it every principal is the admin. */
  identity?: IdentityPort;
  /** Which agents the caller sees (app.ts); absent: all. */
  agentVisible?: AgentVisibility;
  agent?: (agentId: string) => AgentRecord | undefined;
  /** Why nothing fits, as capacity sees it: added to preflight and to a deploy's no-agent 409. */
  capacity?: CapacityHintPort;
}

/**
 * Adds the routes to `api` (the authenticated /api/v2 router). Apps and deployments belong to the account that
 * created them (the admin's to nobody's account): the owner is claimed in the business store with the audit
 * record, in one transaction, right after the runtime change (ARCHITECTURE.md, "Identity and tenancy").
 */
export function mountDeployments(
  api: Router,
  port: DeploymentsPort,
  reads: AgentReadsPort,
  opts: DeploymentRoutesOptions = {},
): void {
  const { identity, capacity } = opts;
  const audit = (ctx: Koa.Context, p: Principal, action: string, target: string): AuditEntry => ({
    principal: principalName(p),
    client: ctx.request.socket.remoteAddress ?? "unknown",
    action,
    target,
    outcome: "ok",
  });
  /**
   * Claims an app name for the principal, or refuses when it is another account's (the admin's included). The
   * admin (break-glass) may act under any name; its deployment is then its own, not the name's owner's.
   */
  const claimApp = async (ctx: Koa.Context, p: Principal, ref: string) => {
    const name = ref.split("@")[0]!;
    if (!identity) return;
    const mine = await identity.claim("app", name, ownerOf(p), audit(ctx, p, "app.claim", `app:${name}`));
    if (!mine && p.kind === "account")
      throw new ConflictError("EE-CONFLICT-STATE", `the app name ${name} belongs to another account`);
  };
  /** Preflight's read-only twin of claimApp. */
  const appAvailable = async (p: Principal, ref: string) => {
    if (p.kind === "admin") return;
    const name = ref.split("@")[0]!;
    const owner = identity && (await identity.owner("app", name));
    if (owner !== undefined && owner !== ownerOf(p))
      throw new ConflictError("EE-CONFLICT-STATE", `the app name ${name} belongs to another account`);
  };
  const ownDeployment = (p: Principal, id: string) =>
    mustOwn(p, identity, "deployment", id, `deployment ${id}`);

  api.post("/deployments", async (ctx) => {
    const p = need(ctx, "deploy");
    const key = ctx.get("idempotency-key") || undefined;
    if (key !== undefined && !/^[\x21-\x7e]{1,128}$/.test(key))
      throw new ValidationError("EE-REQ-INVALID", "Idempotency-Key must be 1..128 visible ASCII characters");
    const req = await deploymentRequest(ctx, p);
    if (req.replaces !== undefined) await ownDeployment(p, req.replaces);
    await claimApp(ctx, p, req.app);
    // Keys are per account: another tenant's key never replays someone else's deployment.
    const scopedKey = key === undefined || p.kind === "admin" ? key : `${p.accountId}:${key}`;
    const out = await withCapacityHint(capacity, req, () =>
      redactingPlacement(p, () => port.create(req, scopedKey)),
    );
    if (identity && !out.replayed) {
      await identity.claim(
        "deployment",
        out.deployment_id,
        ownerOf(p),
        audit(ctx, p, "deployment.create", `deployment:${out.deployment_id}`),
      );
      ctx.state.audited = true;
    }
    ctx.status = 202;
    if (out.replayed) ctx.set("Idempotent-Replayed", "true");
    ctx.body = { ...out, status: port.get(out.deployment_id).status };
  });
  api.get("/deployments", async (ctx) => {
    const p = need(ctx, "read");
    const status = single(ctx, "status");
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status))
      throw new ValidationError("EE-REQ-INVALID", `status: must be one of ${STATUSES.join(", ")}`);
    const limit = intParam(ctx, "limit", 1, 1000);
    const mine = await visible(p, identity, "deployment");
    const rows = port.list({
      ...(status ? { status: status as DeploymentStatus } : {}),
      ...(mine ? { limit: 1000 } : limit ? { limit } : {}),
    });
    const shown = mine ? rows.filter((r) => mine.has(r.deployment_id)).slice(0, limit ?? 100) : rows;
    ctx.body = { deployments: shown.map(deploymentJson) };
  });
  api.get("/deployments/:id", async (ctx) => {
    await ownDeployment(need(ctx, "read"), ctx.params.id!);
    ctx.body = deploymentJson(port.get(ctx.params.id!));
  });
  api.post("/deployments/:id/undeploy", async (ctx) => {
    await ownDeployment(need(ctx, "deploy"), ctx.params.id!);
    ctx.status = 202;
    ctx.body = deploymentJson(await port.undeploy(ctx.params.id!));
  });
  api.post("/preflight", async (ctx) => {
    const p = need(ctx, "deploy");
    const req = await deploymentRequest(ctx, p);
    if (req.replaces !== undefined) await ownDeployment(p, req.replaces);
    await appAvailable(p, req.app);
    const out = await port.preflight(req);
    const shown: PreflightJson =
      p.kind === "admin"
        ? out
        : {
            ...out,
            placement: {
              ...out.placement,
              chosen: out.placement.chosen && unnamed(out.placement.chosen),
              candidates: out.placement.candidates.map(unnamed),
            },
          };
    ctx.body = !out.ok && capacity ? { ...shown, capacity: await capacity.hint(req) } : shown;
  });
  api.post("/apps", async (ctx) => {
    const p = need(ctx, "deploy");
    const { value } = await readJsonBody(ctx, appBody, MAX_COMPOSE_BYTES + 16 * 1024);
    await claimApp(ctx, p, value.name);
    const row = await port.registerApp(
      value,
      identity ? audit(ctx, p, "app.register", `app:${value.name}@${value.version}`) : null,
    );
    ctx.state.audited = identity !== undefined;
    ctx.status = 201;
    ctx.body = appJson(row, false);
  });
  api.get("/apps", async (ctx) => {
    const mine = await visible(need(ctx, "read"), identity, "app");
    ctx.body = {
      apps: port
        .apps()
        .filter((a) => !mine || mine.has(a.name))
        .map((a) => appJson(a, false)),
    };
  });
  api.get("/apps/:ref", async (ctx) => {
    const [name, version] = ctx.params.ref!.split("@");
    const p = need(ctx, "read");
    await mustOwn(p, identity, "app", name!, `app ${ctx.params.ref}`);
    const app = port.apps().find((a) => a.name === name && (version === undefined || a.version === version));
    if (!app) throw new NotFoundError("EE-NOT-FOUND", `app ${ctx.params.ref} is not registered`);
    ctx.body = appJson(app, true);
  });

  /** 404 for an agent the caller does not see (app.ts's agentVisibility). */
  const agentSeen = async (ctx: Koa.Context) => {
    const id = ctx.params.id!;
    const sees = opts.agentVisible && (await opts.agentVisible(ctx));
    const rec = sees ? opts.agent?.(id) : undefined;
    if (sees && (!rec || !sees(rec)))
      throw new NotFoundError("EE-NOT-FOUND", `agent ${id} is not known to this control plane`);
    return id;
  };
  api.get("/agents/:id/stats", async (ctx) => {
    ctx.body = await reads.request(await agentSeen(ctx), "stats");
  });
  api.get("/agents/:id/snapshot", async (ctx) => {
    ctx.body = await reads.request(await agentSeen(ctx), "snapshot");
  });
  api.get("/agents/:id/logs", async (ctx) => {
    // Logs carry the workload's secrets: its tenant's (read) or the admin's, never a provider's.
    need(ctx, "read");
    await agentSeen(ctx);
    const tail = intParam(ctx, "tail", 0, 100_000);
    const sinceRaw = single(ctx, "since");
    const since = sinceRaw === undefined ? undefined : parseSince(sinceRaw);
    const follow = boolParam(ctx, "follow");
    const body: MessageBody<"logs"> = {
      ...(tail !== undefined ? { tail } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(follow ? { follow } : {}),
    };
    const agentId = ctx.params.id!;
    if (!follow) {
      const lines: LogLines = [];
      await reads.logs(agentId, body, (chunk) => lines.push(...chunk));
      ctx.body = { lines };
      return;
    }
    // Follow: newline-delimited JSON until the client goes away or stops reading (either cancels the agent's
    // stream); a failure after the status is the stream's last line, an error body.
    const abort = new AbortController();
    // Listening from the start: a client gone before the status is sent would otherwise leave the agent streaming.
    ctx.req.on("close", () => abort.abort());
    const stream = new PassThrough();
    let started!: () => void;
    const firstLines = new Promise<void>((r) => {
      started = r;
    });
    const done = reads.logs(
      agentId,
      body,
      (chunk) => {
        started();
        for (const line of chunk) stream.write(`${JSON.stringify(line)}\n`);
        const slow = slowConsumer(stream, ctx.res, FOLLOW_MAX_BUFFERED_BYTES, "the log stream");
        if (slow) abort.abort(slow);
      },
      abort.signal,
    );
    // A quick refusal (unknown agent, no workload: one round trip) is still answered as a JSON error. The first
    // lines mean the agent accepted, and the client should start reading them at once.
    await Promise.race([done, firstLines, new Promise((r) => setTimeout(r, FOLLOW_REFUSAL_WAIT_MS))]);
    ctx.req.socket.setTimeout(0);
    ctx.set({ "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache" });
    ctx.status = 200;
    ctx.body = stream;
    // A client that left (its abort has no typed reason) is told nothing.
    const end = (failure: unknown) => {
      if (failure instanceof EeError) stream.write(`${JSON.stringify(failure.toBody())}\n`);
      stream.end();
      if (failure instanceof EeError && failure.code === "EE-PROTO-SLOW-CONSUMER")
        dropIfUndrained(ctx.req.socket, opts.slowConsumerDrainMs);
    };
    done.then(
      () => end(abort.signal.reason),
      (err: unknown) => end(toEeError(err)),
    );
  });
}

/**
 * What a tenant sees of the agents placement considered: ids, sizes, states and reasons, not the hosts' names
 * (which are the providers'). The admin sees everything.
 */
const unnamed = <C extends { vm_name: string | null }>(c: C): C => ({ ...c, vm_name: null });

/** A deploy no agent fits: say whether capacity is on its way (EE-CAP-WARM-PENDING) or not (EE-CAP-NO-ELIGIBLE). */
async function withCapacityHint<T>(
  capacity: CapacityHintPort | undefined,
  req: { datacenter?: string; node_size?: string },
  place: () => Promise<T>,
): Promise<T> {
  try {
    return await place();
  } catch (err) {
    if (!(err instanceof PlacementError) || err.code !== "EE-PLACE-NO-AGENT" || !capacity) throw err;
    const details = { ...(err.details as object), capacity: await capacity.hint(req) };
    throw new PlacementError(err.code, err.message, details);
  }
}

async function redactingPlacement<T>(p: Principal, place: () => T | Promise<T>): Promise<T> {
  try {
    return await place();
  } catch (err) {
    const details =
      err instanceof PlacementError ? (err.details as { agents?: Candidate[] } | undefined) : undefined;
    if (p.kind === "admin" || !details?.agents || !(err instanceof PlacementError)) throw err;
    throw new PlacementError(err.code, err.message, { ...details, agents: details.agents.map(unnamed) });
  }
}

function parseSince(v: string): number {
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new ValidationError("EE-REQ-INVALID", "since: must be ms since the epoch or ISO 8601");
  return ms;
}
