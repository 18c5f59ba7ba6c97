// Maps every error to the contract's body `{"error": {code, message, details?}}` in one place. Untyped errors
// become EE-INTERNAL: logged with their stack here, never sent to the client.
import type { Middleware } from "koa";
import type { Logger } from "../../lib/log.ts";
import { InternalError, NotFoundError, toEeError, ValidationError } from "../../spec/errors.ts";

export function errorMapper(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined)
        throw new NotFoundError("EE-NOT-FOUND", `no route for ${ctx.method} ${ctx.path}`);
      if (ctx.status === 405 && ctx.body === undefined)
        throw new ValidationError("EE-REQ-INVALID", `${ctx.method} is not allowed on ${ctx.path}`);
    } catch (err) {
      const e = isBodyParseError(err)
        ? new ValidationError("EE-REQ-INVALID", "request body is not valid JSON")
        : toEeError(err);
      if (e instanceof InternalError)
        log.error({ err, method: ctx.method, path: ctx.path }, "request failed");
      ctx.status = e.httpStatus;
      ctx.body = e.toBody();
      if (e.httpStatus === 401) ctx.set("WWW-Authenticate", 'Bearer realm="easyenclave"');
      const retry = (e.details as { retry_after_s?: unknown } | undefined)?.retry_after_s;
      if (e.code === "EE-AUTH-THROTTLED" && typeof retry === "number") ctx.set("Retry-After", String(retry));
    }
  };
}

function isBodyParseError(err: unknown): boolean {
  return typeof err === "object" && err !== null && "type" in err && err.type === "entity.parse.failed";
}
