// The identity service over the real SQLite business store, with a hand-moved clock: key expiry, access tokens
// (what the OIDC exchange mints), revocation, failed authentication aggregated per source and throttled, and the
// audit chain's checks against edited, removed and reordered records.
import { randomBytes } from "node:crypto";
import test from "ava";
import { verifyAuditStore } from "../../../actors/business/audit-verify.ts";
import { Identity } from "../../../actors/business/identity.ts";
import { openBusinessDb, SqliteBusinessStore } from "../../../actors/business/sqlite-store.ts";
import { TextSealer } from "../../../actors/store/sealed-text.ts";
import { silentLogger } from "../../../lib/log.ts";
import { AuthError } from "../../../spec/errors.ts";
import { ADMIN } from "../../../spec/scopes.ts";
import { hashToken } from "../../../transport/rest/auth.ts";
import { tempDir } from "../../helpers/temp.ts";

const ADMIN_TOKEN = "unit-admin-token-0123456789";

function setup(t: { teardown(fn: () => void): void }, failLimit = 5) {
  const dir = tempDir(t);
  let now = 1_700_000_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const db = openBusinessDb(dir);
  const store = new SqliteBusinessStore(db, new TextSealer(randomBytes(32)), clock.now);
  const identity = new Identity({
    store,
    adminDigest: hashToken(ADMIN_TOKEN),
    log: silentLogger,
    now: clock.now,
    failLimit,
    failWindowMs: 60_000,
  });
  t.teardown(() => {
    identity.stop();
    db.close();
  });
  return { dir, db, store, identity, clock };
}

const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof AuthError ? err.code : String(err);
  }
};

test("keys expire, access tokens expire after their ttl, revocation is immediate", async (t) => {
  const { identity, clock } = setup(t);
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
  const { identity } = setup(t);
  const launcher = await identity.createAccount(ADMIN, "c", { name: "l", kind: "launcher" });
  const lk = await identity.createKey(ADMIN, "c", launcher.account_id, { scopes: ["launch", "agents:read"] });
  const lp = await identity.authenticate(lk.token, "c");
  t.is(await code(identity.createKey(lp, "c", launcher.account_id, { scopes: ["launch"] })), "EE-AUTH-SCOPE");
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
  const { identity, store, clock } = setup(t, 5);
  for (let i = 0; i < 5; i++)
    t.is(await code(identity.authenticate("wrong-token", "10.9.9.9")), "EE-AUTH-INVALID");
  const throttled = await identity.authenticate(ADMIN_TOKEN, "10.9.9.9").catch((e: AuthError) => e);
  t.true(
    throttled instanceof AuthError && throttled.code === "EE-AUTH-THROTTLED" && throttled.httpStatus === 429,
  );
  t.deepEqual((throttled as AuthError).details, { retry_after_s: 60 });
  t.like(
    await identity.authenticate(ADMIN_TOKEN, "10.1.1.1"),
    { kind: "admin" },
    "other sources are not held",
  );
  let records = (await store.auditAfter(0, 100)).filter((r) => r.action.startsWith("auth.failed"));
  t.is(records.length, 1, "a flood is not a row per request");
  clock.advance(60_000);
  t.like(await identity.authenticate(ADMIN_TOKEN, "10.9.9.9"), { kind: "admin" }, "the window ended");
  records = (await store.auditAfter(0, 100)).filter((r) => r.action.startsWith("auth.failed"));
  t.deepEqual(
    records.map((r) => [r.action, r.client, r.details?.count]),
    [
      ["auth.failed", "10.9.9.9", 1],
      ["auth.failed.more", "10.9.9.9", 4],
    ],
  );
});

test("audit verify names an edited, a removed and a reordered record", async (t) => {
  const { identity, db, dir } = setup(t);
  for (const name of ["a", "b", "c", "d"]) await identity.createAccount(ADMIN, "c", { name, kind: "tenant" });
  t.deepEqual(verifyAuditStore(dir), { ok: true, records: 4 });

  const snapshot = db.prepare("SELECT * FROM audit ORDER BY seq").all() as Record<string, unknown>[];
  const restore = () => {
    db.prepare("DELETE FROM audit").run();
    const ins = db.prepare(
      "INSERT INTO audit VALUES (@seq, @at, @principal, @client, @action, @target, @outcome, @details, @prev_hash, @hash)",
    );
    for (const r of snapshot) ins.run(r);
  };
  db.prepare("UPDATE audit SET outcome = 'EE-AUTH-SCOPE' WHERE seq = 3").run();
  t.like(verifyAuditStore(dir), { ok: false, first_bad_seq: 3 });
  restore();
  db.prepare("DELETE FROM audit WHERE seq = 2").run();
  t.like(verifyAuditStore(dir), { ok: false, first_bad_seq: 2 });
  restore();
  // Rows 2 and 3 swap places (their seqs swapped with them): the chain breaks at 2.
  db.prepare("UPDATE audit SET seq = -2 WHERE seq = 2").run();
  db.prepare("UPDATE audit SET seq = 2 WHERE seq = 3").run();
  db.prepare("UPDATE audit SET seq = 3 WHERE seq = -2").run();
  t.like(verifyAuditStore(dir), { ok: false, first_bad_seq: 2 });
  restore();
  t.deepEqual(verifyAuditStore(dir), { ok: true, records: 4 });
});
