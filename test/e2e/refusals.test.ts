// Registrations that must be refused, each with its stable reason code, an error frame, close 4003 and an
// audit event — and nothing registered.
import test from "ava";
import { devInit } from "../../attestation/dev-pki.ts";
import { RawAgent, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

async function expectRefusal(t: import("ava").ExecutionContext, raw: RawAgent, code: string) {
  const err = await raw.next("error");
  t.is(err.body.code, code);
  const closed = await raw.closed;
  t.is(closed.code, 4003);
  t.is(closed.reason, code);
}

async function audited(api: Awaited<ReturnType<typeof startTestCp>>["api"], code: string) {
  return waitFor(`audit event for ${code}`, async () => {
    const { body } = await api<{ events: { kind: string; data: { reason?: string } }[] }>(
      "/api/v2/events?limit=1000",
    );
    return body.events.find(
      (e) => (e.kind === "agent.rejected" || e.kind === "agent.refused") && e.data.reason === code,
    );
  });
}

test("a quote bound to another nonce is refused (EE-ATT-REPORTDATA-MISMATCH)", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await raw.next("challenge");
  raw.send(
    "register",
    await raw.registerBody(devDir, body.nonce, {}, { quoteNonce: new Uint8Array(32).fill(7) }),
  );
  await expectRefusal(t, raw, "EE-ATT-REPORTDATA-MISMATCH");
  await audited(api, "EE-ATT-REPORTDATA-MISMATCH");
  t.is(cp.index.size, 0, "a refused new agent is not kept");
});

test("REPORTDATA must equal the binding exactly: one flipped bit, or only the first half right, is refused", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const forgeries: [string, (bound: Uint8Array) => Uint8Array][] = [
    ["last bit flipped", (b) => b.map((x, i) => (i === b.length - 1 ? x ^ 1 : x))],
    ["first half only", (b) => Uint8Array.from([...b.subarray(0, 32), ...new Uint8Array(32)])],
    ["second half only", (b) => Uint8Array.from([...new Uint8Array(32), ...b.subarray(32)])],
  ];
  for (const [what, reportData] of forgeries) {
    const raw = await RawAgent.connect(t, cp.wsUrl);
    const { body } = await raw.next("challenge");
    raw.send("register", await raw.registerBody(devDir, body.nonce, {}, { reportData }));
    const err = await raw.next("error");
    t.is(err.body.code, "EE-ATT-REPORTDATA-MISMATCH", what);
  }
  t.is(cp.index.size, 0);
});

test("a nonce from another connection is refused (EE-ATT-NONCE-UNKNOWN)", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const a = await RawAgent.connect(t, cp.wsUrl);
  const b = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await a.next("challenge");
  await b.next("challenge");
  b.send("register", await b.registerBody(devDir, body.nonce));
  await expectRefusal(t, b, "EE-ATT-NONCE-UNKNOWN");
  await audited(api, "EE-ATT-NONCE-UNKNOWN");
});

// A raw agent sends no heartbeats: a stale-after long enough for a loaded machine keeps "undisturbed" about the
// refusal, not about the clock.
const QUIET = { staleAfterMs: 120_000 } as const;

test("a replayed registration is refused (EE-ATT-NONCE-REPLAYED)", async (t) => {
  const { cp, devDir } = await startTestCp(t, QUIET);
  const first = await RawAgent.connect(t, cp.wsUrl);
  const { body: challenge } = await first.next("challenge");
  const register = await first.registerBody(devDir, challenge.nonce);
  first.send("register", register);
  await first.next("registered");
  // An eavesdropper replays the exact frame body on a new connection.
  const replay = await RawAgent.connect(t, cp.wsUrl, first.key);
  await replay.next("challenge");
  replay.send("register", register);
  await expectRefusal(t, replay, "EE-ATT-NONCE-REPLAYED");
  t.is(cp.index.get(first.agentId)?.state, "registered", "the real agent is undisturbed");
});

test("an expired nonce is refused (EE-ATT-NONCE-EXPIRED); silence is closed with 4004", async (t) => {
  const { cp, devDir } = await startTestCp(t, { challengeTtlMs: 150 });
  const late = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await late.next("challenge");
  // The nonce's own expiry (challengeTtlMs after the challenge), on the CP's clock, which is this process's.
  await waitFor("the nonce to expire", () => (Date.now() > body.expires_at ? true : undefined));
  late.send("register", await late.registerBody(devDir, body.nonce));
  await expectRefusal(t, late, "EE-ATT-NONCE-EXPIRED");

  const silent = await RawAgent.connect(t, cp.wsUrl);
  const closed = await silent.closed;
  t.is(closed.code, 4004);
  t.is(closed.reason, "EE-PROTO-REGISTER-TIMEOUT");
});

test("a quote signed under an untrusted root is refused (EE-ATT-ROOT-UNTRUSTED)", async (t) => {
  const { cp } = await startTestCp(t);
  const rogueDir = tempDir(t, "ee-rogue-");
  await devInit(rogueDir);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await raw.next("challenge");
  raw.send("register", await raw.registerBody(rogueDir, body.nonce));
  await expectRefusal(t, raw, "EE-ATT-ROOT-UNTRUSTED");
});

test("a CP without --dev-attestation refuses dev quotes", async (t) => {
  const devDir = (await startTestCp(t)).devDir;
  const { cp } = await startTestCp(t, { devAttestationDir: undefined });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await raw.next("challenge");
  raw.send("register", await raw.registerBody(devDir, body.nonce));
  await expectRefusal(t, raw, "EE-ATT-ROOT-UNTRUSTED");
});

test("a tampered quote is refused (EE-ATT-QUOTE-SIGNATURE)", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await raw.next("challenge");
  const reg = await raw.registerBody(devDir, body.nonce);
  const quote = new Uint8Array(reg.quote);
  quote[48 + 136] = quote[48 + 136]! ^ 0xff; // first byte of MRTD
  raw.send("register", { ...reg, quote });
  await expectRefusal(t, raw, "EE-ATT-QUOTE-SIGNATURE");
});

test("someone else's public key is refused (EE-ATT-POP-INVALID)", async (t) => {
  const { cp, devDir } = await startTestCp(t, QUIET);
  const victim = await RawAgent.connect(t, cp.wsUrl);
  await victim.register(devDir);
  const thief = await RawAgent.connect(t, cp.wsUrl);
  const { body } = await thief.next("challenge");
  const reg = await thief.registerBody(devDir, body.nonce);
  thief.send("register", { ...reg, agent_pubkey: victim.key.pub });
  await expectRefusal(t, thief, "EE-ATT-POP-INVALID");
  t.is(cp.index.get(victim.agentId)?.state, "registered");
  t.is(cp.index.get(victim.agentId)?.connected, true);
});

test("node_size and datacenter policy (EE-REG-NODE-SIZE, EE-REG-DATACENTER)", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  for (const [over, code] of [
    [{ node_size: "huge" }, "EE-REG-NODE-SIZE"],
    [{ datacenter: "nozone" }, "EE-REG-DATACENTER"],
  ] as const) {
    const raw = await RawAgent.connect(t, cp.wsUrl);
    const { body } = await raw.next("challenge");
    raw.send("register", await raw.registerBody(devDir, body.nonce, over));
    await expectRefusal(t, raw, code);
  }
  t.is(cp.index.size, 0);
});

test("drift: a live vm_name with another MRTD, node_size or datacenter is refused (EE-REG-DRIFT)", async (t) => {
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 5000 });
  const live = await RawAgent.connect(t, cp.wsUrl);
  await live.register(devDir, { vm_name: "vm-d" }, { mrtd: "11".repeat(48) });

  const cases = [
    [{ vm_name: "vm-d" }, { mrtd: "22".repeat(48) }, "EE-REG-DRIFT"],
    [{ vm_name: "vm-d", node_size: "llm" }, { mrtd: "11".repeat(48) }, "EE-REG-DRIFT"],
    [{ vm_name: "vm-d", datacenter: "gcp:us-east1-b" }, { mrtd: "11".repeat(48) }, "EE-REG-DRIFT"],
    [{ vm_name: "vm-d" }, { mrtd: "11".repeat(48) }, "EE-REG-DUPLICATE-VM-NAME"],
  ] as const;
  for (const [over, opts, code] of cases) {
    const other = await RawAgent.connect(t, cp.wsUrl);
    const { body } = await other.next("challenge");
    other.send("register", await other.registerBody(devDir, body.nonce, over, opts));
    await expectRefusal(t, other, code);
  }
  // The live agent itself reconnecting with a new MRTD is drift too.
  const again = await RawAgent.connect(t, cp.wsUrl, live.key);
  const { body } = await again.next("challenge");
  again.send(
    "register",
    await again.registerBody(devDir, body.nonce, { vm_name: "vm-d" }, { mrtd: "33".repeat(48) }),
  );
  await expectRefusal(t, again, "EE-REG-DRIFT");
  t.is(cp.index.get(live.agentId), undefined, "a known agent failing verification is dropped");
});

test("a new agent may take over the vm_name of a stale one", async (t) => {
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 300 });
  const old = await RawAgent.connect(t, cp.wsUrl);
  await old.register(devDir, { vm_name: "vm-s" });
  await waitFor("stale", () => cp.index.get(old.agentId)?.state === "stale");
  const fresh = await RawAgent.connect(t, cp.wsUrl);
  await fresh.register(devDir, { vm_name: "vm-s", node_size: "llm" });
  t.is(cp.index.get(fresh.agentId)?.state, "registered");
  t.is(cp.index.get(old.agentId), undefined, "the stale holder was replaced");
});
