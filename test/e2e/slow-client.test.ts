// A client that trickles its request headers (slowloris) is cut by the CP's HTTP server at the headers deadline,
// with a 408, while other clients are served; the deadline is lowered here through restTimeouts, and the defaults
// keep the cut within 90 s.
import { connect } from "node:net";
import test from "ava";
import { REST_TIMEOUTS } from "../../actors/cp-defaults.ts";
import { startTestCp } from "../helpers/cluster.ts";

test("a client trickling its headers is cut with 408 at the headers deadline; others are served meanwhile", async (t) => {
  const headersTimeoutMs = 1_000;
  const { cp, api } = await startTestCp(t, { restTimeouts: { headersTimeoutMs, checkIntervalMs: 100 } });
  const socket = connect(cp.port, "127.0.0.1");
  t.teardown(() => socket.destroy());
  const received: Buffer[] = [];
  socket.on("data", (c: Buffer) => received.push(c));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const started = Date.now();
  socket.write("GET /healthz HTTP/1.1\r\nHost: cp\r\n");
  // One header line every 100 ms: each write is progress, but the request never completes.
  const trickle = setInterval(() => socket.writable && socket.write(`X-Slow-${Date.now()}: 1\r\n`), 100);
  t.teardown(() => clearInterval(trickle));
  // Past this the server has not cut it: end it here so the assertions below fail instead of the test hanging.
  const giveUp = setTimeout(() => socket.destroy(), headersTimeoutMs + 10_000);
  t.teardown(() => clearTimeout(giveUp));
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  clearInterval(trickle);
  const heldMs = Date.now() - started;

  t.regex(Buffer.concat(received).toString(), /^HTTP\/1\.1 408 /);
  t.true(heldMs >= headersTimeoutMs - 50, `cut after ${heldMs} ms, not before the deadline`);
  t.true(heldMs < headersTimeoutMs + 10_000, `cut after ${heldMs} ms`);
  t.is((await api("/healthz", { token: null })).status, 200, "the CP still serves");
});

test("by default a slow client is cut within 90 s (headers deadline plus one check interval)", (t) => {
  t.true(REST_TIMEOUTS.headersTimeoutMs + REST_TIMEOUTS.checkIntervalMs <= 90_000);
  t.true(REST_TIMEOUTS.requestTimeoutMs >= REST_TIMEOUTS.headersTimeoutMs, "Node requires this order");
});
