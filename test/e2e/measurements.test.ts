// Trusted measurements end to end: a real CP with a strict MRTD policy and dev-attested agents. A refused
// measurement becomes a baseline, approving it admits the agent on its next attempt, removing the entry refuses
// again, every change is in the audit log, and bad or unauthenticated requests change nothing.
import test, { type ExecutionContext } from "ava";
import { policySchema } from "../../attestation/policy.ts";
import {
  agentConfig,
  agentState,
  RawAgent,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";

const GOOD = "11".repeat(48);
const BAD = "22".repeat(48);
const OTHER = "33".repeat(48);
const ZERO = "00".repeat(48);

interface Entry {
  id: number;
  node_size: string;
  mrtd: string;
  rtmr: string[] | null;
  note: string | null;
  added_by: string;
  added_at: string;
}
interface Baseline {
  id: number;
  node_size: string;
  mrtd: string;
  rtmr: string[];
  count: number;
  last_vm_name: string | null;
  last_agent_id: string | null;
}
interface Listing {
  trusted: Entry[];
  baselines: Baseline[];
}
interface Event {
  kind: string;
  agent_id: string | null;
  data: Record<string, unknown>;
}

const strictMrtd = policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: [GOOD] } } });

const post = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

async function attempt(t: ExecutionContext, cp: TestCp, mrtd: string) {
  const raw = await RawAgent.connect(t, cp.cp.wsUrl);
  const { body } = await raw.next("challenge");
  raw.send(
    "register",
    await raw.registerBody(cp.devDir, body.nonce, { vm_name: `raw-${mrtd.slice(0, 4)}` }, { mrtd }),
  );
  return Promise.race([
    raw.next("registered").then(() => "registered"),
    raw.next("error").then((e) => e.body.code),
  ]);
}

async function measurementEvents(cp: TestCp): Promise<Event[]> {
  const { body } = await cp.api<{ events: Event[] }>("/api/v2/events?limit=1000");
  return body.events.filter((e) => e.kind.startsWith("measurement."));
}

test("a refused MRTD becomes a baseline; approving it admits the agent, removing it refuses again", async (t) => {
  const cp = await startTestCp(t, { policy: strictMrtd });
  const agent = await startTestAgent(
    t,
    agentConfig(t, cp.cp.wsUrl, cp.devDir, {
      vm_name: "vm-new-image",
      attestation: { provider: "dev", dir: cp.devDir, mrtd: BAD },
    }),
  );
  const baseline = await waitFor("baseline", async () => {
    const { body } = await cp.api<Listing>("/api/v2/measurements");
    return body.baselines[0];
  });
  t.like(baseline, {
    node_size: "tiny",
    mrtd: BAD,
    rtmr: [ZERO, ZERO, ZERO, ZERO],
    last_vm_name: "vm-new-image",
    last_agent_id: agent.agentId,
  });
  t.true(baseline.count >= 1);
  const rejected = await cp.api<{ events: Event[] }>("/api/v2/events?kind=agent.rejected");
  t.is(rejected.body.events[0]?.data.reason, "EE-ATT-MRTD-NOT-ALLOWED");
  t.not(cp.cp.index.get(agent.agentId)?.state, "registered");

  const approved = await cp.api<Entry>(`/api/v2/measurements/baselines/${baseline.id}/approve`, {
    method: "POST",
  });
  t.is(approved.status, 201);
  t.like(approved.body, { node_size: "tiny", mrtd: BAD, rtmr: [ZERO, ZERO, ZERO, ZERO], added_by: "admin" });
  const listing = await cp.api<Listing>("/api/v2/measurements");
  t.deepEqual(listing.body.trusted, [approved.body]);
  t.deepEqual(listing.body.baselines, [], "the approved baseline is gone");
  await waitFor(
    "the agent registers on its next attempt",
    () => agentState(cp.cp, agent.agentId) === "registered",
    15_000,
  );

  const removed = await cp.api(`/api/v2/measurements/${approved.body.id}`, { method: "DELETE" });
  t.is(removed.status, 204);
  t.is(removed.body, null);
  t.is(await attempt(t, cp, BAD), "EE-ATT-MRTD-NOT-ALLOWED");
  const again = await waitFor("the baseline again", async () => {
    const { body } = await cp.api<Listing>("/api/v2/measurements");
    return body.trusted.length === 0 ? body.baselines[0] : undefined;
  });
  t.is(again.mrtd, BAD);

  const audit = await measurementEvents(cp);
  t.deepEqual(
    audit.map((e) => e.kind),
    ["measurement.baseline_approved", "measurement.removed"],
  );
  t.like(audit[0]?.data, { by: "admin", entry: approved.body, baseline: { id: baseline.id, mrtd: BAD } });
  t.like(audit[1]?.data, { by: "admin", entry: approved.body });
});

test("an added entry with pinned RTMRs admits exactly that image; duplicates conflict", async (t) => {
  const policy = policySchema.parse({
    mrtd: { mode: "strict", allow: { tiny: [GOOD] } },
    rtmr: { mode: "strict", allow: {} },
  });
  const cp = await startTestCp(t, { policy });
  t.is(await attempt(t, cp, BAD), "EE-ATT-MRTD-NOT-ALLOWED");
  const entry = { node_size: "*", mrtd: BAD.toUpperCase(), rtmr: [ZERO, ZERO, ZERO, ZERO], note: "image v2" };
  const added = await cp.api<Entry>("/api/v2/measurements", post(entry));
  t.is(added.status, 201);
  t.like(added.body, { node_size: "*", mrtd: BAD, note: "image v2", added_by: "admin" });
  t.is(await attempt(t, cp, BAD), "registered");
  // The RTMRs are trusted together with that MRTD only.
  const withOther = await cp.api("/api/v2/measurements", post({ node_size: "tiny", mrtd: OTHER }));
  t.is(withOther.status, 201);
  t.is(await attempt(t, cp, GOOD), "EE-ATT-RTMR-NOT-ALLOWED");
  t.is(await attempt(t, cp, OTHER), "registered", "an entry without rtmr accepts any RTMRs");
  const dup = await cp.api<{ error: { code: string } }>("/api/v2/measurements", post(entry));
  t.is(dup.status, 409);
  t.is(dup.body.error.code, "EE-CONFLICT-STATE");
  const { body } = await cp.api<Listing>("/api/v2/measurements");
  t.is(body.trusted.length, 2);
  t.deepEqual(
    (await measurementEvents(cp)).map((e) => e.kind),
    ["measurement.added", "measurement.added"],
  );
});

test("approved entries survive a CP restart", async (t) => {
  const first = await startTestCp(t, { policy: strictMrtd });
  t.is((await first.api("/api/v2/measurements", post({ node_size: "tiny", mrtd: BAD }))).status, 201);
  await first.cp.stop();
  const second = await startTestCp(t, { policy: strictMrtd, dataDir: first.dataDir });
  t.is((await second.api<Listing>("/api/v2/measurements")).body.trusted[0]?.mrtd, BAD);
  t.is(await attempt(t, second, BAD), "registered");
});

test("bad requests are 400 or 404 with a code and change nothing; no token is 401", async (t) => {
  const cp = await startTestCp(t, { policy: strictMrtd });
  const bodies: unknown[] = [
    {},
    { node_size: "tiny" },
    { node_size: "tiny", mrtd: "zz".repeat(48) },
    { node_size: "tiny", mrtd: BAD.slice(1) },
    { node_size: "tiny", mrtd: BAD, rtmr: [ZERO, ZERO, ZERO] },
    { node_size: "tiny", mrtd: BAD, rtmr: [ZERO, ZERO, ZERO, null] },
    { node_size: "tiny", mrtd: BAD, extra: 1 },
    { node_size: "huge", mrtd: BAD },
    { node_size: "", mrtd: BAD },
    { node_size: "tiny", mrtd: BAD, note: "x".repeat(513) },
    [],
    "{not json",
  ];
  for (const body of bodies) {
    const res = await cp.api<{ error: { code: string } }>("/api/v2/measurements", {
      ...post(body),
      badRequest: true,
    });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, "EE-REQ-INVALID");
  }
  const notFound = [
    ["DELETE", "/api/v2/measurements/999"],
    ["POST", "/api/v2/measurements/baselines/999/approve"],
  ];
  for (const [method, path] of notFound) {
    const res = await cp.api<{ error: { code: string } }>(path!, { method: method! });
    t.is(res.status, 404, path);
    t.is(res.body.error.code, "EE-NOT-FOUND");
  }
  const badId = await cp.api<{ error: { code: string } }>("/api/v2/measurements/abc", {
    method: "DELETE",
    badRequest: true,
  });
  t.is(badId.status, 400);
  t.is(badId.body.error.code, "EE-REQ-INVALID");

  const unauthenticated: [string, RequestInit][] = [
    ["/api/v2/measurements", {}],
    ["/api/v2/measurements", post({ node_size: "tiny", mrtd: BAD })],
    ["/api/v2/measurements/1", { method: "DELETE" }],
    ["/api/v2/measurements/baselines/1/approve", { method: "POST" }],
  ];
  for (const [path, init] of unauthenticated) {
    for (const token of [null, "wrong-token-wrong-token"]) {
      const res = await cp.api<{ error: { code: string } }>(path, { ...init, token });
      t.is(res.status, 401, `${init.method ?? "GET"} ${path}`);
      t.regex(res.body.error.code, /^EE-AUTH-(MISSING|INVALID)$/);
    }
  }
  t.deepEqual((await cp.api<Listing>("/api/v2/measurements")).body, { trusted: [], baselines: [] });
  t.deepEqual(await measurementEvents(cp), []);
  t.is(await attempt(t, cp, BAD), "EE-ATT-MRTD-NOT-ALLOWED");
});
