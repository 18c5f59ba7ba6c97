// REST routes for workloads: deployments (create with Idempotency-Key, list, show, undeploy), preflight, the
// app registry (name@version), and the agent reads the CP relays over the agent's WebSocket (logs, stats,
// snapshot). Bodies are validated here; the port (actors/deployments.ts + actors/agent-requests.ts) does the
// rest. Imports spec/, transport/ and actors/ types only.
import { PassThrough } from "node:stream";
import type { Router } from "@koa/router";
import type Koa from "koa";
import { z } from "zod";
import type { LogLines } from "../../actors/agent-requests.ts";
import type { CapacityHint } from "../../actors/capacity/capacity.ts";
import type { DeploymentRequest, PreflightResult } from "../../actors/deployments.ts";
import type { AppRow, DeploymentRow } from "../../actors/store/deployment-store.ts";
import type { DeploymentStatus } from "../../machines/deployment.ts";
import { EeError, NotFoundError, PlacementError, toEeError, ValidationError } from "../../spec/errors.ts";
import { registryAuthSchema } from "../../spec/images.ts";
import {
  appNameSchema,
  datacenterSchema,
  healthSpecSchema,
  MAX_COMPOSE_BYTES,
  MAX_CONTEXT_BYTES,
  type MessageBody,
  nodeSizeSchema,
} from "../../spec/protocol.ts";
import { readJsonBody } from "./body.ts";
import { iso } from "./json.ts";
import { boolParam, intParam, single } from "./query.ts";
import { dropIfUndrained, slowConsumer } from "./stream.ts";

export interface DeploymentsPort {
  preflight(req: DeploymentRequest): PreflightResult;
  create(
    req: DeploymentRequest,
    idempotencyKey?: string,
  ): { deployment_id: string; agent_id: string; replayed: boolean };
  get(id: string): DeploymentRow;
  list(opts: { status?: DeploymentStatus; limit?: number }): DeploymentRow[];
  undeploy(id: string): DeploymentRow;
  registerApp(app: {
    name: string;
    version: string;
    compose: string;
    health?: z.infer<typeof healthSpecSchema>;
  }): AppRow;
  apps(): AppRow[];
}

/** Why no agent fits, as capacity sees it (actors/capacity/capacity.ts). */
export interface CapacityHintPort {
  hint(req: { datacenter?: string; node_size?: string }): Promise<CapacityHint>;
}

export interface AgentReadsPort {
  /** Throws NotFoundError for an unknown agent. */
  request(agentId: string, type: "stats" | "snapshot"): Promise<Record<string, unknown>>;
  logs(
    agentId: string,
    body: MessageBody<"logs">,
    onChunk: (lines: LogLines) => void,
    signal?: AbortSignal,
  ): Promise<void>;
}

const appRef = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9._+-]*)?$/, "must be name or name@version");
const base64 = z
  .string()
  .max(Math.ceil(MAX_CONTEXT_BYTES / 3) * 4 + 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");

const deploymentBody = z.strictObject({
  app: appRef,
  compose: z.string().min(1).max(MAX_COMPOSE_BYTES).optional(),
  /** Build context: a tar archive, base64. */
  context: base64.optional(),
  node_size: nodeSizeSchema.optional(),
  datacenter: datacenterSchema.optional(),
  agent_id: z
    .string()
    .regex(/^agt_[0-9a-f]{24}$/, "must be an agent id (agt_…)")
    .optional(),
  health: healthSpecSchema.optional(),
  /** Update in place: the healthy deployment of the same app this one takes over from. */
  replaces: z.string().min(1).max(128).optional(),
  /** Credentials by registry host; sealed to the chosen agent, never echoed, logged or stored. */
  registry_auth: registryAuthSchema.optional(),
});

const appBody = z.strictObject({
  name: appNameSchema,
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, "must be a version like 1.2.0"),
  compose: z.string().min(1).max(MAX_COMPOSE_BYTES),
  health: healthSpecSchema.optional(),
});

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

/** A deployment as the API shows it (what clients and tests read back). */
export type DeploymentJson = ReturnType<typeof deploymentJson>;

export function deploymentJson(r: DeploymentRow) {
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

function appJson(a: AppRow, withCompose: boolean) {
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

async function deploymentRequest(ctx: Koa.Context): Promise<DeploymentRequest> {
  const { value } = await readJsonBody(ctx, deploymentBody, DEPLOY_BODY_LIMIT);
  const { context, ...rest } = value;
  const req: DeploymentRequest = { ...rest };
  if (context !== undefined) {
    const bytes = Buffer.from(context, "base64");
    if (bytes.length > MAX_CONTEXT_BYTES)
      throw new ValidationError("EE-REQ-INVALID", `context: must be at most ${MAX_CONTEXT_BYTES} bytes`);
    req.context = new Uint8Array(bytes);
  }
  return req;
}

/** Adds the routes to `api` (the admin-authenticated /api/v2 router). */
export function mountDeployments(
  api: Router,
  port: DeploymentsPort,
  reads: AgentReadsPort,
  opts: { slowConsumerDrainMs?: number; capacity?: CapacityHintPort } = {},
): void {
  const { capacity } = opts;
  api.post("/deployments", async (ctx) => {
    const key = ctx.get("idempotency-key") || undefined;
    if (key !== undefined && !/^[\x21-\x7e]{1,128}$/.test(key))
      throw new ValidationError("EE-REQ-INVALID", "Idempotency-Key must be 1..128 visible ASCII characters");
    const req = await deploymentRequest(ctx);
    let out: ReturnType<DeploymentsPort["create"]>;
    try {
      out = port.create(req, key);
    } catch (err) {
      // Nothing fits: say whether capacity is on its way (EE-CAP-WARM-PENDING) or not (EE-CAP-NO-ELIGIBLE).
      if (!(err instanceof PlacementError) || err.code !== "EE-PLACE-NO-AGENT" || !capacity) throw err;
      const details = { ...(err.details as object), capacity: await capacity.hint(req) };
      throw new PlacementError(err.code, err.message, details);
    }
    ctx.status = 202;
    if (out.replayed) ctx.set("Idempotent-Replayed", "true");
    ctx.body = { ...out, status: port.get(out.deployment_id).status };
  });
  api.get("/deployments", (ctx) => {
    const status = single(ctx, "status");
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status))
      throw new ValidationError("EE-REQ-INVALID", `status: must be one of ${STATUSES.join(", ")}`);
    const limit = intParam(ctx, "limit", 1, 1000);
    ctx.body = {
      deployments: port
        .list({ ...(status ? { status: status as DeploymentStatus } : {}), ...(limit ? { limit } : {}) })
        .map(deploymentJson),
    };
  });
  api.get("/deployments/:id", (ctx) => {
    ctx.body = deploymentJson(port.get(ctx.params.id!));
  });
  api.post("/deployments/:id/undeploy", (ctx) => {
    ctx.status = 202;
    ctx.body = deploymentJson(port.undeploy(ctx.params.id!));
  });
  api.post("/preflight", async (ctx) => {
    const req = await deploymentRequest(ctx);
    const result = port.preflight(req);
    ctx.body = !result.ok && capacity ? { ...result, capacity: await capacity.hint(req) } : result;
  });
  api.post("/apps", async (ctx) => {
    const { value } = await readJsonBody(ctx, appBody, MAX_COMPOSE_BYTES + 16 * 1024);
    ctx.status = 201;
    ctx.body = appJson(port.registerApp(value), false);
  });
  api.get("/apps", (ctx) => {
    ctx.body = { apps: port.apps().map((a) => appJson(a, false)) };
  });
  api.get("/apps/:ref", (ctx) => {
    const [name, version] = ctx.params.ref!.split("@");
    const app = port.apps().find((a) => a.name === name && (version === undefined || a.version === version));
    if (!app) throw new NotFoundError("EE-NOT-FOUND", `app ${ctx.params.ref} is not registered`);
    ctx.body = appJson(app, true);
  });

  api.get("/agents/:id/stats", async (ctx) => {
    ctx.body = await reads.request(ctx.params.id!, "stats");
  });
  api.get("/agents/:id/snapshot", async (ctx) => {
    ctx.body = await reads.request(ctx.params.id!, "snapshot");
  });
  api.get("/agents/:id/logs", async (ctx) => {
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

function parseSince(v: string): number {
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms))
    throw new ValidationError("EE-REQ-INVALID", "since: must be ms since the epoch or ISO 8601");
  return ms;
}
