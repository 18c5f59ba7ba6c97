// Registered apps in the SQLite business store: the apps a runtime DB of before the business store holds are
// copied over once, and composes are sealed at rest (immutability and auditing: business-store.contract.ts).
import { randomBytes } from "node:crypto";
import test from "ava";
import { openBusinessDb, SqliteBusinessStore } from "../../../actors/business/sqlite-store.ts";
import { openDatabase } from "../../../actors/store/db.ts";
import { TextSealer } from "../../../actors/store/sealed-text.ts";
import { tempDir } from "../../helpers/temp.ts";
import { app } from "./business-store.contract.ts";

test("apps of an older runtime DB are copied to the business store once", (t) => {
  const dir = tempDir(t);
  const runtime = openDatabase(dir);
  const db = openBusinessDb(dir);
  t.teardown(() => {
    runtime.close();
    db.close();
  });
  runtime
    .prepare(
      "INSERT INTO apps (name, version, compose, compose_hash, health, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .run("old", "0.1.0", "services: {}\n", "cd".repeat(32), '{"port":80,"path":"/","timeout_s":5}', 5);
  const store = new SqliteBusinessStore(db, new TextSealer(randomBytes(32)));
  t.is(store.importApps(runtime), 1);
  t.is(store.importApps(runtime), 0);
  t.deepEqual(store.app("old", "0.1.0")?.health, { port: 80, path: "/", timeout_s: 5 });
});

test("app composes are sealed in business.db under the store key and read back as registered", async (t) => {
  const dir = tempDir(t);
  const db = openBusinessDb(dir);
  t.teardown(() => db.close());
  const key = randomBytes(32);
  const secret = "s3cret-app-password";
  const compose = `services:\n  web:\n    image: x\n    environment:\n      PASSWORD: ${secret}\n`;
  t.true(await new SqliteBusinessStore(db, new TextSealer(key)).putApp({ ...app("1.0.0"), compose }, null));
  const stored = db.prepare("SELECT compose FROM apps").get() as { compose: string };
  t.false(stored.compose.includes(secret), "no compose in clear");
  t.true(stored.compose.startsWith("ee-sealed:v1:"));
  t.is(new SqliteBusinessStore(db, new TextSealer(key)).app("web", "1.0.0")?.compose, compose);
  t.throws(() => new SqliteBusinessStore(db, new TextSealer(randomBytes(32))).app("web"), {
    code: "EE-CONFIG-INVALID",
  } as never);
});
