// The readiness rule, with an explicit clock: quorum of the agents known before, or a settle window, capped.
import test from "ava";
import { Readiness } from "../../actors/readiness.ts";

const base = { quorum: 0.5, settleMs: 1000, maxWaitMs: 10_000, startedAt: 0 };

test("with a surviving database it waits for a quorum of the agents live before", (t) => {
  const r = new Readiness({ ...base, knownBefore: new Set(["a", "b", "c", "d"]) });
  t.false(r.status(5).ready);
  t.regex(r.status(5).reason, /0 of 4 known before are back, 2 needed/);
  r.registered("a", 10);
  r.registered("stranger", 11);
  t.false(r.status(20).ready, "an agent not known before does not count");
  r.registered("c", 30);
  const s = r.status(31);
  t.true(s.ready);
  t.is(s.rule, "quorum");
  t.is(s.back, 2);
  t.is(s.needed, 2);
});

test("with an empty database it waits for a settle window without new registrations", (t) => {
  const r = new Readiness({ ...base, knownBefore: null });
  t.false(r.status(999).ready);
  r.registered("a", 900);
  t.false(r.status(1500).ready, "a registration restarts the window");
  t.true(r.status(1900).ready);
  t.is(r.status(1900).rule, "settle");
});

test("it is ready after maxWaitMs whatever the rule says, and stays ready", (t) => {
  const r = new Readiness({ ...base, knownBefore: new Set(["a", "b"]) });
  t.false(r.status(9_999).ready);
  const s = r.status(10_000);
  t.true(s.ready);
  t.regex(s.reason, /without reaching the readiness rule/);
  t.true(r.status(10_001).ready);
});

test("a checkpoint with no live agents is treated like an empty database", (t) => {
  const r = new Readiness({ ...base, knownBefore: new Set() });
  t.is(r.status(0).rule, "settle");
});
