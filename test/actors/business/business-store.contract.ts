// The business store's contract (actors/business/store.ts), run against every adapter through the identity
// service with a hand-moved clock: key expiry, access tokens, revocation, failed authentication aggregated and
// throttled, apps, and an audit chain that verifies and stays gapless under concurrent writers. `open` gives a
// fresh empty business state, or undefined when its database is not available here (the test passes with a log).
import type { ExecutionContext, TestFn } from "ava";
import { verifyChain } from "../../../actors/business/audit-chain.ts";
import { Identity } from "../../../actors/business/identity.ts";
import { silentLogger } from "../../../lib/log.ts";
import { hashToken } from "../../../lib/token-digest.ts";
import { AuthError } from "../../../spec/errors.ts";
import { ADMIN } from "../../../spec/scopes.ts";
import type { OpenState } from "../../helpers/business-state.ts";
import { waitFor } from "../../helpers/cluster.ts";

export const ADMIN_TOKEN = "unit-admin-token-0123456789";

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof AuthError ? err.code : String(err);
  }
};

/** A registered app row, for this contract and apps.test.ts. */
export const app = (version: string, created_at = 1) => ({
  name: "web",
  version,
  compose: "services: {}\n",
  compose_hash: "ab".repeat(32),
  health: null,
  created_at,
});

export function businessStoreContract(test: TestFn, open: OpenState): void {
  async function setup(t: ExecutionContext, failLimit = 5) {
    let now = 1_700_000_000_000;
    const clock = { now: () => now, advance: (ms: number) => (now += ms) };
    const state = await open(t, { now: clock.now });
    if (!state) return undefined;
    const store = state.business;
    const identity = new Identity({
      store,
      adminDigest: hashToken(ADMIN_TOKEN),
      log: silentLogger,
      now: clock.now,
      failLimit,
      failWindowMs: 60_000,
    });
    t.teardown(() => identity.stop());
    return { store, identity, clock };
  }

  test("keys expire, access tokens expire after their ttl, revocation is immediate", async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { identity, clock } = s;
    const acc = await identity.createAccount(ADMIN, "10.0.0.1", { name: "acme", kind: "tenant" });
    const key = await identity.createKey(ADMIN, "10.0.0.1", acc.account_id, {
      scopes: ["read"],
      expires_in_s: 60,
    });
    const p = await identity.authenticate(key.token, "10.0.0.1");
    t.like(p, { kind: "account", accountId: acc.account_id, accountKind: "tenant", keyId: key.key_id });
    clock.advance(60_000);
    t.is(await code(identity.authenticate(key.token, "10.0.0.1")), "EE-AUTH-EXPIRED");

    const access = await identity.issueAccessToken(
      acc.account_id,
      ["deploy", "read"],
      300,
      "oidc:repository_id=42",
    );
    const ap = await identity.authenticate(access.token, "10.0.0.2");
    t.true(ap.kind === "account" && ap.scopes.has("deploy"));
    t.is(
      (await identity.keys(ADMIN, acc.account_id)).find((k) => k.key_id === access.key_id)?.origin,
      "access",
    );
    await t.throwsAsync(identity.issueAccessToken(acc.account_id, ["agents:read"], 300, "oidc"), {
      message: /may hold deploy, read/,
    });
    clock.advance(300_000);
    t.is(await code(identity.authenticate(access.token, "10.0.0.2")), "EE-AUTH-EXPIRED");

    const k2 = await identity.createKey(ADMIN, "10.0.0.1", acc.account_id, { scopes: ["deploy"] });
    t.is(await code(identity.authenticate(k2.token, "10.0.0.3")), "ok");
    await identity.revokeKey(ADMIN, "10.0.0.1", k2.key_id);
    t.is(await code(identity.authenticate(k2.token, "10.0.0.3")), "EE-AUTH-REVOKED");
    // A token whose id exists but whose secret differs is invalid, whatever the prefix shares.
    const forged = `${k2.token.slice(0, -4)}AAAA`;
    t.is(await code(identity.authenticate(forged, "10.0.0.3")), "EE-AUTH-INVALID");
  });

  test("launcher keys come from the admin only; a key mints only narrower keys for its own account", async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { identity } = s;
    const launcher = await identity.createAccount(ADMIN, "c", { name: "l", kind: "launcher" });
    const lk = await identity.createKey(ADMIN, "c", launcher.account_id, {
      scopes: ["launch", "agents:read"],
    });
    const lp = await identity.authenticate(lk.token, "c");
    t.is(
      await code(identity.createKey(lp, "c", launcher.account_id, { scopes: ["launch"] })),
      "EE-AUTH-SCOPE",
    );
    const tenant = await identity.createAccount(ADMIN, "c", { name: "t", kind: "tenant" });
    const tk = await identity.createKey(ADMIN, "c", tenant.account_id, { scopes: ["read"] });
    const tp = await identity.authenticate(tk.token, "c");
    t.is(await code(identity.createKey(tp, "c", tenant.account_id, { scopes: ["deploy"] })), "EE-AUTH-SCOPE");
    t.is(await code(identity.createKey(tp, "c", tenant.account_id, { scopes: ["read"] })), "ok");
    await t.throwsAsync(identity.createKey(tp, "c", launcher.account_id, { scopes: ["read"] }), {
      message: /does not exist/,
    });
  });

  test("failed authentication: one record per source and window, then throttled with a retry time", async (t) => {
    const s = await setup(t, 5);
    if (!s) return;
    const { identity, store, clock } = s;
    for (let i = 0; i < 5; i++)
      t.is(await code(identity.authenticate("wrong-token", "10.9.9.9")), "EE-AUTH-INVALID");
    const throttled = await identity.authenticate(ADMIN_TOKEN, "10.9.9.9").catch((e: AuthError) => e);
    t.true(
      throttled instanceof AuthError &&
        throttled.code === "EE-AUTH-THROTTLED" &&
        throttled.httpStatus === 429,
    );
    t.deepEqual((throttled as AuthError).details, { retry_after_s: 60 });
    t.like(
      await identity.authenticate(ADMIN_TOKEN, "10.1.1.1"),
      { kind: "admin" },
      "other sources are not held",
    );
    // The identity service writes these records without holding up the answer: wait for them.
    const failures = (n: number) =>
      waitFor(`${n} auth.failed records`, async () => {
        const r = (await store.auditAfter(0, 100)).filter((x) => x.action.startsWith("auth.failed"));
        return r.length >= n ? r : undefined;
      });
    let records = await failures(1);
    t.is(records.length, 1, "a flood is not a row per request");
    clock.advance(60_000);
    t.like(await identity.authenticate(ADMIN_TOKEN, "10.9.9.9"), { kind: "admin" }, "the window ended");
    records = await failures(2);
    t.deepEqual(
      records.map((r) => [r.action, r.client, r.details?.count]),
      [
        ["auth.failed", "10.9.9.9", 1],
        ["auth.failed.more", "10.9.9.9", 4],
      ],
    );
  });

  test("apps: immutable versions, audited with the change, newest by default", async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { store } = s;
    const audit = { principal: "admin", action: "app.register", target: "app:web@1.0.0", outcome: "ok" };
    t.true(await store.putApp(app("1.0.0", 1), audit));
    t.false(await store.putApp(app("1.0.0", 2), audit), "a version is never replaced");
    t.true(await store.putApp(app("1.1.0", 3), { ...audit, target: "app:web@1.1.0" }));
    t.is(store.app("web")?.version, "1.1.0");
    t.is(store.app("web", "1.0.0")?.created_at, 1);
    t.deepEqual(
      store.apps().map((a) => a.version),
      ["1.1.0", "1.0.0"],
    );
    t.deepEqual(
      (await store.auditAfter(0, 10)).map((r) => r.target),
      ["app:web@1.0.0", "app:web@1.1.0"],
      "the refused duplicate wrote no record",
    );
    t.deepEqual(verifyChain(await store.auditAfter(0, 10)), { ok: true, records: 2 });
  });

  test("the audit chain stays gapless and linked under concurrent writers; a refused change writes no record", async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { identity, store } = s;
    const names = Array.from({ length: 16 }, (_, i) => `acc-${i}`);
    await Promise.all(names.map((name) => identity.createAccount(ADMIN, "c", { name, kind: "tenant" })));
    await t.throwsAsync(identity.createAccount(ADMIN, "c", { name: "acc-0", kind: "tenant" }));
    const records = await store.auditAfter(0, 100);
    t.deepEqual(verifyChain(records), { ok: true, records: 16 });
    t.deepEqual((await store.accounts()).map((a) => a.name).sort(), [...names].sort());
    const [first] = await store.accounts();
    t.deepEqual(await store.account(first!.account_id), first);
  });
}
