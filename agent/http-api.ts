// The agent's local HTTP API on `api_listen`. Koa serves `/api/*`: the public `health` (optionally with a
// fresh quote, see attestHealth) and, HMAC-signed (transport/request-signing.ts), the reads `state-snapshot`,
// `logs` (which carry secrets), `stats` and the writes `deploy`, `undeploy`, which also need the envelope of the
// CP key the agent pinned (the HMAC secret alone only reads). A write's signature headers are checked before its
// body is read, and only a few bodies are read at once. Every other path, upgrades included, goes to the workload
// through agent/proxy.ts; `/api/*` is reserved and never proxied. Errors go out as `{"error": {code, message}}`
// and never carry a stack. Its parts: request limits (http-api/limiter.ts), query parameters and the log stream
// (http-api/query.ts), write bodies (http-api/write-bodies.ts).
// May import spec/, lib/, transport/rest/{errors,body}.ts, transport/request-signing.ts, agent/health.ts,
// agent/proxy.ts, agent/quote-binding.ts, agent/workload.ts (types) and the quote provider port (types).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Duplex, Readable } from "node:stream";
import { Router } from "@koa/router";
import Koa from "koa";
import { type EnvelopeVerifier, originOf } from "../attestation/cp-envelope.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { listenOn } from "../lib/listen.ts";
import type { Logger } from "../lib/log.ts";
import { BusyError, NotFoundError, QuoteUnavailableError, WorkloadError } from "../spec/errors.ts";
import { MAX_COMPOSE_BYTES, MAX_CONTEXT_BYTES } from "../spec/protocol.ts";
import { createRequestVerifier } from "../transport/request-signing.ts";
import { parseJsonBody, readRawBody } from "../transport/rest/body.ts";
import { errorMapper } from "../transport/rest/errors.ts";
import type { AgentHealth, HealthAttestation } from "./health.ts";
import { BODY_READ_LIMITS, createLimiter, HEALTH_QUOTE_LIMITS, type Limits } from "./http-api/limiter.ts";
import {
  ndjson,
  onlyService,
  parseHealthNonce,
  parseLogQuery,
  single,
  wantsAttestation,
} from "./http-api/query.ts";
import { deployBodySchema, deployRequest, undeployBodySchema } from "./http-api/write-bodies.ts";
import { createWorkloadProxy, refuseUpgrade } from "./proxy.ts";
import { bindQuote } from "./quote-binding.ts";
import type { LogLine } from "./runtime/runtime.ts";
import type { Workloads } from "./workload.ts";

export type { Limits };

export interface HttpApiDeps {
  /**
   * The CP envelope check for deploy/undeploy (the verifier the WebSocket commands go through). Every HTTP write
   * must carry an envelope, whatever the policy but `disabled`: the HMAC secret is the session's, not the CP's.
   */
  envelope: Pick<EnvelopeVerifier, "check">;
  health: () => AgentHealth;
  /** The agent's raw 32-byte Ed25519 public key, bound into health quotes. */
  agentPubkey: Uint8Array;
  quoteProvider: QuoteProvider;
  log: Logger;
  /** Bounds on health quotes; defaults to HEALTH_QUOTE_LIMITS. */
  quoteLimits?: Limits;
  /** Bounds on write bodies read at once; defaults to BODY_READ_LIMITS. */
  bodyLimits?: Limits;
  workloads: Workloads;
  /** The secret the CP issued at registration (signs all but health); null before the first registration. */
  apiSecret: () => Uint8Array | null;
  /** The agent's state snapshot, as it is sent to the CP with registration. */
  snapshot: () => Record<string, unknown>;
}

/**
 * The largest signed write: a deploy with the largest build context as base64 and the largest compose file,
 * allowing for JSON escaping of the compose text, plus room for the other fields. Read before verification, so
 * an unsigned caller cannot make the agent hold more than this per request.
 */
export const MAX_WRITE_BODY_BYTES = Math.ceil(MAX_CONTEXT_BYTES / 3) * 4 + 2 * MAX_COMPOSE_BYTES + 64 * 1024;

export interface HttpApi {
  /** The server's request listener: `/api/*` to the agent's own routes, everything else to the workload. */
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** The server's upgrade listener, split the same way; `/api/*` is never upgraded. */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Ends proxied tunnels, which the HTTP server no longer tracks once upgraded. */
  closeTunnels(): void;
}

/** `/api` and below are the agent's own; so is anything not in origin form (`*`, absolute URLs). */
function isAgentPath(url: string | undefined): boolean {
  if (!url?.startsWith("/")) return true;
  const path = url.split("?", 1)[0] ?? "";
  return path === "/api" || path.startsWith("/api/");
}

export function createHttpApi(deps: HttpApiDeps): HttpApi {
  const app = new Koa();
  const router = new Router();

  app.silent = true; // errorMapper logs, once, with context
  app.use(errorMapper(deps.log));

  const limiter = createLimiter(
    deps.quoteLimits ?? HEALTH_QUOTE_LIMITS,
    () => new QuoteUnavailableError("EE-ATT-PROVIDER", "quote provider busy; retry later"),
  );
  const bodyReads = createLimiter(
    deps.bodyLimits ?? BODY_READ_LIMITS,
    () => new BusyError("EE-BUSY", "the agent is reading as many request bodies as it allows; retry later"),
  );
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
  const verifier = createRequestVerifier({ secret: deps.apiSecret });
  const proxy = createWorkloadProxy({
    target: () => deps.workloads.proxyTarget(),
    log: deps.log.child({ part: "proxy" }),
  });

  async function attestHealth(nonce: Uint8Array): Promise<HealthAttestation> {
    const running = deps.workloads.current();
    const { reportData, ...binds } = bindQuote(
      "health",
      nonce,
      deps.agentPubkey,
      running?.step === "running" ? running : undefined,
    );
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
      ...binds,
      nonce: hex(nonce),
      agent_pubkey: hex(deps.agentPubkey),
      report_data: hex(reportData),
      quote: Buffer.from(quote.buffer, quote.byteOffset, quote.byteLength).toString("base64"),
    };
  }

  /**
   * A write: its signature headers are checked first (a caller who cannot have signed is refused without a byte of
   * its body read), then its body is read in one of the few body slots and verified over exactly those bytes;
   * nothing is parsed before that. A refused write closes its connection, so an unread body is not drained.
   */
  const signedWrite =
    (handle: (ctx: Koa.Context, body: Buffer) => void): Koa.Middleware =>
    async (ctx) => {
      try {
        verifier.precheck(ctx.headers);
        await bodyReads.run(async () => {
          const body = await readRawBody(ctx, MAX_WRITE_BODY_BYTES);
          verifier.verify({ method: ctx.method, path: ctx.originalUrl, body, headers: ctx.headers });
          handle(ctx, body);
        });
      } catch (err) {
        if (!ctx.req.complete) ctx.set("Connection", "close");
        if (err instanceof BusyError) ctx.set("Retry-After", "1");
        throw err;
      }
    };

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

  // Reads carry no body: the signature covers the method, the path with its query (so `tail` cannot be
  // changed) and an empty body. Whatever body a client sends with a GET is never read.
  const signedRead: Koa.Middleware = async (ctx, next) => {
    verifier.verify({
      method: ctx.method,
      path: ctx.originalUrl,
      body: new Uint8Array(0),
      headers: ctx.headers,
    });
    await next();
  };

  router.get("/api/state-snapshot", signedRead, (ctx) => {
    ctx.set("Cache-Control", "no-store");
    ctx.body = deps.snapshot();
  });

  router.get("/api/stats", signedRead, async (ctx) => {
    ctx.set("Cache-Control", "no-store");
    ctx.body = await deps.workloads.stats();
  });

  router.get("/api/logs", signedRead, async (ctx) => {
    const query = parseLogQuery(ctx);
    // A follow sends its status before the first line arrives, so the one failure known up front is told now.
    if (deps.workloads.current() === null)
      throw new WorkloadError("EE-WORKLOAD-NONE", "no workload has been deployed on this agent");
    const abort = new AbortController();
    ctx.res.once("close", () => abort.abort());
    const opts = { tail: query.tail, follow: query.follow, signal: abort.signal };
    const lines = onlyService(
      deps.workloads.logs(query.since === undefined ? opts : { ...opts, since: query.since }),
      query.service,
    );
    ctx.set("Cache-Control", "no-store");
    if (!query.follow) {
      const collected: LogLine[] = [];
      for await (const line of lines) collected.push(line);
      ctx.body = { lines: collected };
      return;
    }
    ctx.type = "application/x-ndjson";
    ctx.body = Readable.from(ndjson(lines, deps.log));
    ctx.flushHeaders();
  });

  // The HMAC secret is the session's, handed to whichever CP the agent registered with and to nobody else, but it
  // is a shared secret: a write needs the envelope of the pinned CP key as well, under every policy but disabled.
  router.post(
    "/api/deploy",
    signedWrite((ctx, raw) => {
      const body = parseJsonBody(ctx, raw, deployBodySchema);
      const req = deployRequest(body);
      // The request has the deploy frame's fields (registry credentials come only sealed, over the CP link); its
      // context Buffer is a Uint8Array, hashed as it is.
      const { registry_auth: _none, ...signed } = req;
      const command = body.envelope ? { ...signed, envelope: body.envelope } : signed;
      deps.envelope.check("deploy", command, { requireEnvelope: true });
      const origin = originOf(command);
      ctx.status = 202;
      ctx.body = deps.workloads.deploy(origin ? { ...req, origin } : req);
    }),
  );

  router.post(
    "/api/undeploy",
    signedWrite((ctx, raw) => {
      const body = parseJsonBody(ctx, raw, undeployBodySchema);
      deps.envelope.check(
        "undeploy",
        { deployment_id: body.deployment_id, ...(body.envelope ? { envelope: body.envelope } : {}) },
        { requireEnvelope: true },
      );
      ctx.status = 202;
      ctx.body = deps.workloads.undeploy(body.deployment_id);
    }),
  );

  // Unmatched /api/* paths and methods fall through to errorMapper's EE-NOT-FOUND.
  app.use(router.routes());
  const serveApi = app.callback();

  return {
    onRequest(req, res) {
      if (isAgentPath(req.url)) void serveApi(req, res);
      else proxy.forward(req, res);
    },
    onUpgrade(req, socket, head) {
      if (isAgentPath(req.url))
        refuseUpgrade(
          socket,
          new NotFoundError("EE-NOT-FOUND", `no upgrade on ${req.url}: /api/ is the agent's`),
        );
      else proxy.upgrade(req, socket, head);
    },
    closeTunnels: () => proxy.closeTunnels(),
  };
}

export interface HttpApiServer {
  /** e.g. http://127.0.0.1:9001, with the real port when api_listen asked for port 0. */
  url: string;
  /** Stops listening and ends every open request, log stream and tunnel. */
  close(): Promise<void>;
}

function urlOf(server: Server): string {
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

/**
 * Binds the API; a bind failure (address in use, no such address) is EE-LISTEN-* naming `at.setting`, what the
 * operator changes to move it (default: the config key).
 */
export async function listenHttpApi(
  api: HttpApi,
  at: { host: string; port: number; setting?: string | undefined },
): Promise<HttpApiServer> {
  const server = createServer(api.onRequest);
  server.on("upgrade", api.onUpgrade);
  await listenOn(server, { ...at, setting: at.setting ?? "api_listen in the agent config" });
  return {
    url: urlOf(server),
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        // Log follows and proxied streams never end by themselves; an agent that stops ends them.
        server.closeAllConnections();
        api.closeTunnels();
      }),
  };
}
