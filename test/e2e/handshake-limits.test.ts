// WebSocket connection abuse (issue 14 item 8): a connection that never registers is closed at the handshake
// deadline; a flood of unregistered connections from one address is held at the per-address cap and the rest are
// refused at the upgrade (HTTP 429) at once, counted in /metrics and audited in aggregate (O(1) event rows, not
// one each); the global cap refuses with 503; registered agents never count, and another host still registers
// while the flood is held.
import { connect as tcpConnect } from "node:net";
import test from "ava";
import { WebSocket } from "ws";
import { CP_DEFAULTS } from "../../actors/cp-defaults.ts";
import { CONNECT_PATH } from "../../spec/protocol.ts";
import {
  agentConfig,
  RawAgent,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";

/** Opens a WebSocket from `localAddress`: "open" when the CP accepted it, else the upgrade's HTTP status. */
function connect(
  t: import("ava").ExecutionContext,
  cp: TestCp["cp"],
  localAddress = "127.0.0.1",
): Promise<{ ws: WebSocket; status: number | "open" }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${cp.wsUrl}${CONNECT_PATH}`, { localAddress });
    t.teardown(() => ws.terminate());
    ws.on("error", () => {});
    ws.once("open", () => resolve({ ws, status: "open" }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0 });
      res.resume();
    });
  });
}

/**
 * A peer that sends the upgrade request by hand and then never answers anything (no close frame, no FIN): when
 * the CP dropped the TCP connection, and the first line the CP answered.
 */
function silentPeer(t: import("ava").ExecutionContext, port: number) {
  const socket = tcpConnect({ port, host: "127.0.0.1", allowHalfOpen: true });
  t.teardown(() => socket.destroy());
  let first = "";
  socket.on("data", (d: Buffer) => {
    if (first === "") first = d.toString("latin1").split("\r\n")[0]!;
  });
  socket.on("error", () => {});
  socket.write(
    `GET ${CONNECT_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const dropped = new Promise<number>((resolve) => socket.on("end", () => resolve(Date.now())));
  return { dropped, first: () => first };
}

async function metric(cp: TestCp["cp"], line: string): Promise<number | undefined> {
  const text = await (await cpContract.fetch(`${cp.url}/metrics`)).text();
  const hit = text.split("\n").find((l) => l.startsWith(`${line} `));
  return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
}

async function refusedRows(tcp: TestCp, reason: string) {
  const { body } = await tcp.api<{ events: { kind: string; data: { reason?: string; count?: number } }[] }>(
    "/api/v2/events?kind=agent.refused&limit=1000",
  );
  return body.events.filter((e) => e.data.reason === reason);
}

test("a connection that never registers is closed at the handshake deadline (4004), and stops counting", async (t) => {
  const { cp } = await startTestCp(t, { handshake: { deadlineMs: 1500 } });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const t0 = Date.now();
  await raw.next("challenge");
  const closed = await raw.closed;
  const took = Date.now() - t0;
  t.is(closed.code, 4004);
  t.is(closed.reason, "EE-PROTO-REGISTER-TIMEOUT");
  t.true(took >= 1400 && took < 15_000, `closed after ${took} ms`);
  await waitFor("pending back to 0", async () => (await metric(cp, "ee_agent_connections_pending")) === 0);
});

test("the default handshake deadline is a few seconds, well inside the challenge's life", (t) => {
  t.true(CP_DEFAULTS.handshakeMs <= 10_000);
  t.true(CP_DEFAULTS.handshakeMs < CP_DEFAULTS.challengeTtlMs);
});

test("a flood from one address is held at the per-address cap, refused with 429, counted and audited in aggregate; other hosts and registered agents are unaffected", async (t) => {
  const intervalMs = 1000;
  const tcp = await startTestCp(t, { refusalAuditMs: intervalMs });
  const { cp, devDir } = tcp;
  const cap = CP_DEFAULTS.maxPendingPerAddress;
  // Registered before the flood, from the flooded address: registered agents never count against the cap.
  const early = await RawAgent.connect(t, cp.wsUrl);
  await early.register(devDir, { vm_name: "early" });

  const flood = 1000;
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: flood }, () => connect(t, cp)));
  const floodMs = Date.now() - t0;
  const held = results.filter((r) => r.status === "open").length;
  const refused = results.filter((r) => r.status === 429).length;
  t.is(held, cap, "exactly the cap is held");
  t.is(refused, flood - cap, "every other upgrade gets 429");
  t.true(floodMs < 30_000, `the flood was answered in ${floodMs} ms`);

  // While the flood is held: another host registers, and the early agent is still connected.
  const other = await RawAgent.connect(t, cp.wsUrl, undefined, { localAddress: "127.0.0.2" });
  const registered = await other.register(devDir, { vm_name: "other" });
  t.truthy(registered.body.agent_id);
  t.is(early.ws.readyState, WebSocket.OPEN);

  t.is(await metric(cp, "ee_agent_connections_pending"), cap);
  t.is(
    await metric(cp, 'ee_agent_connections_refused_total{reason="EE-PROTO-PENDING-ADDRESS"}'),
    flood - cap,
  );
  // O(1) rows whose counts add up to every refusal: the first at once, the rest in one row per interval.
  const rows = await waitFor("the aggregated audit rows", async () => {
    const r = await refusedRows(tcp, "EE-PROTO-PENDING-ADDRESS");
    return r.reduce((n, e) => n + (e.data.count ?? 0), 0) === flood - cap ? r : undefined;
  });
  // The first row, then at most one per interval the flood and this wait touched, however many were refused.
  const intervals = Math.ceil((Date.now() - t0) / intervalMs) + 1;
  t.true(rows.length <= 1 + intervals, `${rows.length} audit rows over ${intervals} intervals`);
  t.true(rows.length < 30, `${rows.length} audit rows for ${flood - cap} refusals`);
});

test("the global cap refuses with 503 once every source together holds it", async (t) => {
  const { cp } = await startTestCp(t, { handshake: { maxPendingPerAddress: 5, maxPending: 8 } });
  const a = await Promise.all(Array.from({ length: 5 }, () => connect(t, cp, "127.0.0.1")));
  const b = await Promise.all(Array.from({ length: 3 }, () => connect(t, cp, "127.0.0.2")));
  t.true([...a, ...b].every((r) => r.status === "open"));
  t.is((await connect(t, cp, "127.0.0.3")).status, 503);
  t.is((await connect(t, cp, "127.0.0.1")).status, 429, "the per-address cap is checked first");
  // A slot frees when a pending connection closes.
  a[0]!.ws.terminate();
  await waitFor("a free slot", async () => (await metric(cp, "ee_agent_connections_pending")) === 7);
  t.is((await connect(t, cp, "127.0.0.3")).status, "open");
});

test("a peer that ignores the close frame is dropped soon after the deadline, and one refused at the upgrade at once", async (t) => {
  const { cp } = await startTestCp(t, { handshake: { deadlineMs: 1000, maxPendingPerAddress: 1 } });
  const t0 = Date.now();
  const silent = silentPeer(t, cp.port);
  await waitFor("the 101", () => silent.first() !== "");
  t.is(silent.first(), "HTTP/1.1 101 Switching Protocols");
  const refused = silentPeer(t, cp.port);
  const refusedAt = await refused.dropped;
  t.is(refused.first(), "HTTP/1.1 429 Too Many Requests");
  t.true(refusedAt - t0 < 5_000, `refused after ${refusedAt - t0} ms`);
  const droppedAt = await silent.dropped;
  t.true(
    droppedAt - t0 < 20_000,
    `dropped after ${droppedAt - t0} ms (ws alone waits 30 s for a close frame)`,
  );
  await waitFor("pending back to 0", async () => (await metric(cp, "ee_agent_connections_pending")) === 0);
});

test("a real agent refused at the upgrade (429) retries with its backoff and registers once a slot frees", async (t) => {
  const { cp, devDir } = await startTestCp(t, { handshake: { maxPendingPerAddress: 2 } });
  const held = await Promise.all([connect(t, cp), connect(t, cp)]);
  t.true(held.every((h) => h.status === "open"));
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir));
  await waitFor(
    "the agent's upgrade refused",
    async () =>
      ((await metric(cp, 'ee_agent_connections_refused_total{reason="EE-PROTO-PENDING-ADDRESS"}')) ?? 0) > 0,
  );
  t.is(cp.index.get(agent.agentId), undefined, "not registered while the address is full");
  for (const h of held) h.ws.terminate();
  await waitFor("registration", () => cp.index.get(agent.agentId)?.state === "registered", 60_000);
  t.pass();
});
