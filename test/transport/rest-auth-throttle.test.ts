// Failed authentication over HTTP: the REST app with the real identity service and business store. Past the
// per-source limit every request from that address is 429 EE-AUTH-THROTTLED with Retry-After (even with the right
// token, so guessing stops), and the flood left one audit record, not one per request.

import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import test from "ava";
import { Identity } from "../../actors/business/identity.ts";
import { openBusinessDb, SqliteBusinessStore } from "../../actors/business/sqlite-store.ts";
import { TextSealer } from "../../actors/store/sealed-text.ts";
import { silentLogger } from "../../lib/log.ts";
import { hashToken } from "../../lib/token-digest.ts";
import type { CpView } from "../../transport/rest/view.ts";
import { REST_TOKEN, serveRest } from "../helpers/rest-app.ts";
import { tempDir } from "../helpers/temp.ts";

test("a source past the failure limit gets 429 with Retry-After; the flood is one audit record", async (t) => {
  const db = openBusinessDb(tempDir(t));
  const store = new SqliteBusinessStore(db, new TextSealer(randomBytes(32)));
  const identity = new Identity({
    store,
    adminDigest: hashToken(REST_TOKEN),
    log: silentLogger,
    failLimit: 10,
  });
  t.teardown(() => {
    identity.stop();
    db.close();
  });
  const view = { agents: () => [] } as unknown as CpView;
  const { server } = await serveRest(t, view, { identity });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = (token: string) =>
    fetch(`${base}/api/v2/agents`, { headers: { authorization: `Bearer ${token}` } });

  for (let i = 0; i < 10; i++) t.is((await call("eek_guess")).status, 401);
  const throttled = await call(REST_TOKEN);
  t.is(throttled.status, 429);
  t.is(((await throttled.json()) as { error: { code: string } }).error.code, "EE-AUTH-THROTTLED");
  const retry = Number(throttled.headers.get("retry-after"));
  t.true(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  const records = (await store.auditAfter(0, 100)).filter((r) => r.action.startsWith("auth.failed"));
  t.deepEqual(
    records.map((r) => [r.action, r.outcome, r.details?.count]),
    [["auth.failed", "EE-AUTH-INVALID", 1]],
  );
});
