// A followed log stream relayed by a real CP from a hand-driven agent: a client that stops reading is cut off at
// the buffer cap (the agent is sent `cancel`, the stream ends with an EE-PROTO-SLOW-CONSUMER error line), one that
// leaves before the first line is cancelled too, and a failure after the 200 reaches eectl as
// `eectl: CODE: message` with exit 1.
import { get, type IncomingMessage } from "node:http";
import test, { type ExecutionContext } from "ava";
import { encodeFrame } from "../../transport/frame.ts";
import { FOLLOW_MAX_BUFFERED_BYTES } from "../../transport/rest/deployments.ts";
import { eectlRunning } from "../helpers/cli.ts";
import { ADMIN_TOKEN, RawAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";

async function setup(t: ExecutionContext) {
  const tcp = await startTestCp(t);
  const agent = await RawAgent.connect(t, tcp.cp.wsUrl);
  await agent.register(tcp.devDir);
  return { tcp, agent };
}

/** A log_chunk of 30 lines of 1 KiB (about 32 KiB of ndjson once relayed). */
function chunk(re: number, n: number): Uint8Array {
  const lines = Array.from({ length: 30 }, (_, i) => ({
    service: "web",
    stream: "stdout" as const,
    ts: new Date().toISOString(),
    text: `${n}.${i} ${"x".repeat(1024)}`,
  }));
  return encodeFrame("log_chunk", { lines, done: false }, { re });
}

async function pendingRequests(tcp: TestCp): Promise<number> {
  const metrics = await (await cpContract.fetch(`${tcp.cp.url}/metrics`)).text();
  return Number(/^ee_agent_requests_pending (\d+)$/m.exec(metrics)?.[1]);
}

test("a follow whose client stops reading is cancelled at the cap and ends with EE-PROTO-SLOW-CONSUMER", async (t) => {
  const { tcp, agent } = await setup(t);
  const response = new Promise<IncomingMessage>((resolve, reject) =>
    get(
      `${tcp.cp.url}/api/v2/agents/${agent.agentId}/logs?follow=true`,
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
      resolve,
    ).on("error", reject),
  );
  const { id } = await agent.next("logs");
  // Headers leave with the first line; from then on the client reads nothing.
  agent.ws.send(chunk(id!, 0));
  const res = await response;
  t.teardown(() => res.destroy());
  res.pause();
  t.is(res.statusCode, 200);

  // Loopback socket buffers take several MiB before anything waits in the CP: send far beyond them and the cap.
  const limit = 64 * 1024 * 1024;
  let sent = 0;
  while (sent < limit && !agent.frames.some((f) => f.type === "cancel")) {
    for (let i = 0; i < 8; i++, sent += 32 * 1024) agent.ws.send(chunk(id!, sent));
    await new Promise((r) => setTimeout(r, 1));
  }
  const cancel = await agent.next("cancel");
  t.is(cancel.re, id, "the agent's follow is cancelled");
  t.true(sent < limit, `${sent} bytes sent before the cancel`);
  t.true(sent > FOLLOW_MAX_BUFFERED_BYTES);
  await waitFor("the relayed request to be forgotten", async () => (await pendingRequests(tcp)) === 0);

  // The client reads again: what was held, then the error line, then the end.
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (d: string) => {
    text += d;
  });
  res.resume();
  await new Promise((resolve) => res.on("end", resolve));
  const lines = text.trimEnd().split("\n");
  t.like(JSON.parse(lines.at(-1)!), { error: { code: "EE-PROTO-SLOW-CONSUMER" } });
  t.like(JSON.parse(lines[0]!), { service: "web", stream: "stdout" });
});

test("a follow whose client leaves before the first line is cancelled too", async (t) => {
  const { tcp, agent } = await setup(t);
  const req = get(`${tcp.cp.url}/api/v2/agents/${agent.agentId}/logs?follow=true`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  }).on("error", () => {});
  const { id } = await agent.next("logs");
  // Gone while the CP still waits to see whether the agent refuses (before any status is sent).
  req.destroy();
  const cancel = await agent.next("cancel");
  t.is(cancel.re, id);
  await waitFor("the relayed request to be forgotten", async () => (await pendingRequests(tcp)) === 0);
});

test("eectl logs -f prints a failure told after the 200 as CODE: message and exits 1", async (t) => {
  const { tcp, agent } = await setup(t);
  const run = eectlRunning(t, ["logs", agent.agentId, "-f"], {
    EE_CP_URL: tcp.cp.url,
    EE_TOKEN: ADMIN_TOKEN,
  });
  // The request comes once the eectl child has started: seconds on a loaded machine.
  const { id } = await agent.next("logs", 20_000);
  agent.ws.send(
    encodeFrame(
      "log_chunk",
      {
        lines: [{ service: "web", stream: "stdout", ts: "2025-01-01T00:00:00.000Z", text: "hello" }],
        done: false,
      },
      { re: id! },
    ),
  );
  // The line is printed before the agent goes away, so the CP has already answered 200.
  await waitFor("the line printed", () => run.stdout().includes("hello"), 20_000);
  agent.ws.terminate();
  const code = await run.exited;
  t.is(run.stdout(), "2025-01-01T00:00:00.000Z web stdout| hello\n");
  t.regex(run.stderr(), /^eectl: EE-WORKLOAD-AGENT-LOST: /);
  t.is(code, 1);
});
