// The control plane's REST API (Koa + @koa/router): public probes and the served contract, then everything
// under /api/v2 behind the admin bearer token. Handlers only translate HTTP to CpView calls and back.
import { PassThrough } from "node:stream";
import { Router } from "@koa/router";
import Koa from "koa";
import type { Logger } from "../../lib/log.ts";
import { NotFoundError } from "../../spec/errors.ts";
import { requireAdmin } from "./auth.ts";
import { type CapacityPort, mountCapacity } from "./capacity.ts";
import { type AgentReadsPort, type DeploymentsPort, mountDeployments } from "./deployments.ts";
import { errorMapper } from "./errors.ts";
import { mountEvents } from "./events.ts";
import { type InspectionPort, mountInspection } from "./inspect.ts";
import { agentJson, toPlainJson, transitionJson } from "./json.ts";
import { type MeasurementsPort, mountMeasurements } from "./measurements.ts";
import { renderMetrics } from "./metrics.ts";
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

  const api = new Router({ prefix: "/api/v2" });
  api.use(requireAdmin(opts.adminTokenDigest));
  api.get("/agents", (ctx) => {
    const state = single(ctx, "state");
    const nodeSize = single(ctx, "node_size");
    const out = [];
    for (const r of view.agents()) {
      if (state && r.state !== state) continue;
      if (nodeSize && r.node_size !== nodeSize) continue;
      out.push(agentJson(r));
    }
    ctx.body = { agents: out };
  });
  // Registered before /agents/:id: agent ids always start with agt_, so "events" cannot be one.
  api.get("/agents/events", (ctx) => {
    const stream = new PassThrough();
    const write = (event: string, data: unknown) =>
      stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    ctx.status = 200;
    ctx.body = stream;
    if (ctx.query.initial === "1" || ctx.query.initial === "true") {
      for (const r of view.agents()) write("agent", agentJson(r));
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
  api.get("/agents/:id", (ctx) => {
    const id = ctx.params.id!;
    const rec = view.agent(id);
    const machine = view.machine(id);
    if (!rec || !machine)
      throw new NotFoundError("EE-NOT-FOUND", `agent ${id} is not known to this control plane`);
    ctx.body = { ...agentJson(rec), machine: toPlainJson(machine) };
  });
  mountEvents(api, view, {
    maxBufferedBytes: opts.eventsMaxBufferedBytes,
    slowConsumerDrainMs: opts.slowConsumerDrainMs,
    keepAliveMs: opts.keepAliveMs,
  });
  if (opts.measurements) mountMeasurements(api, opts.measurements);
  if (opts.deployments && opts.agentReads)
    mountDeployments(api, opts.deployments, opts.agentReads, {
      slowConsumerDrainMs: opts.slowConsumerDrainMs,
      ...(opts.capacity ? { capacity: opts.capacity } : {}),
    });
  if (opts.capacity) mountCapacity(api, opts.capacity);
  if (opts.inspection)
    mountInspection(api, opts.inspection, { slowConsumerDrainMs: opts.slowConsumerDrainMs });

  app.use(errorMapper(opts.log));
  app.use(open.routes()).use(open.allowedMethods());
  app.use(api.routes()).use(api.allowedMethods());
  return app;
}
