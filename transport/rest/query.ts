// Query parameters of the REST handlers, each given at most once, parsed or refused with EE-REQ-INVALID naming
// the parameter. Imports Koa's types and spec/errors.
import type Koa from "koa";
import { ValidationError } from "../../spec/errors.ts";

/** Longer than any id, name or time a query names: a filter value past it is refused, not scanned for. */
const MAX_QUERY_VALUE = 128;

export function single(ctx: Koa.Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new ValidationError("EE-REQ-INVALID", `${name}: give the parameter once`);
  if (v !== undefined && v.length > MAX_QUERY_VALUE)
    throw new ValidationError("EE-REQ-INVALID", `${name}: at most ${MAX_QUERY_VALUE} characters`);
  return v;
}

export function intParam(ctx: Koa.Context, name: string, min: number, max: number): number | undefined {
  const v = single(ctx, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d{1,15}$/.test(v) || n < min || n > max)
    throw new ValidationError("EE-REQ-INVALID", `${name}: must be an integer from ${min} to ${max}`);
  return n;
}

export function boolParam(ctx: Koa.Context, name: string): boolean {
  const v = single(ctx, name);
  if (v === undefined || v === "false") return false;
  if (v === "true") return true;
  throw new ValidationError("EE-REQ-INVALID", `${name}: must be true or false`);
}
