// The agent API's query parameters, strict (unknown, repeated or malformed ones are EE-REQ-INVALID, so a typo never
// silently changes an answer): health's attest and nonce, and the log read's tail, since, follow and service,
// with the log stream as JSON lines that end in one error line on a late failure. May import koa (types),
// spec/errors, lib/log (types) and the runtime port's types.
import type Koa from "koa";
import type { Logger } from "../../lib/log.ts";
import { InternalError, toEeError, ValidationError } from "../../spec/errors.ts";
import type { LogLine } from "../runtime/runtime.ts";

const NONCE_MIN_BYTES = 16;
const NONCE_MAX_BYTES = 64;
const LOG_TAIL_DEFAULT = 1000;
const LOG_TAIL_MAX = 100_000;
const LOG_PARAMS = ["tail", "since", "follow", "service"];
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function single(ctx: Koa.Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new ValidationError("EE-REQ-INVALID", `${name}: give the parameter once`);
  return v;
}

/**
 * `attest` must be exactly "true" or "false" when present: a typo such as `attest=1` silently answering without
 * a quote could pass for an agent that cannot attest.
 */
export function wantsAttestation(ctx: Koa.Context): boolean {
  const attest = single(ctx, "attest");
  if (attest === undefined || attest === "false") return false;
  if (attest === "true") return true;
  throw new ValidationError("EE-REQ-INVALID", `attest: must be true or false, got ${JSON.stringify(attest)}`);
}

/** The caller's nonce: 16..64 bytes of hex (either case), so the binding is fresh for that caller. */
export function parseHealthNonce(nonce: string | undefined): Uint8Array {
  if (nonce === undefined || nonce === "")
    throw new ValidationError("EE-REQ-INVALID", "nonce: required with attest=true");
  if (!/^[0-9a-fA-F]*$/.test(nonce) || nonce.length % 2 !== 0)
    throw new ValidationError("EE-REQ-INVALID", "nonce: must be hex with an even number of digits");
  const bytes = nonce.length / 2;
  if (bytes < NONCE_MIN_BYTES || bytes > NONCE_MAX_BYTES)
    throw new ValidationError(
      "EE-REQ-INVALID",
      `nonce: must be ${NONCE_MIN_BYTES} to ${NONCE_MAX_BYTES} bytes, got ${bytes}`,
    );
  return Buffer.from(nonce, "hex");
}

interface LogQuery {
  tail: number;
  since?: number;
  follow: boolean;
  service?: string;
}

/** Strict: unknown or repeated parameters are refused, so a typo never silently widens or narrows the answer. */
export function parseLogQuery(ctx: Koa.Context): LogQuery {
  for (const name of Object.keys(ctx.query))
    if (!LOG_PARAMS.includes(name))
      throw new ValidationError(
        "EE-REQ-INVALID",
        `${name}: unknown parameter (use ${LOG_PARAMS.join(", ")})`,
      );
  const query: LogQuery = { tail: LOG_TAIL_DEFAULT, follow: false };

  const tail = single(ctx, "tail");
  if (tail !== undefined) {
    if (!/^\d{1,6}$/.test(tail) || Number(tail) > LOG_TAIL_MAX)
      throw new ValidationError("EE-REQ-INVALID", `tail: must be an integer from 0 to ${LOG_TAIL_MAX}`);
    query.tail = Number(tail);
  }
  const since = single(ctx, "since");
  if (since !== undefined) {
    const ms = /^\d{1,15}$/.test(since)
      ? Number(since)
      : ISO_8601.test(since)
        ? Date.parse(since)
        : Number.NaN;
    if (Number.isNaN(ms))
      throw new ValidationError(
        "EE-REQ-INVALID",
        "since: must be ms since the epoch or an ISO 8601 date-time",
      );
    query.since = ms;
  }
  const follow = single(ctx, "follow");
  if (follow !== undefined && follow !== "true" && follow !== "false")
    throw new ValidationError(
      "EE-REQ-INVALID",
      `follow: must be true or false, got ${JSON.stringify(follow)}`,
    );
  query.follow = follow === "true";
  const service = single(ctx, "service");
  if (service !== undefined) {
    if (!SERVICE.test(service)) throw new ValidationError("EE-REQ-INVALID", "service: not a service name");
    query.service = service;
  }
  return query;
}

export async function* onlyService(lines: AsyncIterable<LogLine>, service?: string): AsyncGenerator<LogLine> {
  for await (const line of lines) if (service === undefined || line.service === service) yield line;
}

/**
 * One JSON line per log line. The status is sent before the first line, so a failure later ends the stream with
 * one `{"error": …}` line instead.
 */
export async function* ndjson(lines: AsyncIterable<LogLine>, log: Logger): AsyncGenerator<string> {
  try {
    for await (const line of lines) yield `${JSON.stringify(line)}\n`;
  } catch (err) {
    const e = toEeError(err);
    if (e instanceof InternalError) log.error({ err }, "log stream failed");
    yield `${JSON.stringify(e.toBody())}\n`;
  }
}
