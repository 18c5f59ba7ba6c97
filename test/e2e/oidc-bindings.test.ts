// What the OIDC exchange plugs into: an admin binds a GitHub repository (by numeric id, optionally a ref) to an
// account with scopes; `identity.bindings(repository_id)` finds it and `identity.issueAccessToken` mints a
// short-lived token of the API key format that the REST API accepts with exactly those scopes, until it expires.
import test from "ava";
import { startTestCp, waitFor } from "../helpers/cluster.ts";
import { postAs } from "../helpers/workloads.ts";

interface Err {
  error: { code: string };
}

test("bindings are admin-only and scope-checked; an issued access token works with its scopes until it expires", async (t) => {
  const { cp, api } = await startTestCp(t);
  const acc = await postAs<{ account_id: string }>(api, "/api/v2/accounts", {
    name: "ci-tenant",
    kind: "tenant",
  });
  const tenant = acc.body.account_id;
  const key = await postAs<{ token: string }>(api, `/api/v2/accounts/${tenant}/keys`, {
    scopes: ["deploy", "read"],
  });

  const bound = await postAs<{
    binding_id: string;
    repository_id: number;
    ref: string | null;
    scopes: string[];
  }>(api, "/api/v2/oidc/bindings", {
    account_id: tenant,
    repository_id: 123456789,
    ref: "refs/heads/main",
    scopes: ["read", "deploy"],
  });
  t.is(bound.status, 201, JSON.stringify(bound.body));
  t.like(bound.body, { repository_id: 123456789, ref: "refs/heads/main", scopes: ["deploy", "read"] });
  const byTenant = await postAs<Err>(
    api,
    "/api/v2/oidc/bindings",
    { account_id: tenant, repository_id: 1, scopes: ["read"] },
    key.body.token,
  );
  t.is(byTenant.status, 403);
  const wrongScope = await postAs<Err>(api, "/api/v2/oidc/bindings", {
    account_id: tenant,
    repository_id: 1,
    scopes: ["agents:read"],
  });
  t.is(wrongScope.status, 400, "a tenant binding cannot carry provider scopes");
  const listed = await api<{ bindings: { binding_id: string }[] }>("/api/v2/oidc/bindings");
  t.deepEqual(
    listed.body.bindings.map((b) => b.binding_id),
    [bound.body.binding_id],
  );

  // The exchange's half, as the OIDC module calls it once the GitHub token verified.
  const [binding] = await cp.identity.bindings(123456789);
  t.truthy(binding);
  t.deepEqual(await cp.identity.bindings(987), [], "another repository has none");
  const access = await cp.identity.issueAccessToken(
    binding!.account_id,
    ["read"],
    2,
    "oidc:repository_id=123456789",
  );
  t.regex(access.token, /^eek_/);
  t.is((await api("/api/v2/deployments", { token: access.token })).status, 200);
  const noDeploy = await postAs<Err>(
    api,
    "/api/v2/preflight",
    { app: "x", compose: "services: {}" },
    access.token,
  );
  t.is(noDeploy.status, 403, "only the scopes it was issued with");
  const keys = await api<{ keys: { key_id: string; origin: string; created_by: string }[] }>(
    `/api/v2/accounts/${tenant}/keys`,
  );
  t.like(
    keys.body.keys.find((k) => k.key_id === access.key_id),
    { origin: "access", created_by: "oidc:repository_id=123456789" },
  );
  const expired = await waitFor(
    "the access token to expire",
    async () => {
      const r = await api<Err>("/api/v2/deployments", { token: access.token });
      return r.status === 401 ? r.body : undefined;
    },
    10_000,
  );
  t.is(expired.error.code, "EE-AUTH-EXPIRED");
});
