// identity/oidc-exchange.ts with the real verifier, the in-memory replay store and bindings matched on numeric
// ids: a token is exchanged once, for its binding's account and scopes; renamed repositories still match by id,
// a different repository with the old name does not; ref, owner and environment constraints hold.
import test from "ava";
import { matchBinding, type OidcBinding } from "../../identity/oidc-bindings.ts";
import { OidcExchange, type OidcExchangePorts } from "../../identity/oidc-exchange.ts";
import { MemoryReplayStore, replayHorizon } from "../../identity/oidc-replay.ts";
import { OidcVerifier } from "../../identity/oidc-verifier.ts";
import type { OidcError } from "../../spec/errors.ts";
import { oidcRefused, TEST_AUDIENCE, TEST_ISSUER, testIssuer } from "../helpers/oidc.ts";

const issuer = await testIssuer();

const web: OidcBinding = { account_id: "acc_web", repository_id: "123456", scopes: ["deploy", "read"] };

function setup(bindings: OidcBinding[] = [web]) {
  const issued: { account_id: string; scopes: readonly string[]; ttl_s: number }[] = [];
  const verifier = new OidcVerifier({
    issuer: TEST_ISSUER,
    audience: TEST_AUDIENCE,
    jwks: { kind: "keys", jwks: issuer.jwks },
  });
  const replay = new MemoryReplayStore();
  const ports: OidcExchangePorts = {
    verifier,
    replay,
    findBindings: (id) => bindings.filter((b) => b.repository_id === id),
    issueAccessToken: async (account_id, scopes, ttl_s) => {
      issued.push({ account_id, scopes, ttl_s });
      return { access_token: `eat_${issued.length}`, expires_at: Date.now() + ttl_s * 1000 };
    },
    accessTtlS: 600,
  };
  return { exchange: new OidcExchange(ports), issued, replay };
}

test("a valid token is exchanged for an access token of its binding's account and scopes", async (t) => {
  const { exchange, issued } = setup();
  const before = Date.now();
  const r = await exchange.exchange(await issuer.token());
  t.deepEqual(Object.keys(r.body).sort(), ["access_token", "account_id", "expires_at", "scopes"]);
  t.is(r.body.access_token, "eat_1");
  t.is(r.body.account_id, "acc_web");
  t.deepEqual(r.body.scopes, ["deploy", "read"]);
  const exp = Date.parse(r.body.expires_at);
  t.true(exp >= before + 600_000 && exp <= Date.now() + 600_000);
  t.deepEqual(issued, [{ account_id: "acc_web", scopes: ["deploy", "read"], ttl_s: 600 }]);
  t.is(r.subject.repository_id, "123456");
  t.is(r.subject.ref, "refs/heads/main");
});

test("the same token twice: the second is refused (EE-OIDC-REPLAY) and issues nothing", async (t) => {
  const { exchange, issued } = setup();
  const token = await issuer.token();
  await exchange.exchange(token);
  await oidcRefused(t, exchange.exchange(token), "EE-OIDC-REPLAY");
  t.is(issued.length, 1);
  // Concurrently: exactly one of two racing exchanges of a fresh token wins.
  const fresh = await issuer.token();
  const results = await Promise.allSettled([exchange.exchange(fresh), exchange.exchange(fresh)]);
  t.is(results.filter((r) => r.status === "fulfilled").length, 1);
  t.is(issued.length, 2);
});

test("a renamed repository (new name, new sub) with the same repository_id is still bound; the old name under a new id is not", async (t) => {
  const { exchange } = setup();
  const renamed = await issuer.token({
    repository: "acme/web-renamed",
    sub: "repo:acme/web-renamed:ref:refs/heads/main",
  });
  t.is((await exchange.exchange(renamed)).body.account_id, "acc_web");
  // Someone re-creates "acme/web" after the rename: same name and sub, another id.
  await oidcRefused(
    t,
    exchange.exchange(await issuer.token({ repository_id: "999999" })),
    "EE-OIDC-NO-BINDING",
  );
});

test("ref, owner id and environment: a binding that sets them admits only tokens that carry them exactly", async (t) => {
  const strict: OidcBinding = {
    ...web,
    repository_owner_id: "7890",
    ref: "refs/heads/main",
    environment: "production",
  };
  const { exchange } = setup([strict]);
  t.truthy(await exchange.exchange(await issuer.token({ environment: "production" })));
  for (const claims of [
    { environment: "production", ref: "refs/heads/feature" },
    { environment: "production", ref: "refs/tags/main" },
    { environment: "production", repository_owner_id: "1111" },
    { environment: "staging" },
    {},
  ])
    await oidcRefused(t, exchange.exchange(await issuer.token(claims)), "EE-OIDC-NO-BINDING");
});

test("a token refused by the verifier (wrong audience, expired) spends nothing and issues nothing", async (t) => {
  const { exchange, issued, replay } = setup();
  await oidcRefused(t, exchange.exchange(await issuer.token({ aud: "other" })), "EE-OIDC-AUDIENCE");
  const old = Math.floor(Date.now() / 1000) - 3600;
  await oidcRefused(t, exchange.exchange(await issuer.token({}, { nowS: old })), "EE-OIDC-EXPIRED");
  t.is(replay.size, 0);
  t.is(issued.length, 0);
});

test("matchBinding: the most specific matching binding wins; equally specific ones that differ are ambiguous", (t) => {
  const claims = { repository_id: "123456", repository_owner_id: "7890", ref: "refs/heads/main" };
  const main: OidcBinding = {
    account_id: "acc_prod",
    repository_id: "123456",
    ref: "refs/heads/main",
    scopes: ["deploy"],
  };
  t.is(matchBinding(claims, [web, main]).account_id, "acc_prod");
  t.is(matchBinding({ ...claims, ref: "refs/heads/dev" }, [web, main]).account_id, "acc_web");
  // The same account and scopes twice is not ambiguous (a duplicate row).
  t.is(matchBinding(claims, [web, { ...web, scopes: ["read", "deploy"] }]).account_id, "acc_web");
  const err = t.throws(() => matchBinding(claims, [web, { ...web, account_id: "acc_other" }]));
  t.is((err as OidcError).code, "EE-OIDC-BINDING-AMBIGUOUS");
});

test("the replay store remembers a jti until its horizon, then lets it go; full of live jtis it refuses new ones", (t) => {
  const store = new MemoryReplayStore(2);
  t.true(store.remember("a", 10_000, 0));
  t.false(store.remember("a", 10_000, 5_000));
  t.true(store.remember("b", 20_000, 5_000));
  const err = t.throws(() => store.remember("c", 20_000, 9_999));
  t.is((err as OidcError).code, "EE-OIDC-REPLAY-FULL");
  t.is((err as OidcError).httpStatus, 503);
  // At a's horizon it is forgotten, which makes room.
  t.true(store.remember("c", 30_000, 10_000));
  t.is(store.size, 2);
  t.false(store.remember("b", 20_000, 19_999));
});

test("replayHorizon: as long as the verifier would accept the token (exp or iat + max age, plus tolerance)", (t) => {
  t.is(replayHorizon({ iat: 1000, exp: 1300 }, 900, 30), (1300 + 31) * 1000);
  t.is(replayHorizon({ iat: 1000, exp: 99_000 }, 900, 30), (1900 + 31) * 1000);
});
