// GitHub Actions OIDC end to end on a running CP: an admin binds a repository (by numeric id and ref) to a tenant;
// a token signed by the test's own issuer key (no network) is exchanged at POST /api/v2/auth/oidc for an access
// token that acts with the binding's scopes only; the same token again, HS256, `none`, another audience, an
// expired token or another ref are refused with 401 and nothing issued; a CP without the flags answers 404.
import { createHmac } from "node:crypto";
import test from "ava";
import { type CpApi, startTestCp } from "../helpers/cluster.ts";
import { b64json, TEST_AUDIENCE, TEST_ISSUER, type TestIssuer, testIssuer } from "../helpers/oidc.ts";
import { postAs } from "../helpers/workloads.ts";

interface Exchanged {
  access_token: string;
  expires_at: string;
  account_id: string;
  scopes: string[];
}
interface Err {
  error: { code: string };
}

const exchange = <T>(api: CpApi, token: string) =>
  api<T>("/api/v2/auth/oidc", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
    token: null,
  });

async function boundCp(t: import("ava").ExecutionContext, issuer: TestIssuer) {
  const tcp = await startTestCp(t, {
    oidc: { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: { kind: "keys", jwks: issuer.jwks } },
  });
  const acc = await postAs<{ account_id: string }>(tcp.api, "/api/v2/accounts", {
    name: "ci-tenant",
    kind: "tenant",
  });
  const bound = await postAs(tcp.api, "/api/v2/oidc/bindings", {
    account_id: acc.body.account_id,
    repository_id: 123456,
    repository_owner_id: 7890,
    ref: "refs/heads/main",
    scopes: ["deploy", "read"],
  });
  t.is(bound.status, 201, JSON.stringify(bound.body));
  return { ...tcp, accountId: acc.body.account_id };
}

test("a bound repository's token is exchanged once for an access token with the binding's scopes", async (t) => {
  const issuer = await testIssuer();
  const { api, accountId } = await boundCp(t, issuer);
  const token = await issuer.token();
  const ok = await exchange<Exchanged>(api, token);
  t.is(ok.status, 200, JSON.stringify(ok.body));
  t.is(ok.body.account_id, accountId);
  t.deepEqual(ok.body.scopes, ["deploy", "read"]);
  const left = Date.parse(ok.body.expires_at) - Date.now();
  t.true(left > 10 * 60_000 && left <= 15 * 60_000, `expires in ${left} ms`);

  // The access token reads the tenant's own deployments, and cannot create accounts (admin only).
  const listed = await api("/api/v2/deployments", { token: ok.body.access_token });
  t.is(listed.status, 200);
  const accounts = await api<Err>("/api/v2/accounts", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "sneaky", kind: "tenant" }),
    token: ok.body.access_token,
  });
  t.is(accounts.status, 403);
  t.is(accounts.body.error.code, "EE-AUTH-SCOPE");

  const again = await exchange<Err>(api, token);
  t.is(again.status, 401);
  t.is(again.body.error.code, "EE-OIDC-REPLAY");

  const audit = await api<{ records: { action: string; principal: string; outcome: string }[] }>(
    "/api/v2/audit?after=0",
  );
  t.true(
    audit.body.records.some(
      (r) =>
        r.action === "oidc.exchange" && r.principal === "oidc:repository_id=123456" && r.outcome === "ok",
    ),
    JSON.stringify(audit.body.records.map((r) => r.action)),
  );
});

test("HS256 (even keyed with the issuer's public key), none, another audience, expired or another ref: 401, nothing issued", async (t) => {
  const issuer = await testIssuer();
  const { api } = await boundCp(t, issuer);
  const claims = (await import("../helpers/oidc.ts")).githubClaims(Math.floor(Date.now() / 1000));
  const hsInput = `${b64json({ alg: "HS256", typ: "JWT", kid: issuer.kid })}.${b64json(claims)}`;
  const hs256 = `${hsInput}.${createHmac("sha256", JSON.stringify(issuer.publicJwk)).update(hsInput).digest("base64url")}`;
  const none = `${b64json({ alg: "none", typ: "JWT" })}.${b64json(claims)}.`;
  const cases: [string, string, string][] = [
    ["HS256", hs256, "EE-OIDC-ALGORITHM"],
    ["none", none, "EE-OIDC-ALGORITHM"],
    ["another audience", await issuer.token({ aud: "https://other.example" }), "EE-OIDC-AUDIENCE"],
    ["expired", await issuer.token({}, { nowS: Math.floor(Date.now() / 1000) - 3600 }), "EE-OIDC-EXPIRED"],
    ["another ref", await issuer.token({ ref: "refs/heads/dev" }), "EE-OIDC-NO-BINDING"],
    ["another repository", await issuer.token({ repository_id: "999" }), "EE-OIDC-NO-BINDING"],
  ];
  for (const [name, token, code] of cases) {
    const r = await exchange<Err>(api, token);
    t.is(r.status, 401, name);
    t.is(r.body.error.code, code, name);
  }
  const keys = await api<{ keys: unknown[] }>(
    `/api/v2/accounts/${(await api<{ accounts: { account_id: string }[] }>("/api/v2/accounts")).body.accounts[0]!.account_id}/keys`,
  );
  t.deepEqual(keys.body.keys, [], "no access token was issued");
});

test("a CP started without the OIDC flags answers 404 saying how to turn the exchange on", async (t) => {
  const { api } = await startTestCp(t);
  const r = await exchange<Err & { error: { message: string } }>(api, "x.y.z");
  t.is(r.status, 404);
  t.regex(r.body.error.message, /--oidc-issuer/);
});
