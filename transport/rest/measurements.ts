// REST routes for trusted measurements (admin): list approved entries and refused baselines, add, remove, and
// approve a baseline. Bodies are validated strictly before anything changes; the port (implemented by
// actors/trusted-measurements.ts) audits every change. Imports spec/, transport/ and actors/ types only.
import type { Router } from "@koa/router";
import { z } from "zod";
import type { Baseline, NewTrustedMeasurement, TrustedEntry } from "../../actors/trusted-measurements.ts";
import { ValidationError } from "../../spec/errors.ts";
import { measurementHexSchema } from "../../spec/protocol.ts";
import { readJsonBody } from "./body.ts";

export interface MeasurementsPort {
  list(): readonly TrustedEntry[];
  baselines(): Baseline[];
  add(input: NewTrustedMeasurement, by: string): TrustedEntry;
  remove(id: number, by: string): void;
  approve(baselineId: number, by: string): TrustedEntry;
}

const newMeasurementSchema = z.strictObject({
  node_size: z.string().min(1).max(64),
  mrtd: measurementHexSchema,
  rtmr: z
    .tuple([measurementHexSchema, measurementHexSchema, measurementHexSchema, measurementHexSchema])
    .optional(),
  note: z.string().max(512).optional(),
});

// The only principal until tenancy lands: every /api/v2 route is behind the admin token.
const ADMIN = "admin";

/** Adds the routes to `api` (the admin-authenticated /api/v2 router). */
export function mountMeasurements(api: Router, port: MeasurementsPort): void {
  api.get("/measurements", (ctx) => {
    ctx.body = { trusted: port.list(), baselines: port.baselines() };
  });
  api.post("/measurements", async (ctx) => {
    const { value } = await readJsonBody(ctx, newMeasurementSchema, 16 * 1024);
    ctx.status = 201;
    ctx.body = port.add(value, ADMIN);
  });
  api.delete("/measurements/:id", (ctx) => {
    port.remove(pathId(ctx.params.id), ADMIN);
    ctx.status = 204;
  });
  api.post("/measurements/baselines/:id/approve", (ctx) => {
    ctx.status = 201;
    ctx.body = port.approve(pathId(ctx.params.id), ADMIN);
  });
}

function pathId(v: string | undefined): number {
  if (v === undefined || !/^[1-9]\d{0,14}$/.test(v))
    throw new ValidationError("EE-REQ-INVALID", "the id in the path must be a positive integer");
  return Number(v);
}
