// `eectl billing` run as a user would (a child process via bin/eectl.js) against a real CP, and the control
// plane's billing flags: rates set and shown, a deposit to a tenant account (the same key twice credits once),
// balance and ledger (the admin's and the tenant's own key), verify over REST and from the data dir's business.db
// (a tampered balance fails it, exit 1), and --billing-period-s.
import { join } from "node:path";
import test from "ava";
import Database from "better-sqlite3";
import { BUSINESS_DB_FILE } from "../../actors/business/migrations.ts";
import { eectl } from "../helpers/cli.ts";
import { ADMIN_TOKEN, devRoot, spawnCp, startTestCp, tempDir } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

test("billing rates, deposit, balance, ledger and verify; a tampered store fails verify", async (t) => {
  const { cp, api, dataDir } = await startTestCp(t);
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const post = <T>(path: string, body: unknown) =>
    api<T>(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const acme = (await post<{ account_id: string }>("/api/v2/accounts", { name: "acme", kind: "tenant" })).body
    .account_id;
  const key = (await post<{ token: string }>(`/api/v2/accounts/${acme}/keys`, { scopes: ["read"] })).body
    .token;
  const set = await eectl(
    [
      "billing",
      "rates",
      "--set",
      "tiny=1000000",
      "--set",
      "llm=9000000",
      "--platform-fee-bps",
      "3000",
      "--json",
    ],
    { env },
  );
  t.is(set.code, 0, set.stderr);
  t.like(JSON.parse(set.stdout), { rates: { tiny: 1_000_000, llm: 9_000_000 }, platform_fee_bps: 3000 });
  const shown = await eectl(["billing", "rates"], { env });
  t.regex(shown.stdout, /platform fee: 3000 bps/);
  t.regex(shown.stdout, /tiny\s+1000000/);
  const half = await eectl(["billing", "rates", "--set", "tiny=1"], { env });
  t.is(half.code, 1);
  t.regex(half.stderr, /^eectl: EE-CLI-USAGE: /);

  const deposit = ["billing", "deposit", acme, "--amount-micros", "5000000", "--idempotency-key", "inv-9"];
  t.is((await eectl(deposit, { env })).code, 0);
  const again = await eectl(deposit, { env });
  t.true((JSON.parse(again.stdout) as { replayed: boolean }).replayed);
  const balance = await eectl(["billing", "balance", acme, "--json"], { env });
  t.deepEqual(JSON.parse(balance.stdout), { balance_micros: 5_000_000 });
  const own = await eectl(["billing", "balance", acme], { env: { ...env, EE_TOKEN: key } });
  t.is(own.stdout, "5000000\n", "the tenant's key reads its own balance");
  t.is((await eectl(["billing", "balance", "external"], { env })).stdout, "-5000000\n");
  const ledger = await eectl(["billing", "ledger", acme, "--json"], { env });
  t.like((JSON.parse(ledger.stdout) as { entries: unknown[] }).entries, [
    { kind: "deposit", account: `tenant:${acme}`, amount_micros: 5_000_000 },
  ]);
  const bad = await eectl(["billing", "balance", "acme"], { env });
  t.is(bad.code, 1, "accounts are named by id");
  t.regex(bad.stderr, /^eectl: EE-NOT-FOUND: /);

  const verified = await eectl(["billing", "verify", "--json"], { env });
  t.deepEqual(JSON.parse(verified.stdout), { ok: true, journals: 1 });
  await cp.stop();
  const db = new Database(join(dataDir, BUSINESS_DB_FILE));
  db.prepare("UPDATE ledger_balances SET balance_micros = 1 WHERE account = ?").run(`tenant:${acme}`);
  db.close();
  const tampered = await eectl(["billing", "verify", "--json", "--data-dir", dataDir]);
  t.is(tampered.code, 1);
  t.like(JSON.parse(tampered.stdout), {
    ok: false,
    journals: 1,
    problems: { mismatched: [{ account: `tenant:${acme}`, balance_micros: 1, entries_micros: 5_000_000 }] },
  });
  const nowhere = await eectl(["billing", "verify", "--data-dir", join(dataDir, "nope")]);
  t.is(nowhere.code, 1);
  t.regex(nowhere.stderr, /^eectl: EE-CLI-FILE: /);
  // A business.db from before the ledger (migration 6) is named, not an internal error.
  const older = tempDir(t);
  new Database(join(older, BUSINESS_DB_FILE)).close();
  const noLedger = await eectl(["billing", "verify", "--data-dir", older]);
  t.is(noLedger.code, 1);
  t.regex(noLedger.stderr, /^eectl: EE-CLI-FILE: .*has no ledger yet/);
});

test("every billing command has --help", async (t) => {
  for (const sub of ["balance", "ledger", "rates", "deposit", "verify"]) {
    const run = await eectl(["billing", sub, "--help"]);
    t.is(run.code, 0, sub);
  }
});

test("--billing-period-s sets the charging period the rate card reports", async (t) => {
  const cp = await spawnCp(t, {
    port: await closedPort(),
    dataDir: tempDir(t),
    devDir: await devRoot(),
    args: ["--billing-period-s", "7"],
  });
  const rates = await cp.api<{ period_s: number }>("/api/v2/billing/rates");
  t.is(rates.body.period_s, 7);
  await cp.kill();
});
