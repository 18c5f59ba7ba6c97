// The capacity store on a real SQLite file (actors/capacity/sqlite-store.ts) against the port's contract
// (capacity-store.contract.ts), and capacity migrations beside the core ones.
import test from "ava";
import { CAPACITY_MIGRATIONS, SqliteCapacityStore } from "../../actors/capacity/sqlite-store.ts";
import { migrate, openDatabase } from "../../actors/store/db.ts";
import { MIGRATIONS } from "../../actors/store/migrations.ts";
import { tempDir } from "../helpers/temp.ts";
import { capacityStoreContract } from "./capacity-store.contract.ts";

capacityStoreContract(test, async (t) => {
  const db = openDatabase(tempDir(t));
  migrate(db, CAPACITY_MIGRATIONS);
  t.teardown(() => db.close());
  return new SqliteCapacityStore(db);
});

test("a core migration numbered below the capacity ones still runs", (t) => {
  const dir = tempDir(t);
  const db = openDatabase(dir, MIGRATIONS.slice(0, 1));
  migrate(db, CAPACITY_MIGRATIONS);
  db.close();
  const again = openDatabase(dir);
  t.truthy(again.prepare("SELECT 1 FROM sqlite_master WHERE name = 'deployments'").get());
  again.close();
});
