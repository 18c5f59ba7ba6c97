// REST routes for capacity (admin): warm targets, reservations, launch orders, the reconcile trigger and the
// node-size presets, plus the two routes launchers call (claim, progress). Bodies are validated strictly here;
// the port (actors/capacity/capacity.ts) does the rest. Imports spec/, transport/ and contract/ types only.
import type { Router } from "@koa/router";
import type Koa from "koa";
import { z } from "zod";
import type { CapacityPort, Order, Target } from "../../contract/capacity.ts";
import { claimBody, progressBody, targetBody } from "../../contract/rest-bodies.ts";
import type { CapacityTargetJson, LaunchOrderJson } from "../../contract/rest-responses.ts";
import { NotFoundError } from "../../spec/errors.ts";
import { readJsonBody } from "./body.ts";
import { adminRoute, need } from "./guard.ts";
import { iso } from "./json.ts";

const orderId = z.string().regex(/^ord-[0-9a-f]{16}$/);

/**
 * Who the launcher calling claim/progress is: the one place that decides it. The admin, or an account holding
 * the `launch` scope (only launcher accounts may: spec/scopes.ts); others get 403 EE-AUTH-SCOPE. Named by
 * account, not key, so a launcher that rotates its key keeps its leases.
 */
export function launcherPrincipal(ctx: Koa.Context): string {
  const p = need(ctx, "launch");
  return p.kind === "admin" ? "admin" : `account:${p.accountId}`;
}

/** Adds the routes to `api` (the authenticated /api/v2 router): admin only, but for the launchers' two. */
export function mountCapacity(api: Router, port: CapacityPort): void {
  api.put("/capacity/targets", adminRoute, async (ctx) => {
    const { value } = await readJsonBody(ctx, targetBody, 4096);
    ctx.body = targetJson(await port.setTarget(value.datacenter, value.node_size, value.min_warm, "admin"));
  });
  api.get("/capacity/targets", adminRoute, async (ctx) => {
    ctx.body = { targets: (await port.targets()).map(targetJson) };
  });
  api.get("/capacity/reservations", adminRoute, async (ctx) => {
    ctx.body = {
      reservations: (await port.reservations()).map((r) => ({ ...r, created_at: iso(r.created_at) })),
    };
  });
  api.get("/capacity/orders", adminRoute, async (ctx) => {
    ctx.body = { orders: (await port.orders()).map(orderJson) };
  });
  api.get("/capacity/sizes", adminRoute, (ctx) => {
    ctx.body = { sizes: port.sizes() };
  });
  api.post("/capacity/reconcile", adminRoute, async (ctx) => {
    ctx.body = await port.reconcile();
  });
  api.post("/capacity/orders/claim", async (ctx) => {
    // Who asks comes first: a caller without the launch scope learns nothing about bodies or orders.
    const launcher = launcherPrincipal(ctx);
    const { value } = await readJsonBody(ctx, claimBody, 4096);
    const claimed = await port.claim(launcher, value.datacenter, value.node_size);
    // An empty claim changed nothing: launchers poll, and each poll would otherwise be an audit record.
    if (!claimed) ctx.state.audited = true;
    ctx.body = claimed
      ? { order: orderJson(claimed.order), bootstrap_token: claimed.bootstrap_token }
      : { order: null };
  });
  api.post("/capacity/orders/:id/progress", async (ctx) => {
    const launcher = launcherPrincipal(ctx);
    const { value } = await readJsonBody(ctx, progressBody, 8192);
    const id = ctx.params.id!;
    // An id that cannot be an order's is simply not found, like any unknown one.
    if (!orderId.safeParse(id).success)
      throw new NotFoundError("EE-NOT-FOUND", `launch order ${id} does not exist`);
    ctx.body = orderJson(await port.progress(launcher, id, value.status, value.reason));
  });
}

const targetJson = (t: Target): CapacityTargetJson => ({ ...t, updated_at: iso(t.updated_at) });

function orderJson(o: Order): LaunchOrderJson {
  return {
    order_id: o.order_id,
    datacenter: o.datacenter,
    node_size: o.node_size,
    status: o.status,
    ...(o.agent_id ? { agent_id: o.agent_id } : {}),
    ...(o.reason ? { reason: o.reason } : {}),
    ...(o.lease_expires_at ? { lease_expires_at: iso(o.lease_expires_at) } : {}),
    created_at: iso(o.created_at),
    updated_at: iso(o.updated_at),
  };
}
