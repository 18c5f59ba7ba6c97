// AgentRequests: relayed reads correlated by `re`, failed when the connection they were sent on closes.
import test from "ava";
import type { AgentLink } from "../../actors/agent-link.ts";
import { AgentRequests } from "../../actors/agent-requests.ts";
import { silentLogger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";

function setup() {
  const sent: number[] = [];
  let nextId = 1;
  const link: AgentLink = {
    send: (_agentId, _type, _body, ids) => sent.push(ids!.conn!) > 0,
    nextFrameId: () => nextId++,
    close: () => {},
  };
  const conns = new Map<string, number>();
  const requests = new AgentRequests({
    link,
    connOf: (id) => conns.get(id) ?? null,
    log: silentLogger,
    timeoutMs: 60_000,
  });
  return { sent, conns, requests };
}

test("a superseded socket's close fails only the requests sent on it", async (t) => {
  const s = setup();
  s.conns.set("agt_a", 1);
  const onOld = s.requests.request("agt_a", "stats");
  // The agent reconnected; the old socket's close arrives after a request went out on the new one.
  s.conns.set("agt_a", 2);
  const onNew = s.requests.request("agt_a", "snapshot");
  t.deepEqual(s.sent, [1, 2]);
  s.requests.forget("agt_a", 1);
  const err = await t.throwsAsync(onOld, { instanceOf: WorkloadError });
  t.is(err?.code, "EE-WORKLOAD-AGENT-LOST");
  t.is(s.requests.size, 1);
  t.true(s.requests.reply("agt_a", 2, { ok: true }));
  t.deepEqual(await onNew, { ok: true });
  t.is(s.requests.size, 0);
});

test("an answer from another agent does not settle a request", async (t) => {
  const s = setup();
  s.conns.set("agt_a", 1);
  const pending = s.requests.request("agt_a", "stats");
  t.false(s.requests.reply("agt_b", 1, {}));
  t.true(s.requests.error("agt_a", 1, { code: "EE-WORKLOAD-NONE", message: "nothing runs" }));
  const err = await t.throwsAsync(pending, { instanceOf: WorkloadError });
  t.is(err?.code, "EE-WORKLOAD-NONE");
});
