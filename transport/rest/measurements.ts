// REST routes for trusted measurements (admin): list approved entries and refused baselines, add, remove, and
// approve a baseline. Bodies are validated strictly before anything changes; the port (implemented by
// actors/trusted-measurements.ts) audits every change. Imports spec/, transport/ and contract/ types only.
import type { Router } from "@koa/router";
import type { Baseline, MeasurementsPort, TrustedEntry } from "../../contract/measurements.ts";
import { measurementBody } from "../../contract/rest-bodies.ts";
import type { MeasurementBaselineJson, TrustedMeasurementJson } from "../../contract/rest-responses.ts";
import { ValidationError } from "../../spec/errors.ts";
import { readJsonBody } from "./body.ts";
import { adminRoute } from "./guard.ts";
import { iso } from "./json.ts";

// Every route here is admin only (adminRoute), so the principal recorded is always the admin.
const ADMIN = "admin";

/** Adds the routes to `api` (the admin-authenticated /api/v2 router). */
export function mountMeasurements(api: Router, port: MeasurementsPort): void {
  api.get("/measurements", adminRoute, (ctx) => {
    ctx.body = { trusted: port.list().map(entryJson), baselines: port.baselines().map(baselineJson) };
  });
  api.post("/measurements", adminRoute, async (ctx) => {
    const { value } = await readJsonBody(ctx, measurementBody, 16 * 1024);
    ctx.status = 201;
    ctx.body = entryJson(port.add(value, ADMIN));
  });
  api.delete("/measurements/:id", adminRoute, (ctx) => {
    port.remove(pathId(ctx.params.id), ADMIN);
    ctx.status = 204;
  });
  api.post("/measurements/baselines/:id/approve", adminRoute, (ctx) => {
    ctx.status = 201;
    ctx.body = entryJson(port.approve(pathId(ctx.params.id), ADMIN));
  });
}

const entryJson = (e: TrustedEntry): TrustedMeasurementJson => ({ ...e, added_at: iso(e.added_at) });
const baselineJson = (b: Baseline): MeasurementBaselineJson => ({
  ...b,
  first_seen: iso(b.first_seen),
  last_seen: iso(b.last_seen),
});

function pathId(v: string | undefined): number {
  if (v === undefined || !/^[1-9]\d{0,14}$/.test(v))
    throw new ValidationError("EE-REQ-INVALID", "the id in the path must be a positive integer");
  return Number(v);
}
