// The control plane's REST API (Koa + @koa/router): public probes and the served contract, then everything
// under /api/v2 behind a bearer token (the admin's, or an account key's with the identity port), each route
// guarded by its scope and by ownership (guard.ts, spec/scopes.md), changes and refusals audited (audit.ts).
// Handlers only translate HTTP to CpView calls and back.
import { PassThrough } from "node:stream";
import { Router } from "@koa/router";
import Koa from "koa";
import type { AgentReadsPort, AgentRecord } from "../../contract/agents.ts";
import type { CapacityPort } from "../../contract/capacity.ts";
import type { DatacentersPort } from "../../contract/datacenters.ts";
import type { DeploymentsPort } from "../../contract/deployments.ts";
import type { EnrollmentsPort, IdentityPort } from "../../contract/identity.ts";
import type { MeasurementsPort } from "../../contract/measurements.ts";
import type { Logger } from "../../lib/log.ts";
import { NotFoundError } from "../../spec/errors.ts";
import { mountAccounts } from "./accounts.ts";
import { auditRequests } from "./audit.ts";
import { adminOnly as adminTokenOnly, requireBearer } from "./auth.ts";
import { type BillingRoutes, mountBilling, mountPaymentWebhook } from "./billing.ts";
import { mountCapacity } from "./capacity.ts";
import { mountDatacenters } from "./datacenters.ts";
import { mountDeployments } from "./deployments.ts";
import { errorMapper } from "./errors.ts";
import { type EventScopeOf, mountEvents } from "./events.ts";
import { adminOnly, adminRoute, need, principalOf, visible } from "./guard.ts";
import { type InspectionPort, mountInspection } from "./inspect.ts";
import { agentJson, toPlainJson, transitionJson } from "./json.ts";
import { mountMeasurements } from "./measurements.ts";
import { renderMetrics } from "./metrics.ts";
import { mountOidcBindings } from "./oidc-bindings.ts";
import { type OidcExchangePort, oidcExchangeRoutes } from "./oidc-exchange.ts";
import { single } from "./query.ts";
import { dropIfUndrained, slowConsumer } from "./stream.ts";
import type { CpView } from "./view.ts";

export interface RestOptions {
  view: CpView;
  adminTokenDigest: Buffer;
  openapi: () => unknown;
  log: Logger;
  /** Interval of SSE keep-alive comments on watch streams. */
  keepAliveMs?: number;
  /** What a watch stream may hold for its client beyond its initial listing (default EVENTS_MAX_BUFFERED_BYTES). */
  eventsMaxBufferedBytes?: number;
  /** How long a stream ended for a slow consumer may sit unread before the connection is dropped. */
  slowConsumerDrainMs?: number;
  /** Trusted measurements admin (/api/v2/measurements). */
  measurements?: MeasurementsPort;
  /** Deployments, preflight, apps, and the agent reads relayed over the agent channel. */
  deployments?: DeploymentsPort;
  agentReads?: AgentReadsPort;
  /** Warm targets, launch orders and launchers' claims (/api/v2/capacity). */
  capacity?: CapacityPort;
  /** Live actors' Stately-inspector events (/agents/{id}/inspect, /deployments/{id}/inspect). */
  inspection?: InspectionPort;
  /** Rates, deposits, balances, statements, verification and the signed payment webhook. */
  billing?: BillingRoutes;
  /** Accounts, keys, ownership and the audit chain; without it only the admin token is accepted. */
  identity?: IdentityPort;
  /** Agent enrollment tokens (POST /accounts/{id}/enrollment-tokens); mounted with `identity`. */
  enrollments?: EnrollmentsPort;
  /** POST /auth/oidc (`--oidc-*`); without it that route answers 404 EE-NOT-FOUND saying how to turn it on. */
  oidcExchange?: OidcExchangePort;
  /** A federation master's datacenters (/api/v2/datacenters; an empty list without). */
  datacenters?: DatacentersPort;
}

/**
 * A watcher that reads is never this far behind: a registration storm of 10,000 agents is about 7 MiB of
 * transitions over several seconds, not in one turn of the loop. Its initial listing comes on top.
 */
export const EVENTS_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function createRestApp(opts: RestOptions): Koa {
  const { view } = opts;
  const app = new Koa();
  app.proxy = false;
  app.silent = true; // errors are logged by errorMapper, once, with context

  const open = new Router();
  open.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });
  open.get("/readyz", (ctx) => {
    const r = view.readiness();
    ctx.status = r.ready ? 200 : 503;
    const { ready: _, reason, ...details } = r;
    ctx.body = r.ready
      ? { status: "ready", reason, ...details }
      : { error: { code: "EE-NOT-READY", message: reason, details } };
  });
  open.get("/metrics", (ctx) => {
    ctx.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ctx.body = renderMetrics(view.metrics());
  });
  open.get("/openapi.json", (ctx) => {
    ctx.body = opts.openapi();
  });

  // Signed by the payment provider, not bearer-authenticated: on the open router, matched before the api's auth.
  if (opts.billing) mountPaymentWebhook(open, opts.billing);

  // Ahead of the bearer-token router: the GitHub token in its body is this route's credential.
  const exchange = oidcExchangeRoutes(opts.oidcExchange);
  const api = new Router({ prefix: "/api/v2" });
  const { identity } = opts;
  api.use(
    requireBearer(
      identity
        ? (token, client) => identity.authenticate(token, client)
        : adminTokenOnly(opts.adminTokenDigest),
    ),
  );
  if (identity) api.use(auditRequests((entry) => identity.audit(entry)));
  const agentVisible = agentVisibility(identity);
  api.get("/agents", async (ctx) => {
    const state = single(ctx, "state");
    const nodeSize = single(ctx, "node_size");
    const sees = await agentVisible(ctx);
    const out = [];
    for (const r of view.agents()) {
      if (state && r.state !== state) continue;
      if (nodeSize && r.node_size !== nodeSize) continue;
      if (sees && !sees(r)) continue;
      out.push(agentJson(r, view.drained(r.agent_id)));
    }
    ctx.body = { agents: out };
  });
  // Registered before /agents/:id: agent ids always start with agt_, so "events" cannot be one.
  api.get("/agents/events", (ctx) => {
    adminOnly(ctx);
    const stream = new PassThrough();
    const write = (event: string, data: unknown) =>
      stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    ctx.status = 200;
    ctx.body = stream;
    if (ctx.query.initial === "1" || ctx.query.initial === "true") {
      for (const r of view.agents()) write("agent", agentJson(r, view.drained(r.agent_id)));
    }
    write("ready", {});
    const cap = stream.readableLength + (opts.eventsMaxBufferedBytes ?? EVENTS_MAX_BUFFERED_BYTES);
    const off = view.onTransition((t) => {
      write("transition", transitionJson(t));
      const slow = slowConsumer(stream, ctx.res, cap, "the watch stream");
      if (!slow) return;
      // The last event tells a client that reads again why the stream ended (eectl agents watch reconnects).
      write("error", slow.toBody());
      done();
      dropIfUndrained(ctx.req.socket, opts.slowConsumerDrainMs);
    });
    const keepAlive = setInterval(() => stream.write(": keep-alive\n\n"), opts.keepAliveMs ?? 15_000);
    const done = () => {
      off();
      clearInterval(keepAlive);
      stream.end();
    };
    ctx.req.on("close", done);
    stream.on("error", done);
  });
  api.get("/agents/:id", async (ctx) => {
    const id = ctx.params.id!;
    const rec = view.agent(id);
    const sees = await agentVisible(ctx);
    const unknown = () => new NotFoundError("EE-NOT-FOUND", `agent ${id} is not known to this control plane`);
    // Seen first: a master relays nothing to a dc for an agent the caller may not see.
    if (!rec || (sees && !sees(rec))) throw unknown();
    const machine = await view.machine(id);
    if (!machine) throw unknown();
    ctx.body = { ...agentJson(rec, view.drained(id)), machine: toPlainJson(machine) };
  });
  // Admin only (a drain steers every tenant's placements); audited by auditRequests and as agent.(un)drained.
  for (const [verb, drained] of [
    ["drain", true],
    ["undrain", false],
  ] as const)
    api.post(`/agents/:id/${verb}`, adminRoute, (ctx) => {
      const id = ctx.params.id!;
      const rec = view.setDrained(id, drained, "admin");
      ctx.body = agentJson(rec, view.drained(id));
    });
  mountEvents(
    api,
    view,
    {
      maxBufferedBytes: opts.eventsMaxBufferedBytes,
      slowConsumerDrainMs: opts.slowConsumerDrainMs,
      keepAliveMs: opts.keepAliveMs,
    },
    eventScope(identity),
  );
  mountDatacenters(api, opts.datacenters);
  if (opts.measurements) mountMeasurements(api, opts.measurements);
  if (opts.deployments && opts.agentReads)
    mountDeployments(api, opts.deployments, opts.agentReads, {
      slowConsumerDrainMs: opts.slowConsumerDrainMs,
      ...(identity ? { identity } : {}),
      agentVisible,
      agent: (id) => view.agent(id),
      ...(opts.capacity ? { capacity: opts.capacity } : {}),
    });
  if (opts.billing) mountBilling(api, opts.billing);
  if (opts.capacity) mountCapacity(api, opts.capacity);
  if (identity) {
    mountAccounts(api, identity, opts.enrollments);
    mountOidcBindings(api, identity);
  }
  if (opts.inspection)
    mountInspection(api, opts.inspection, { slowConsumerDrainMs: opts.slowConsumerDrainMs });

  app.use(errorMapper(opts.log));
  app.use(open.routes()).use(open.allowedMethods());
  app.use(exchange.routes());
  app.use(api.routes()).use(api.allowedMethods());
  return app;
}

/**
 * Which agents a principal sees (null: all, the admin's view). A provider with agents:read sees the agents its
 * account enrolled; a tenant with read sees only the agents running one of its deployments, which carry nothing
 * of other tenants (an agent runs one deployment, or its replacement of the same app and owner).
 */
export type AgentVisibility = (ctx: Koa.Context) => Promise<((r: AgentRecord) => boolean) | null>;

/** The events an account sees: a tenant's (read) of its deployments, a provider's (agents:read) of its agents. */
function eventScope(identity: IdentityPort | undefined): EventScopeOf {
  return async (ctx) => {
    const p = principalOf(ctx);
    if (p.kind === "admin") return null;
    const tenant = p.accountKind === "tenant";
    need(ctx, tenant ? "read" : "agents:read");
    const kind = tenant ? "deployment" : "agent";
    const read = async () => (await visible(p, identity, kind)) ?? new Set<string>();
    let mine = await read();
    return {
      sees: (r) => {
        const id = tenant ? r.data.deployment_id : r.agent_id;
        return typeof id === "string" && mine.has(id);
      },
      refresh: async () => {
        mine = await read();
      },
    };
  };
}

function agentVisibility(identity: IdentityPort | undefined): AgentVisibility {
  return async (ctx) => {
    const p = principalOf(ctx);
    if (p.kind === "admin") return null;
    if (p.accountKind === "tenant") {
      need(ctx, "read");
      const mine = (await visible(p, identity, "deployment")) ?? new Set<string>();
      return (r) => r.deployment_id !== null && mine.has(r.deployment_id);
    }
    need(ctx, "agents:read");
    const mine = (await visible(p, identity, "agent")) ?? new Set<string>();
    return (r) => mine.has(r.agent_id);
  };
}
