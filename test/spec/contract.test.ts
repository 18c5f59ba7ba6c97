// The contract check the tests' REST clients run (test/helpers/contract.ts) can fail: on made-up exchanges it
// refuses an undocumented field (also inside allOf/anyOf combinations), an undocumented status, path, path or
// query parameter or content type, and a request body off its schema, and lets through what the documents describe.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { agentContract, ContractViolation, cpContract, type Exchange } from "../helpers/contract.ts";

const json = (x: Omit<Exchange, "responseType">, body?: unknown): Exchange => ({
  responseType: "application/json; charset=utf-8",
  ...x,
  ...(body === undefined ? {} : { responseBody: JSON.stringify(body) }),
});

const agent = {
  agent_id: "agt_0123456789abcdef01234567",
  vm_name: "vm-1",
  node_size: "tiny",
  datacenter: "baremetal:local",
  state: "registered",
  last_heartbeat_at: "2026-01-01T00:00:00.000Z",
  deployment_id: null,
};

const refused = (t: import("ava").ExecutionContext, x: Exchange, message: RegExp) =>
  t.throws(() => cpContract.check(x), { instanceOf: ContractViolation, message });

test("a documented answer passes; an undocumented field fails, at the top and nested", (t) => {
  const list = { method: "GET", url: "/api/v2/agents", status: 200 };
  t.notThrows(() => cpContract.check(json(list, { agents: [agent] })));
  refused(t, json(list, { agents: [agent], total: 1 }), /must NOT have unevaluated properties.*total/);
  refused(
    t,
    json(list, { agents: [{ ...agent, secret: "x" }] }),
    /\/agents\/0 must NOT have unevaluated.*secret/,
  );
  refused(t, json(list, { agents: [{ ...agent, state: "dancing" }] }), /\/agents\/0\/state must be equal/);
});

test("allOf combinations stay strict without refusing what a branch allows", (t) => {
  const one = { method: "GET", url: "/api/v2/agents/agt_1", status: 200 };
  const machine = { value: "registered", context: {} };
  t.notThrows(() => cpContract.check(json(one, { ...agent, machine })));
  refused(t, json(one, { ...agent, machine, extra: 1 }), /unevaluated properties.*extra/);
  refused(
    t,
    json(one, { ...agent, machine: { ...machine, extra: 1 } }),
    /\/machine must NOT have unevaluated/,
  );
  // NotReady is Error combined with a narrower `error`: the message Error allows must still pass.
  const notReady = { method: "POST", url: "/api/v2/deployments", status: 503, requestBody: undefined };
  const details = { rule: "settle", known_before: null, back: 0, needed: null };
  const body = { error: { code: "EE-NOT-READY", message: "not ready", details } };
  t.notThrows(() => cpContract.check(json(notReady, body)));
  refused(t, json(notReady, { error: { ...body.error, details: { ...details, x: 1 } } }), /\/error\/details/);
  refused(t, json(notReady, { error: { ...body.error, code: "EE-OTHER" } }), /\/error\/code must be equal/);
});

test("an undocumented status, path, path or query parameter or content type fails", (t) => {
  refused(t, json({ method: "GET", url: "/api/v2/agents", status: 500 }, {}), /answered 500, which GET/);
  refused(t, json({ method: "GET", url: "/api/v2/nothing", status: 404 }, {}), /not an operation/);
  refused(
    t,
    json({ method: "GET", url: "/api/v2/agents?colour=red", status: 200 }, { agents: [] }),
    /colour/,
  );
  refused(
    t,
    { method: "GET", url: "/api/v2/agents", status: 200, responseType: "text/plain", responseBody: "hi" },
    /as text\/plain/,
  );
  refused(t, { method: "GET", url: "/healthz", status: 204, responseType: null, responseBody: "" }, /204/);
  const removed = { method: "DELETE", status: 204, responseType: null, responseBody: "" };
  refused(t, { ...removed, url: "/api/v2/measurements/abc" }, /path parameter id/);
  t.notThrows(() => cpContract.check({ ...removed, url: "/api/v2/measurements/7" }));
});

test("a request body off its schema fails unless the test marks it bad on purpose; the answer is still checked", (t) => {
  const post = {
    method: "POST",
    url: "/api/v2/measurements",
    requestType: "application/json",
    requestBody: JSON.stringify({ node_size: "tiny", mrtd: "00".repeat(48), colour: "red" }),
    status: 400,
  };
  const error = { error: { code: "EE-REQ-INVALID", message: "no" } };
  refused(t, json(post, error), /request body does not match.*colour/);
  t.notThrows(() => cpContract.check(json({ ...post, badRequest: true }, error)));
  refused(t, json({ ...post, badRequest: true }, { error: { ...error.error, stack: "…" } }), /stack/);
  t.notThrows(() =>
    cpContract.check(json({ method: "GET", url: "/api/v2/nothing", status: 404, badRequest: true }, error)),
  );
});

test("the agent's API is held to its own document; the workload's answers are the workload's", (t) => {
  const health = { method: "GET", url: "/api/state-snapshot", status: 200 };
  t.notThrows(() => agentContract.check(json(health, { workload: null, anything: 1 })));
  const stats = { method: "GET", url: "/api/stats", status: 200 };
  const host = { cpus: 2, load_avg: [0, 0, 0], memory_total_bytes: 1, memory_free_bytes: 1, uptime_s: 1 };
  t.notThrows(() => agentContract.check(json(stats, { containers: [], host })));
  t.throws(() => agentContract.check(json(stats, { containers: [], host: { ...host, gpu: 1 } })), {
    instanceOf: ContractViolation,
    message: /\/host must NOT have unevaluated properties/,
  });
  t.notThrows(() =>
    agentContract.check({
      method: "GET",
      url: "/index.html",
      status: 200,
      responseType: "text/html",
      responseBody: "x",
    }),
  );
});

test("an ndjson stream is checked line by line as it is read", async (t) => {
  const line = { service: "web", stream: "stdout", ts: "2026-01-01T00:00:00Z", text: "hi" };
  const server = createServer((_, res) => {
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(`${JSON.stringify(line)}\n`);
    res.end(`${JSON.stringify({ ...line, pid: 1 })}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const res = await agentContract.fetch(`http://127.0.0.1:${port}/api/logs?follow=true`);
  t.is(res.status, 200);
  await t.throwsAsync(res.text(), { instanceOf: ContractViolation, message: /line .*pid/ });
});
