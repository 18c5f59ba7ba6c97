// The agent's local HTTP API on `api_listen` (Koa): `GET /api/health` (optionally with a fresh quote, see
// attestHealth) today; every other path answers a JSON 404 until the workload proxy lands. Errors go out as
// `{"error": {code, message}}` and never carry a stack.
// May import spec/, lib/, transport/rest/errors.ts, agent/health.ts, attestation/report-data.ts and the quote
// provider port (types).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Router } from "@koa/router";
import Koa from "koa";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { reportDataFor } from "../attestation/report-data.ts";
import type { Logger } from "../lib/log.ts";
import { EeError, ValidationError, WS_CLOSE } from "../spec/errors.ts";
import { errorMapper } from "../transport/rest/errors.ts";
import type { AgentHealth, HealthAttestation } from "./health.ts";

export interface HttpApiDeps {
  health: () => AgentHealth;
  /** The agent's raw 32-byte Ed25519 public key, bound into health quotes. */
  agentPubkey: Uint8Array;
  quoteProvider: QuoteProvider;
  log: Logger;
  /** Bounds on health quotes; defaults to HEALTH_QUOTE_LIMITS. */
  quoteLimits?: QuoteLimits;
}

export interface QuoteLimits {
  /** Quotes requested from the provider at once. */
  inFlight: number;
  /** Requests waiting (FIFO) for a slot; past this they are refused at once. */
  waiting: number;
}

// A TD's quoting (TSM → QGS) is slow and shared with the CP link's register/refresh quotes, and the health
// endpoint is public. A few quotes run at once; a short queue absorbs bursts from honest monitors rather than
// failing them; past that the caller is refused at once, so a flood costs neither TD quoting capacity nor
// unbounded memory. Only health quotes go through this limiter: CP-link quotes never wait behind it.
export const HEALTH_QUOTE_LIMITS: QuoteLimits = { inFlight: 4, waiting: 16 };

export const NONCE_MIN_BYTES = 16;
export const NONCE_MAX_BYTES = 64;

/**
 * The quote provider cannot give this caller a quote (failed, or saturated). Not AttestationError: that family
 * answers 422 (the caller's evidence is bad), while here the caller did nothing wrong and the service is
 * unavailable, so 503 — the same stable code, EE-ATT-PROVIDER, that the CP link reports for provider failures.
 */
class QuoteUnavailableError extends EeError<"EE-ATT-PROVIDER"> {
  override readonly name = "QuoteUnavailableError";
  readonly httpStatus = 503;
  readonly wsClose = WS_CLOSE.internal;
}

interface Limiter {
  /** Runs `task` when a slot is free; throws QuoteUnavailableError when the queue is full. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

function createLimiter(limits: QuoteLimits): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (active < limits.inFlight) active++;
      else if (waiting.length < limits.waiting) await new Promise<void>((resolve) => waiting.push(resolve));
      else throw new QuoteUnavailableError("EE-ATT-PROVIDER", "quote provider busy; retry later");
      try {
        return await task();
      } finally {
        // Hand the slot straight to the next waiter so `active` never drops below the queue's demand.
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}

function single(ctx: Koa.Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw new ValidationError("EE-REQ-INVALID", `${name}: give the parameter once`);
  return v;
}

/**
 * `attest` must be exactly "true" or "false" when present: a typo such as `attest=1` silently answering without
 * a quote could pass for an agent that cannot attest.
 */
function wantsAttestation(ctx: Koa.Context): boolean {
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

export function createHttpApi(deps: HttpApiDeps): Koa {
  const app = new Koa();
  const router = new Router();

  app.silent = true; // errorMapper logs, once, with context
  app.use(errorMapper(deps.log));

  const limiter = createLimiter(deps.quoteLimits ?? HEALTH_QUOTE_LIMITS);
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

  async function attestHealth(nonce: Uint8Array): Promise<HealthAttestation> {
    const reportData = reportDataFor("health", nonce, deps.agentPubkey);
    let quote: Uint8Array;
    try {
      quote = await limiter.run(() => deps.quoteProvider.getQuote(reportData));
    } catch (err) {
      if (err instanceof QuoteUnavailableError) throw err;
      // The provider's message names device paths and internals: logged here, not told to a public caller.
      deps.log.warn({ err }, "health quote failed");
      throw new QuoteUnavailableError("EE-ATT-PROVIDER", "quote provider failed to produce a quote");
    }
    return {
      provider: deps.quoteProvider.name,
      purpose: "health",
      nonce: hex(nonce),
      agent_pubkey: hex(deps.agentPubkey),
      report_data: hex(reportData),
      quote: Buffer.from(quote.buffer, quote.byteOffset, quote.byteLength).toString("base64"),
    };
  }

  router.get("/api/health", async (ctx) => {
    ctx.set("Cache-Control", "no-store");
    if (!wantsAttestation(ctx)) {
      ctx.body = deps.health();
      return;
    }
    // Validate before queueing: a bad request never takes a quoting slot.
    const nonce = parseHealthNonce(single(ctx, "nonce"));
    try {
      const attestation = await attestHealth(nonce);
      ctx.body = { ...deps.health(), attestation };
    } catch (err) {
      if (err instanceof QuoteUnavailableError) ctx.set("Retry-After", "1");
      throw err;
    }
  });

  // Unmatched paths fall through to errorMapper's EE-NOT-FOUND until the workload proxy lands.
  app.use(router.routes());
  return app;
}

export interface HttpApiServer {
  /** e.g. http://127.0.0.1:9001, with the real port when api_listen asked for port 0. */
  url: string;
  close(): Promise<void>;
}

function urlOf(server: Server): string {
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

/** Binds the API; a bind failure (address in use, no such address) is a config error on api_listen. */
export function listenHttpApi(app: Koa, at: { host: string; port: number }): Promise<HttpApiServer> {
  const server = createServer(app.callback());
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new ValidationError(
          "EE-CONFIG-INVALID",
          `api_listen ${at.host}:${at.port}: cannot listen (${err.code})`,
          {
            key: "api_listen",
          },
        ),
      ),
    );
    server.listen(at.port, at.host, () =>
      resolve({
        url: urlOf(server),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
          }),
      }),
    );
  });
}
