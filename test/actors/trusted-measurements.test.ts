// TrustedMeasurements on a real SQLite file: add/list/remove/approve and their errors, baselines recorded from
// refusals, and what an entry admits once the measurement policy merges it (node_size or "*", RTMRs per MRTD).
import test, { type ExecutionContext } from "ava";
import { openDatabase } from "../../actors/store/db.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { TrustedMeasurements } from "../../actors/trusted-measurements.ts";
import { evaluatePolicy, REFUSE_UNKNOWN_POLICY } from "../../attestation/policy.ts";
import { ConflictError, NotFoundError, ValidationError } from "../../spec/errors.ts";
import { tempDir } from "../helpers/temp.ts";

const MRTD = "a".repeat(96);
const OTHER_MRTD = "b".repeat(96);
const RTMR: [string, string, string, string] = [
  "1".repeat(96),
  "2".repeat(96),
  "3".repeat(96),
  "4".repeat(96),
];

function open(t: ExecutionContext, dir = tempDir(t)) {
  const db = openDatabase(dir);
  const events = new EventLog(db, (err) => t.fail(String(err)));
  let clock = 1_000;
  const trusted = new TrustedMeasurements({
    db,
    events,
    nodeSizes: new Set(["small", "large"]),
    onError: (err) => t.fail(String(err)),
    now: () => clock++,
  });
  t.teardown(() => {
    events.flush();
    db.close();
  });
  return { db, events, trusted, dir };
}

/** Whether a quote with these measurements passes the strict default policy given the trusted entries. */
function admits(
  trusted: TrustedMeasurements,
  node_size: string,
  mrtd: string,
  rtmr: readonly string[] = RTMR,
) {
  const verdict = evaluatePolicy(
    REFUSE_UNKNOWN_POLICY,
    { node_size, mrtd, rtmr: [...rtmr], td_attributes: "0000000000000000" },
    trusted.list(),
  );
  return verdict.findings.length === 0;
}

test("add lists the entry, audits it, and persists across a reopen", (t) => {
  const dir = tempDir(t);
  const first = open(t, dir);
  const entry = first.trusted.add({ node_size: "small", mrtd: MRTD, note: "release 1" }, "admin");
  t.like(entry, {
    node_size: "small",
    mrtd: MRTD,
    rtmr: null,
    note: "release 1",
    added_by: "admin",
    added_at: 1_000,
  });
  t.deepEqual(first.trusted.list(), [entry]);
  const audit = first.events.list({ kind: "measurement.added" });
  t.is(audit.length, 1);
  t.deepEqual(audit[0]?.data, { entry, by: "admin" });
  first.events.flush();
  first.db.close();
  const again = open(t, dir).trusted;
  t.deepEqual(again.list(), [entry]);
});

test("add refuses an unknown node_size and a duplicate, and changes nothing", (t) => {
  const { trusted, events } = open(t);
  const bad = t.throws(() => trusted.add({ node_size: "huge", mrtd: MRTD }, "admin"), {
    instanceOf: ValidationError,
  });
  t.is(bad?.code, "EE-REQ-INVALID");
  trusted.add({ node_size: "small", mrtd: MRTD, rtmr: RTMR }, "admin");
  const dup = t.throws(() => trusted.add({ node_size: "small", mrtd: MRTD, rtmr: RTMR }, "admin"), {
    instanceOf: ConflictError,
  });
  t.is(dup?.code, "EE-CONFLICT-STATE");
  // The same MRTD without RTMRs, or under another size, is another entry.
  trusted.add({ node_size: "small", mrtd: MRTD }, "admin");
  trusted.add({ node_size: "*", mrtd: MRTD, rtmr: RTMR }, "admin");
  t.is(trusted.list().length, 3);
  t.is(events.list({ kind: "measurement.added" }).length, 3);
});

test("remove drops the entry and audits it; an unknown id is EE-NOT-FOUND", (t) => {
  const { trusted, events } = open(t);
  const a = trusted.add({ node_size: "small", mrtd: MRTD }, "admin");
  const b = trusted.add({ node_size: "large", mrtd: OTHER_MRTD }, "admin");
  trusted.remove(a.id, "ops");
  t.deepEqual(trusted.list(), [b]);
  t.deepEqual(events.list({ kind: "measurement.removed" })[0]?.data, { entry: a, by: "ops" });
  const missing = t.throws(() => trusted.remove(a.id, "ops"), { instanceOf: NotFoundError });
  t.is(missing?.code, "EE-NOT-FOUND");
  t.deepEqual(trusted.list(), [b]);
});

test("match: an entry admits its MRTD on its node_size (or any, for *), with its RTMRs or any", (t) => {
  const { trusted } = open(t);
  t.false(admits(trusted, "small", MRTD), "nothing trusted yet");
  const sized = trusted.add({ node_size: "small", mrtd: MRTD }, "admin");
  t.true(admits(trusted, "small", MRTD), "no RTMRs listed: any RTMRs");
  t.false(admits(trusted, "large", MRTD), "another node_size");
  t.false(admits(trusted, "small", OTHER_MRTD), "another MRTD");
  trusted.remove(sized.id, "admin");
  t.false(admits(trusted, "small", MRTD), "a removed entry admits nothing at once");
  trusted.add({ node_size: "*", mrtd: MRTD, rtmr: RTMR }, "admin");
  t.true(admits(trusted, "large", MRTD), "* covers every size");
  t.false(admits(trusted, "large", MRTD, [RTMR[0], RTMR[1], RTMR[2], "5".repeat(96)]), "other RTMRs");
  // RTMRs trusted for one MRTD admit no other image.
  t.false(admits(trusted, "large", OTHER_MRTD));
});

test("refusals become baselines (counted per measurement); approving one trusts it exactly and drops it", (t) => {
  const { trusted, events } = open(t);
  const seen = { node_size: "small", mrtd: MRTD, rtmr: RTMR, vm_name: "vm-1", agent_id: "agt_1", at: 5 };
  trusted.recordBaseline(seen);
  trusted.recordBaseline({ ...seen, vm_name: "vm-2", agent_id: "agt_2", at: 9 });
  trusted.recordBaseline({ ...seen, mrtd: OTHER_MRTD, at: 7 });
  const baselines = trusted.baselines();
  t.is(baselines.length, 2);
  const mine = baselines.find((b) => b.mrtd === MRTD);
  t.like(mine, {
    node_size: "small",
    rtmr: RTMR,
    first_seen: 5,
    last_seen: 9,
    count: 2,
    last_vm_name: "vm-2",
  });
  const entry = trusted.approve(mine!.id, "admin");
  t.like(entry, { node_size: "small", mrtd: MRTD, rtmr: RTMR, note: null, added_by: "admin" });
  t.deepEqual(
    trusted.baselines().map((b) => b.mrtd),
    [OTHER_MRTD],
  );
  t.true(admits(trusted, "small", MRTD));
  t.is(events.list({ kind: "measurement.baseline_approved" }).length, 1);
  const gone = t.throws(() => trusted.approve(mine!.id, "admin"), { instanceOf: NotFoundError });
  t.is(gone?.code, "EE-NOT-FOUND");
});

test("adding an entry clears the baselines it now covers", (t) => {
  const { trusted } = open(t);
  const seen = { node_size: "small", vm_name: "vm", agent_id: "agt_1", at: 1 };
  trusted.recordBaseline({ ...seen, mrtd: MRTD, rtmr: RTMR });
  trusted.recordBaseline({ ...seen, node_size: "large", mrtd: MRTD, rtmr: RTMR });
  trusted.recordBaseline({ ...seen, mrtd: OTHER_MRTD, rtmr: RTMR });
  // Recorded in an earlier tick than the approval (add does not flush what this tick queued).
  t.is(trusted.baselines().length, 3);
  trusted.add({ node_size: "small", mrtd: MRTD }, "admin");
  t.deepEqual(
    trusted.baselines().map((b) => [b.node_size, b.mrtd]),
    [
      ["large", MRTD],
      ["small", OTHER_MRTD],
    ],
  );
  trusted.add({ node_size: "*", mrtd: MRTD, rtmr: RTMR }, "admin");
  t.deepEqual(
    trusted.baselines().map((b) => b.mrtd),
    [OTHER_MRTD],
  );
});
