// The DB-wipe drill with business state in PostgreSQL (`eectl control-plane --business-db postgres://…`): a CP
// child keeps accounts, keys, apps, a deposit and the audit chain in a throwaway PostgreSQL, nothing of it in
// the data dir; after SIGKILL and the deletion of its runtime DB it restarts with all of it, and `eectl audit
// verify` / `billing verify --business-db` check the chain and the ledger in the database itself.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import pgLib from "pg";
import { DB_FILE } from "../../actors/store/db.ts";
import { eectl } from "../helpers/cli.ts";
import { devRoot, spawnCp } from "../helpers/cluster.ts";
import { usePostgres } from "../helpers/postgres.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";
import { postAs, webCompose } from "../helpers/workloads.ts";

const pg = usePostgres(test);

test("DB wipe with --business-db: accounts, keys, apps, a deposit and the audit chain survive in PostgreSQL", async (t) => {
  const url = await pg.database(t);
  if (!url) return;
  const devDir = await devRoot();
  const port = await closedPort();
  const dataDir = tempDir(t, "ee-cp-pg-");
  const args = ["--business-db", url];
  let cp = await spawnCp(t, { port, dataDir, devDir, args });

  const acc = await postAs<{ account_id: string }>(cp.api, "/api/v2/accounts", {
    name: "pg-tenant",
    kind: "tenant",
  });
  t.is(acc.status, 201);
  const accountId = acc.body.account_id;
  const key = await postAs<{ key_id: string; token: string }>(cp.api, `/api/v2/accounts/${accountId}/keys`, {
    scopes: ["deploy", "read"],
  });
  t.is(key.status, 201);
  t.is(
    (await postAs(cp.api, "/api/v2/apps", { name: "kept", version: "1.0.0", compose: webCompose() })).status,
    201,
  );
  const deposit = await postAs(cp.api, `/api/v2/accounts/${accountId}/deposits`, {
    amount_micros: 5_000_000,
    idempotency_key: "pg-drill-1",
  });
  t.is(deposit.status, 201);
  t.false(existsSync(join(dataDir, "business.db")), "no business state in the data dir");

  await cp.kill();
  for (const f of readdirSync(dataDir)) if (f.startsWith(DB_FILE)) rmSync(join(dataDir, f), { force: true });
  cp = await spawnCp(t, { port, dataDir, devDir, args });

  const keys = await cp.api<{ keys: { key_id: string }[] }>(`/api/v2/accounts/${accountId}/keys`, {
    token: key.body.token,
  });
  t.is(keys.status, 200, "the tenant's key still authenticates");
  t.deepEqual(
    keys.body.keys.map((k) => k.key_id),
    [key.body.key_id],
  );
  t.is((await cp.api("/api/v2/apps/kept@1.0.0")).status, 200, "the registered app came back");
  const balance = await cp.api<{ balance_micros: number }>(`/api/v2/accounts/${accountId}/balance`, {
    token: key.body.token,
  });
  t.is(balance.body.balance_micros, 5_000_000, "the ledger survived the wipe");
  t.deepEqual((await cp.api("/api/v2/billing/verify")).body, { ok: true, journals: 1 });
  const audit = await cp.api<{ records: { seq: number }[] }>("/api/v2/audit?after=0&limit=1000");
  t.true(audit.body.records.length >= 4, "account, key, app and deposit records");
  await cp.kill();

  const chain = await eectl(["audit", "verify", "--business-db", url, "--json"]);
  t.is(chain.code, 0, chain.stdout + chain.stderr);
  t.is((JSON.parse(chain.stdout) as { records: number }).records, audit.body.records.length);
  const ledger = await eectl(["billing", "verify", "--business-db", url, "--json"]);
  t.is(ledger.code, 0, ledger.stdout + ledger.stderr);
  t.like(JSON.parse(ledger.stdout), { ok: true, journals: 1 });
  // Tampering with a record in the database is caught.
  const client = new pgLib.Client({ connectionString: url });
  await client.connect();
  await client.query("UPDATE audit SET outcome = 'EE-AUTH-SCOPE' WHERE seq = 2");
  await client.end();
  const tampered = await eectl(["audit", "verify", "--business-db", url, "--json"]);
  t.is(tampered.code, 1);
  t.like(JSON.parse(tampered.stdout), { ok: false, first_bad_seq: 2 });
  // Where to read is one of the two, never neither nor both.
  for (const args of [[], ["--data-dir", dataDir, "--business-db", url]]) {
    const usage = await eectl(["audit", "verify", ...args, "--json"]);
    t.is(usage.code, 1);
    t.regex(usage.stdout + usage.stderr, /EE-CLI-USAGE/);
  }
});
