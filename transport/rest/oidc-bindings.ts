// REST routes for GitHub Actions OIDC bindings (admin): which repository's CI may act for which account, with
// which scopes. The exchange itself (POST /api/v2/auth/oidc) verifies the token and looks the binding up through
// the same port. Imports spec/, transport/ and contract/ types only.
import type { Router } from "@koa/router";
import type { IdentityPort, OidcBindingRow } from "../../contract/identity.ts";
import { bindingBody } from "../../contract/rest-bodies.ts";
import type { OidcBindingJson } from "../../contract/rest-responses.ts";
import type { Scope } from "../../spec/scopes.ts";
import { readJsonBody } from "./body.ts";
import { adminRoute, principalOf } from "./guard.ts";
import { iso } from "./json.ts";

export type OidcBindingsPort = Pick<IdentityPort, "createBinding" | "bindings">;

/** Scopes were checked against SCOPES when the binding was made (bindingBody): the store keeps them as strings. */
export const bindingJson = (b: OidcBindingRow): OidcBindingJson => ({
  ...b,
  scopes: b.scopes as Scope[],
  created_at: iso(b.created_at),
});

export function mountOidcBindings(api: Router, port: OidcBindingsPort): void {
  api.post("/oidc/bindings", adminRoute, async (ctx) => {
    const { value } = await readJsonBody(ctx, bindingBody, 4096);
    const row = await port.createBinding(
      principalOf(ctx),
      ctx.request.socket.remoteAddress ?? "unknown",
      value,
    );
    ctx.state.audited = true;
    ctx.status = 201;
    ctx.body = bindingJson(row);
  });
  api.get("/oidc/bindings", adminRoute, async (ctx) => {
    ctx.body = { bindings: (await port.bindings()).map(bindingJson) };
  });
}
