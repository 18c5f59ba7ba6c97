// Hostile input on the agent channel: every kind of malformed frame gets its code, nothing takes the CP down,
// and a well-behaved agent still registers afterwards.
import test from "ava";
import { pack } from "msgpackr";
import { RawAgent, startTestCp } from "../helpers/cluster.ts";

test("malformed frames get error frames; abuse, garbage, text and oversize close the socket", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, { staleAfterMs: 120_000 });

  // Structurally valid envelopes with bad content: answered, connection kept.
  const chatty = await RawAgent.connect(t, cp.wsUrl);
  await chatty.next("challenge");
  const softCases: [Uint8Array, string][] = [
    [pack({ v: 1, type: "nope", id: 1, body: {} }), "EE-PROTO-UNKNOWN-TYPE"],
    [pack({ v: 1, type: "registered", id: 2, body: {} }), "EE-PROTO-UNKNOWN-TYPE"],
    [pack({ v: 1, type: "heartbeat", id: 3, body: { seq: "x" } }), "EE-PROTO-INVALID-BODY"],
    [pack({ v: 1, type: "heartbeat", id: 4, body: { seq: 1, sent_at: 1 } }), "EE-PROTO-UNEXPECTED"],
    [pack({ v: 1, type: "register", id: 5, body: { vm_name: 5 } }), "EE-PROTO-INVALID-BODY"],
  ];
  for (const [frame, code] of softCases) {
    chatty.sendRaw(frame);
    const err = await chatty.next("error");
    t.is(err.body.code, code);
    t.is(typeof err.re, "number");
  }
  // The sixth bad frame within the window closes it as abuse.
  chatty.sendRaw(pack({ v: 1, type: "nope", id: 6, body: {} }));
  t.is((await chatty.next("error")).body.code, "EE-PROTO-ABUSE");
  t.is((await chatty.closed).code, 4001);

  const hardCases: [Uint8Array | string, number, string | null][] = [
    [new Uint8Array([0xc1, 0x00, 0xff]), 4000, "EE-PROTO-UNDECODABLE"],
    [pack([1, 2, 3]), 4000, "EE-PROTO-UNDECODABLE"],
    [pack({ v: 9, type: "heartbeat", body: {} }), 4002, "EE-PROTO-VERSION"],
    ['{"type":"register"}', 4000, "EE-PROTO-TEXT-FRAME"],
    [new Uint8Array(70 * 1024), 1009, null],
  ];
  for (const [frame, close, code] of hardCases) {
    const raw = await RawAgent.connect(t, cp.wsUrl);
    await raw.next("challenge");
    raw.sendRaw(frame);
    if (code) t.is((await raw.next("error")).body.code, code);
    t.is((await raw.closed).code, close);
  }

  t.is((await api("/healthz", { token: null })).status, 200);
  const good = await RawAgent.connect(t, cp.wsUrl);
  await good.register(devDir);
  t.is(cp.index.get(good.agentId)?.state, "registered");
});

test("a second register on a registered connection is unexpected", async (t) => {
  const { cp, devDir } = await startTestCp(t, { staleAfterMs: 120_000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await raw.next("challenge");
  const reg = await raw.registerBody(devDir, body.nonce);
  raw.send("register", reg);
  await raw.next("registered");
  raw.send("register", reg);
  t.is((await raw.next("error")).body.code, "EE-PROTO-UNEXPECTED");
  t.is(cp.index.get(raw.agentId)?.state, "registered");
});

test("upgrades on other paths are refused", async (t) => {
  const { cp } = await startTestCp(t);
  const WebSocket = (await import("ws")).default;
  const ws = new WebSocket(`${cp.wsUrl}/api/v2/other`);
  const err = await new Promise<Error>((resolve) => ws.on("error", resolve));
  t.regex(err.message, /404/);
});
