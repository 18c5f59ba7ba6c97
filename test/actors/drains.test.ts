// Drains on the real runtime SQLite store: idempotent drain/undrain with one event per change, persisted across a
// reopen (a CP restart), and a dc's drains from the master beside its own, replaced by each snapshot.
import test from "ava";
import { Drains } from "../../actors/drains.ts";
import { openDatabase } from "../../actors/store/db.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { tempDir } from "../helpers/temp.ts";

const A = "agt_aaaaaaaaaaaaaaaaaaaaaaaa";
const B = "agt_bbbbbbbbbbbbbbbbbbbbbbbb";

function open(dir: string) {
  const db = openDatabase(dir);
  const events = new EventLog(db, (err) => {
    throw err;
  });
  return { db, events, drains: new Drains({ db, events }) };
}

test("a drain persists across a reopen; drain and undrain are idempotent, one event per change", (t) => {
  const dir = tempDir(t);
  const first = open(dir);
  first.drains.drain(A, "admin");
  first.drains.drain(A, "admin");
  t.true(first.drains.has(A));
  t.false(first.drains.has(B));
  first.events.flush();
  t.deepEqual(
    first.events.list({ kind: "agent.drained" }).map((e) => e.data),
    [{ agent_id: A, by: "admin" }],
  );
  first.db.close();

  const again = open(dir);
  t.true(again.drains.has(A), "still drained after a restart");
  t.deepEqual(again.drains.own(), [A]);
  again.drains.undrain(A, "admin");
  again.drains.undrain(A, "admin");
  t.false(again.drains.has(A));
  again.events.flush();
  t.is(again.events.list({ kind: "agent.undrained" }).length, 1);
  again.db.close();
  t.false(open(dir).drains.has(A), "the undrain persisted too");
});

test("the master's drains count beside the dc's own, and each snapshot replaces the previous ones", (t) => {
  const { drains } = open(tempDir(t));
  drains.drain(A, "admin");
  drains.setFromMaster([B]);
  t.true(drains.has(A));
  t.true(drains.has(B));
  t.deepEqual(drains.own(), [A], "a master's drains are not the dc's own");
  drains.undrain(B, "admin");
  t.true(drains.has(B), "a dc cannot lift the master's drain");
  drains.setFromMaster([]);
  t.false(drains.has(B));
  t.true(drains.has(A));
});
