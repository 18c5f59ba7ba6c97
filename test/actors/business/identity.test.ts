// The identity service over the real SQLite business store against the port's contract
// (business-store.contract.ts), and `eectl audit verify`'s checks against edited, removed and reordered records.
import { randomBytes } from "node:crypto";
import test from "ava";
import { verifyAuditStore } from "../../../actors/business/audit-verify.ts";
import { Identity } from "../../../actors/business/identity.ts";
import { openBusinessDb, SqliteBusinessStore } from "../../../actors/business/sqlite-store.ts";
import { TextSealer } from "../../../actors/store/sealed-text.ts";
import { silentLogger } from "../../../lib/log.ts";
import { hashToken } from "../../../lib/token-digest.ts";
import { ADMIN } from "../../../spec/scopes.ts";
import { sqliteState } from "../../helpers/business-state.ts";
import { tempDir } from "../../helpers/temp.ts";
import { ADMIN_TOKEN, businessStoreContract } from "./business-store.contract.ts";

businessStoreContract(test, sqliteState);

function setup(t: { teardown(fn: () => void): void }) {
  const dir = tempDir(t);
  const db = openBusinessDb(dir);
  const store = new SqliteBusinessStore(db, new TextSealer(randomBytes(32)));
  const identity = new Identity({ store, adminDigest: hashToken(ADMIN_TOKEN), log: silentLogger });
  t.teardown(() => {
    identity.stop();
    db.close();
  });
  return { dir, db, identity };
}

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
