// REST routes for GitHub Actions OIDC bindings (admin): which repository's CI may act for which account, with
// which scopes. The exchange itself (POST /api/v2/auth/oidc) verifies the token and looks the binding up through
// the same port. Imports spec/, transport/ and contract/ types only.
import type { Router } from "@koa/router";
import { z } from "zod";
import type { IdentityPort, OidcBindingRow } from "../../contract/identity.ts";
import { SCOPES } from "../../spec/scopes.ts";
import { readJsonBody } from "./body.ts";
import { adminRoute, principalOf } from "./guard.ts";
import { iso } from "./json.ts";

export type OidcBindingsPort = Pick<IdentityPort, "createBinding" | "bindings">;

const bindingBody = z.strictObject({
  account_id: z.string().regex(/^acc_[0-9a-f]{24}$/, "must be an account id (acc_…)"),
  /** GitHub's numeric repository id (the `repository_id` claim), never the repository's name. */
  repository_id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** The owner's numeric id (`repository_owner_id`): pins the organisation too, across transfers. */
  repository_owner_id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  ref: z
    .string()
    .regex(/^refs\/[A-Za-z0-9._/-]{1,250}$/, "must be a git ref like refs/heads/main")
    .optional(),
  /** The job's deployment environment (`environment` claim), e.g. production. */
  environment: z
    .string()
    .regex(/^[A-Za-z0-9._ -]{1,255}$/, "must be a GitHub environment name")
    .optional(),
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
});

export const bindingJson = (b: OidcBindingRow) => ({ ...b, created_at: iso(b.created_at) });

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
