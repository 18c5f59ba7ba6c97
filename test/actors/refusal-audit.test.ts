// Refused agent connections are audited in aggregate: per source and reason, the first refusal at once, the rest
// as one row per interval with their count while the flood goes on; a source quiet for an interval starts over
// with a row at once; sources are IPv4 addresses or IPv6 /64s; the source map is bounded.
import test from "ava";
import { RefusalAudit } from "../../actors/refusal-audit.ts";
import type { NewEvent } from "../../actors/store/event-log.ts";
import { sourceOf } from "../../lib/source-address.ts";

function audit(maxSources?: number) {
  const rows: NewEvent[] = [];
  const a = new RefusalAudit({
    append: (e) => rows.push(e),
    intervalMs: 60_000,
    ...(maxSources ? { maxSources } : {}),
  });
  return { a, rows };
}

test("the first refusal is a row at once; the rest is one row per interval with the count", (t) => {
  const { a, rows } = audit();
  for (let i = 0; i < 500; i++) a.refused(i, "EE-PROTO-REGISTER-TIMEOUT", "::ffff:10.0.0.1", 1000 + i);
  a.refused(900, "EE-PROTO-ABUSE", "10.0.0.1", 2000);
  t.is(rows.length, 2);
  t.deepEqual(rows[0]!.data, { conn: 0, reason: "EE-PROTO-REGISTER-TIMEOUT", remote: "10.0.0.1", count: 1 });
  a.flush();
  t.is(rows.length, 3, "the lone ABUSE refusal needs no summary row");
  t.deepEqual(rows[2]!.data, {
    conn: null,
    reason: "EE-PROTO-REGISTER-TIMEOUT",
    remote: "10.0.0.1",
    count: 499,
    first_at: 1001,
    last_at: 1499,
  });
  for (let i = 0; i < 300; i++) a.refused(i, "EE-PROTO-REGISTER-TIMEOUT", "10.0.0.1", 3000 + i);
  t.is(rows.length, 3, "a flood that goes on gets no new first row");
  a.flush();
  t.is(rows.length, 4);
  t.like(rows[3]!.data, { count: 300, first_at: 3000, last_at: 3299 });
  a.flush();
  t.is(rows.length, 4, "an interval without refusals writes nothing");
  a.refused(1, "EE-PROTO-REGISTER-TIMEOUT", "10.0.0.1", 9000);
  t.is(rows.length, 5, "after a quiet interval, a refusal is a row at once again");
  t.deepEqual(
    [...a.totals()],
    [
      ["EE-PROTO-REGISTER-TIMEOUT", 801],
      ["EE-PROTO-ABUSE", 1],
    ],
  );
});

test("sources beyond the bound are summed under 'other'", (t) => {
  const { a, rows } = audit(3);
  for (let i = 0; i < 100; i++) a.refused(i, "EE-PROTO-ABUSE", `10.0.1.${i}`, i);
  a.flush();
  t.true(rows.length <= 5, `${rows.length} rows`);
  t.is(
    rows.reduce((n, r) => n + (r.data?.count as number), 0),
    100,
  );
  t.true(rows.some((r) => r.data?.remote === "other"));
});

test("a source is an IPv4 address, or the /64 of an IPv6 address", (t) => {
  t.is(sourceOf("192.0.2.7"), "192.0.2.7");
  t.is(sourceOf("::ffff:192.0.2.7"), "192.0.2.7");
  t.is(sourceOf("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  t.is(sourceOf("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  t.is(sourceOf("2001:db8::1"), "2001:db8:0:0::/64");
  t.is(sourceOf("::1"), "0:0:0:0::/64");
  t.is(sourceOf("fe80::1%eth0"), "fe80:0:0:0::/64");
  t.is(sourceOf(undefined), "unknown");
});
