// Audits every authenticated REST request that changed something or was refused, once: after the handler,
// with the principal, the client's address, the route, the path and the outcome (`ok` or the error code).
// Handlers whose change was audited in its own transaction (accounts, keys, owner claims) set
// ctx.state.audited. Failed authentication never gets here: the identity service aggregates it per source.
// Imports spec/ and transport/ only.
import type { Middleware } from "koa";
import type { AuditEntry } from "../../contract/identity.ts";
import { toEeError } from "../../spec/errors.ts";
import { principalName } from "../../spec/scopes.ts";
import { principalOf } from "./guard.ts";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

export function auditRequests(write: (entry: AuditEntry) => Promise<void>): Middleware {
  return async (ctx, next) => {
    let failure: unknown = null;
    try {
      await next();
    } catch (err) {
      failure = err;
    }
    if (!ctx.state.audited && (failure !== null || !READS.has(ctx.method))) {
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? ctx.path;
      await write({
        principal: principalName(principalOf(ctx)),
        client: ctx.request.socket.remoteAddress ?? "unknown",
        action: `${ctx.method} ${route}`,
        target: ctx.path,
        outcome: failure === null ? "ok" : toEeError(failure).code,
      });
    }
    if (failure !== null) throw failure;
  };
}
