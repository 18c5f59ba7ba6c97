// The agent's local HTTP API on `api_listen` (Koa): `GET /api/health` today; every other path answers a JSON
// 404 until the workload proxy lands. Errors go out as `{"error": {code, message}}` and never carry a stack.
// May import spec/, lib/ and agent/health.ts.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Router } from "@koa/router";
import Koa from "koa";
import type { Logger } from "../lib/log.ts";
import { NotFoundError, toEeError, ValidationError } from "../spec/errors.ts";
import type { AgentHealth } from "./health.ts";

export interface HttpApiDeps {
  health: () => AgentHealth;
  log: Logger;
}

export function createHttpApi(deps: HttpApiDeps): Koa {
  const app = new Koa();
  const router = new Router();

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const ee = toEeError(err);
      // Untyped errors are logged here in full and leave as a bare EE-INTERNAL.
      if (ee.code === "EE-INTERNAL") deps.log.error({ err }, "agent API request failed");
      ctx.status = ee.httpStatus;
      ctx.body = ee.toBody();
    }
  });

  router.get("/api/health", (ctx) => {
    ctx.set("Cache-Control", "no-store");
    ctx.body = deps.health();
  });

  app.use(router.routes());
  app.use((ctx) => {
    throw new NotFoundError("EE-NOT-FOUND", `no route for ${ctx.method} ${ctx.path}`);
  });
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
