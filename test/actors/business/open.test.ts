// Choosing the business state's adapter (actors/business/open.ts): SQLite by default, PostgreSQL for a
// postgres:// URL; anything else, or a server that does not answer, is EE-CONFIG-INVALID without the password.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { openBusinessState } from "../../../actors/business/open.ts";
import { TextSealer } from "../../../actors/store/sealed-text.ts";
import { usePostgres } from "../../helpers/postgres.ts";
import { closedPort, tempDir } from "../../helpers/temp.ts";

const pg = usePostgres(test);
const sealer = new TextSealer(randomBytes(32));

test("no URL: SQLite business.db in the data dir", async (t) => {
  const dataDir = tempDir(t);
  const state = await openBusinessState({ dataDir, sealer });
  t.teardown(() => state.close());
  t.is(state.where, join(dataDir, "business.db"));
  t.true(existsSync(join(dataDir, "business.db")));
});

test("a postgres:// URL: nothing in the data dir, the password masked where it is logged", async (t) => {
  const url = await pg.database(t);
  if (!url) return;
  const dataDir = tempDir(t);
  const withPassword = url.replace("postgres@", "postgres:hunter2@");
  const state = await openBusinessState({ dataDir, url: withPassword, sealer });
  t.teardown(() => state.close());
  t.false(existsSync(join(dataDir, "business.db")));
  t.false(state.where.includes("hunter2"));
  t.deepEqual(await state.business.accounts(), []);
});

test("another scheme or an unreachable server is EE-CONFIG-INVALID, and the password is not echoed", async (t) => {
  const dataDir = tempDir(t);
  await t.throwsAsync(openBusinessState({ dataDir, url: "mysql://db/x", sealer }), {
    code: "EE-CONFIG-INVALID",
  } as never);
  const port = await closedPort();
  const err = await t.throwsAsync(
    openBusinessState({ dataDir, url: `postgres://ee:hunter2@127.0.0.1:${port}/x`, sealer }),
    { code: "EE-CONFIG-INVALID" } as never,
  );
  t.false(err?.message.includes("hunter2"));
  t.regex(err?.message ?? "", /--business-db postgres:\/\/ee:\*\*\*@127\.0\.0\.1/);
});
