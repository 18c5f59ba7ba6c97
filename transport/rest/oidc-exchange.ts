// POST /api/v2/auth/oidc: a GitHub Actions OIDC token in, a short-lived access token of its binding's account out.
// The one /api/v2 route without a bearer token (the GitHub token is the credential): mounted ahead of the
// authenticated router, throttled and audited per source like a bearer token. Imports spec/, transport/ and
// identity/ and contract/ types only.
import { Router } from "@koa/router";
import type { OidcExchangePort } from "../../contract/identity.ts";
import { exchangeBody } from "../../contract/rest-bodies.ts";
import type { OidcExchangeResult } from "../../identity/oidc-exchange.ts";
import { MAX_TOKEN_LENGTH } from "../../identity/oidc-verifier.ts";
import { NotFoundError, toEeError } from "../../spec/errors.ts";
import { readJsonBody } from "./body.ts";

export type { OidcExchangePort } from "../../contract/identity.ts";

export function oidcExchangeRoutes(port: OidcExchangePort | undefined): Router {
  const router = new Router({ prefix: "/api/v2" });
  router.post("/auth/oidc", async (ctx) => {
    if (!port)
      throw new NotFoundError(
        "EE-NOT-FOUND",
        "this control plane exchanges no OIDC tokens: start it with --oidc-issuer, --oidc-audience and --oidc-jwks",
      );
    const client = ctx.request.socket.remoteAddress ?? "unknown";
    const { value } = await readJsonBody(ctx, exchangeBody, MAX_TOKEN_LENGTH + 1024);
    let result: OidcExchangeResult;
    try {
      result = await port.exchange(value.token, client);
    } catch (err) {
      // Refused tokens are counted per source by the throttle; what ours failed at (503) is recorded here.
      const e = toEeError(err);
      if (e.httpStatus !== 401 && e.httpStatus !== 429)
        await port.audit({
          principal: "oidc",
          client,
          action: "oidc.exchange",
          target: "auth/oidc",
          outcome: e.code,
        });
      throw err;
    }
    const { subject, body } = result;
    await port.audit({
      principal: `oidc:repository_id=${subject.repository_id}`,
      client,
      action: "oidc.exchange",
      target: `account:${body.account_id}`,
      outcome: "ok",
      details: { ref: subject.ref, jti: subject.jti, scopes: body.scopes },
    });
    ctx.body = body;
  });
  return router;
}
