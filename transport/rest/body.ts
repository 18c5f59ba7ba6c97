// Reads a JSON request body with a byte cap and validates it with a zod schema, so every REST handler that
// accepts a body refuses oversized, non-JSON and ill-shaped input the same way (EE-REQ-INVALID, 400) before
// anything changes. Returns the raw bytes too, for callers that hash or sign the exact body.
import type Koa from "koa";
import type { z } from "zod";
import { ValidationError } from "../../spec/errors.ts";

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function readRawBody(ctx: Koa.Context, limit = DEFAULT_BODY_LIMIT): Promise<Buffer> {
  const declared = Number(ctx.get("content-length") || "0");
  if (declared > limit) throw new ValidationError("EE-REQ-INVALID", `request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      ctx.req.destroy();
      throw new ValidationError("EE-REQ-INVALID", `request body exceeds ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJsonBody<S extends z.ZodType>(
  ctx: Koa.Context,
  schema: S,
  limit = DEFAULT_BODY_LIMIT,
): Promise<{ value: z.infer<S>; raw: Buffer }> {
  const raw = await readRawBody(ctx, limit);
  return { value: parseJsonBody(ctx, raw, schema), raw };
}

/**
 * Parses a body already read (and, for signed requests, verified over exactly these bytes) as JSON of the
 * schema's shape.
 */
export function parseJsonBody<S extends z.ZodType>(ctx: Koa.Context, raw: Buffer, schema: S): z.infer<S> {
  const type = ctx.get("content-type");
  if (type && !/^application\/json\b/i.test(type))
    throw new ValidationError("EE-REQ-INVALID", "Content-Type must be application/json");
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new ValidationError("EE-REQ-INVALID", "request body is not valid JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "body";
    throw new ValidationError("EE-REQ-INVALID", `${where}: ${issue?.message ?? "invalid"}`, {
      issues: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return parsed.data;
}
