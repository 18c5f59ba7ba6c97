// eectl accounts, keys, login and audit against a real control plane, run as a user would (bin/eectl.js, the
// compiled build after `npm run build`): the admin creates an account and a key, the key works for `eectl` once
// `eectl login` saved it in a 0600 profile (no --cp, --token or environment), revocation is immediate, failures
// print the contract's JSON error, and `audit list` shows what happened.
import { statSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { eectl } from "../helpers/cli.ts";
import { ADMIN_TOKEN, startTestCp } from "../helpers/cluster.ts";
import { tempDir } from "../helpers/temp.ts";

const json = <T>(out: string) => JSON.parse(out) as T;

test("accounts, keys, login with a 0600 profile, revoke, audit list", async (t) => {
  const { cp } = await startTestCp(t);
  const admin = ["--cp", cp.url, "--token", ADMIN_TOKEN];

  const created = await eectl([
    "accounts",
    "create",
    ...admin,
    "--name",
    "acme",
    "--kind",
    "tenant",
    "--json",
  ]);
  t.is(created.code, 0, created.stdout + created.stderr);
  const account = json<{ account_id: string; name: string; kind: string }>(created.stdout);
  t.like(account, { name: "acme", kind: "tenant" });

  const badKind = await eectl(["accounts", "create", ...admin, "--name", "x", "--kind", "owner", "--json"]);
  t.is(badKind.code, 1);
  t.is(json<{ error: { code: string } }>(badKind.stdout).error.code, "EE-REQ-INVALID");

  const key = await eectl([
    "keys",
    "create",
    ...admin,
    "--account",
    account.account_id,
    "--scopes",
    "read",
    "--json",
  ]);
  t.is(key.code, 0, key.stdout);
  const { key_id, token } = json<{ key_id: string; token: string }>(key.stdout);

  // login stores the key; operator commands then need no flags or environment.
  const home = tempDir(t);
  const env = { EE_PROFILE: join(home, "cfg", "profile.json") };
  const login = await eectl(["login", "--cp", cp.url, "--token", token, "--json"], { env });
  t.is(login.code, 0, login.stdout + login.stderr);
  t.is(statSync(env.EE_PROFILE).mode & 0o777, 0o600);
  const mine = await eectl(["accounts", "list", "--json"], { env });
  t.is(mine.code, 0, mine.stdout + mine.stderr);
  t.deepEqual(
    json<{ accounts: { account_id: string }[] }>(mine.stdout).accounts.map((a) => a.account_id),
    [account.account_id],
  );
  const shown = await eectl(["accounts", "show", account.account_id, "--json"], { env });
  t.like(json(shown.stdout), { account_id: account.account_id, name: "acme" });
  const keys = await eectl(["keys", "list", "--account", account.account_id, "--json"], { env });
  t.deepEqual(
    json<{ keys: { key_id: string; scopes: string[] }[] }>(keys.stdout).keys.map((k) => [k.key_id, k.scopes]),
    [[key_id, ["read"]]],
  );
  const scoped = await eectl(["accounts", "create", "--name", "y", "--kind", "tenant", "--json"], { env });
  t.is(scoped.code, 1);
  t.is(json<{ error: { code: string } }>(scoped.stdout).error.code, "EE-AUTH-SCOPE");

  const wrong = await eectl(["login", "--cp", cp.url, "--token", "eek_nope", "--json"], {
    env: { EE_PROFILE: join(home, "other.json") },
  });
  t.is(wrong.code, 1, "a token the CP refuses is not saved");
  t.is(json<{ error: { code: string } }>(wrong.stdout).error.code, "EE-AUTH-INVALID");

  const revoked = await eectl(["keys", "revoke", ...admin, key_id]);
  t.is(revoked.code, 0, revoked.stderr);
  const after = await eectl(["accounts", "list", "--json"], { env });
  t.is(after.code, 1);
  t.is(json<{ error: { code: string } }>(after.stdout).error.code, "EE-AUTH-REVOKED");
  const again = await eectl(["keys", "revoke", ...admin, key_id, "--json"]);
  t.is(again.code, 1);
  t.is(json<{ error: { code: string } }>(again.stdout).error.code, "EE-CONFLICT-STATE");

  const provider = json<{ account_id: string }>(
    (await eectl(["accounts", "create", ...admin, "--name", "metal", "--kind", "provider", "--json"])).stdout,
  );
  const enroll = await eectl([
    "enrollment-tokens",
    "create",
    ...admin,
    "--account",
    provider.account_id,
    "--dedicated-to",
    account.account_id,
    "--json",
  ]);
  t.is(enroll.code, 0, enroll.stdout);
  t.like(json<{ token: string; dedicated_to: string }>(enroll.stdout), { dedicated_to: account.account_id });
  t.regex(json<{ token: string }>(enroll.stdout).token, /^eet_/);

  const audit = await eectl(["audit", "list", ...admin, "--json"]);
  t.is(audit.code, 0, audit.stderr);
  const actions = json<{ records: { action: string; outcome: string }[] }>(audit.stdout).records.map(
    (r) => `${r.action} ${r.outcome}`,
  );
  for (const a of [
    "account.create ok",
    "key.create ok",
    "key.revoke ok",
    "POST /api/v2/accounts EE-AUTH-SCOPE",
  ])
    t.true(actions.includes(a), `${a} in ${actions.join("; ")}`);
});

test("audit verify: a data dir without a business store is EE-CLI-FILE, not a stack trace", async (t) => {
  const dir = tempDir(t);
  const r = await eectl(["audit", "verify", "--data-dir", dir, "--json"]);
  t.is(r.code, 1);
  t.is(json<{ error: { code: string } }>(r.stdout).error.code, "EE-CLI-FILE");
  t.is(r.stderr, "");
});
