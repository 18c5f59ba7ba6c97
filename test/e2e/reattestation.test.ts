// Periodic re-attestation end to end: a real agent answers refresh requests; a changed MRTD or silence takes
// the agent out of placement with a reason shown in its listing, and it stays connected.
import test from "ava";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { workloadHash } from "../../compose/images.ts";
import { encodeFrame } from "../../transport/frame.ts";
import { agentConfig, RawAgent, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";

// Asked often so the tests are quick, answered within a generous time: on a busy machine a 300 ms answer window
// turned correct answers into EE-ATT-REFRESH-TIMEOUT (only the timeout test keeps a short one).
const ANSWER_MS = 15_000;

interface Listed {
  agent_id: string;
  state: string;
  reason: string | null;
  attestation: { status: string; attested_at: string | null };
}

test("a real agent answers re-attestation and stays attested", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, { reattestMs: 300, reattestTimeoutMs: ANSWER_MS });
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-re" }));
  await waitFor("registered", () => cp.index.get(agent.agentId)?.state === "registered");
  const first = cp.index.get(agent.agentId)!.attested_at!;
  await waitFor("re-attested twice", async () => {
    const { body } = await api<{ events: unknown[] }>(
      `/api/v2/events?kind=agent.reattested&agent_id=${agent.agentId}`,
    );
    return body.events.length >= 2;
  });
  const rec = cp.index.get(agent.agentId)!;
  t.is(rec.attestation_status, "ok");
  t.true(rec.attested_at! > first);
  const listed = await api<Listed>(`/api/v2/agents/${agent.agentId}`);
  t.is(listed.body.attestation.status, "ok");
});

test("changed measurements fail re-attestation (EE-ATT-MEASUREMENT-CHANGED) and show in the listing", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, {
    reattestMs: 300,
    reattestTimeoutMs: ANSWER_MS,
    heartbeatMs: 100,
    staleAfterMs: 5000,
  });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir, {}, { mrtd: "11".repeat(48) });
  const req = await raw.next("attest", 10_000);
  t.is(req.body.purpose, "refresh");
  // The TD now measures differently: a correctly bound refresh quote with another MRTD.
  const quote = await createDevQuoteProvider({ dir: devDir, mrtd: "22".repeat(48) }).getQuote(
    reportDataFor("refresh", req.body.nonce, raw.key.pub),
  );
  raw.ws.send(encodeFrame("attestation", { quote }, { re: req.id! }));
  await waitFor("failed", () => cp.index.get(raw.agentId)?.attestation_status === "failed");
  const listed = await api<Listed>(`/api/v2/agents/${raw.agentId}`);
  t.is(listed.body.attestation.status, "failed");
  t.is(listed.body.reason, "EE-ATT-MEASUREMENT-CHANGED");
  t.is(listed.body.state, "registered", "still connected and heartbeating, but not attested");
  const events = await api<{ events: { data: { reason: string } }[] }>(
    "/api/v2/events?kind=agent.reattestation_failed",
  );
  t.is(events.body.events[0]?.data.reason, "EE-ATT-MEASUREMENT-CHANGED");
});

test("a quote bound for registration is not accepted as a refresh (EE-ATT-REPORTDATA-MISMATCH)", async (t) => {
  const { cp, devDir } = await startTestCp(t, {
    reattestMs: 300,
    reattestTimeoutMs: ANSWER_MS,
    heartbeatMs: 100,
    staleAfterMs: 5000,
  });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  const req = await raw.next("attest", 10_000);
  const wrongPurpose = await raw.registerBody(devDir, req.body.nonce);
  raw.ws.send(encodeFrame("attestation", { quote: wrongPurpose.quote }, { re: req.id! }));
  await waitFor("failed", () => cp.index.get(raw.agentId)?.reason === "EE-ATT-REPORTDATA-MISMATCH");
  t.is(cp.index.get(raw.agentId)?.attestation_status, "failed");
});

test("an agent that does not answer fails with EE-ATT-REFRESH-TIMEOUT", async (t) => {
  const { cp, devDir } = await startTestCp(t, { reattestMs: 200, heartbeatMs: 100, staleAfterMs: 5000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  await raw.next("attest", 10_000);
  await waitFor("timed out", () => cp.index.get(raw.agentId)?.reason === "EE-ATT-REFRESH-TIMEOUT", 5000);
  t.is(cp.index.get(raw.agentId)?.attestation_status, "failed");
});

/** A raw agent that takes a deployment and reports it running with `hash`; returns the deployment id. */
const IMAGES = [{ service: "web", ref: "ee-test/busybox:1", digest: `sha256:${"12".repeat(32)}` }];

async function rawAgentRunning(t: import("ava").ExecutionContext, hash: string) {
  // A request left unanswered while the deployment came up blocks the next one until it times out: shorter here.
  const tcp = await startTestCp(t, {
    reattestMs: 300,
    reattestTimeoutMs: 2000,
    heartbeatMs: 100,
    staleAfterMs: 5000,
  });
  const raw = await RawAgent.connect(t, tcp.cp.wsUrl);
  await raw.register(tcp.devDir);
  const posted = await tcp.api<{ deployment_id: string }>("/api/v2/deployments", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ app: "web", compose: "services:\n  web:\n    image: ee-test/busybox:1\n" }),
  });
  t.is(posted.status, 202);
  const deploy = await raw.next("deploy");
  raw.send("deploy_status", {
    deployment_id: deploy.body.deployment_id,
    step: "running",
    at: Date.now(),
    compose_hash: hash,
    images: IMAGES,
  });
  await waitFor("healthy", () => tcp.cp.index.get(raw.agentId)?.state === "healthy");
  // Attest requests sent before the deployment was healthy are answered or dropped; take a fresh one.
  raw.frames.splice(0);
  return { ...tcp, raw };
}

test("an agent running a deployment proves it: a `deployed` quote binding its workload hash keeps it attested", async (t) => {
  const hash = "ab".repeat(32);
  const { cp, devDir, raw } = await rawAgentRunning(t, hash);
  const req = await raw.next("attest", 10_000);
  const workload = workloadHash(hash, IMAGES);
  const quote = await createDevQuoteProvider({ dir: devDir }).getQuote(
    reportDataFor("deployed", req.body.nonce, raw.key.pub, Buffer.from(workload, "hex")),
  );
  const before = cp.index.get(raw.agentId)!.attested_at!;
  raw.ws.send(
    encodeFrame(
      "attestation",
      { quote, purpose: "deployed", compose_hash: hash, workload_hash: workload },
      { re: req.id! },
    ),
  );
  await waitFor("re-attested", () => (cp.index.get(raw.agentId)!.attested_at! > before ? true : undefined));
  t.is(cp.index.get(raw.agentId)?.attestation_status, "ok");
});

test("an agent running a deployment that answers without binding it fails with EE-ATT-WORKLOAD-MISMATCH", async (t) => {
  const hash = "cd".repeat(32);
  const { cp, devDir, raw, api } = await rawAgentRunning(t, hash);
  const req = await raw.next("attest", 10_000);
  const plain = await createDevQuoteProvider({ dir: devDir }).getQuote(
    reportDataFor("refresh", req.body.nonce, raw.key.pub),
  );
  raw.ws.send(encodeFrame("attestation", { quote: plain }, { re: req.id! }));
  await waitFor("failed", () => cp.index.get(raw.agentId)?.reason === "EE-ATT-WORKLOAD-MISMATCH");
  t.is(cp.index.get(raw.agentId)?.attestation_status, "failed");
  // The same compose with another image digest, correctly bound, is refused the same way: the digests are
  // part of what the quote must bind.
  const req2 = await raw.next("attest", 10_000);
  const other = workloadHash(hash, [{ ...IMAGES[0]!, digest: `sha256:${"ef".repeat(32)}` }]);
  t.not(other, workloadHash(hash, IMAGES));
  const swapped = await createDevQuoteProvider({ dir: devDir }).getQuote(
    reportDataFor("deployed", req2.body.nonce, raw.key.pub, Buffer.from(other, "hex")),
  );
  raw.ws.send(
    encodeFrame(
      "attestation",
      { quote: swapped, purpose: "deployed", compose_hash: hash, workload_hash: other },
      { re: req2.id! },
    ),
  );
  const failures = await waitFor("a second refusal", async () => {
    const r = await api<{ events: { data: { reason: string } }[] }>(
      `/api/v2/events?kind=agent.reattestation_failed&agent_id=${raw.agentId}`,
    );
    // A request left over from before the deployment was healthy may also have timed out meanwhile.
    const mismatches = r.body.events.filter((e) => e.data.reason === "EE-ATT-WORKLOAD-MISMATCH");
    return mismatches.length >= 2 ? r.body.events : undefined;
  });
  t.true(
    failures.every((e) => ["EE-ATT-WORKLOAD-MISMATCH", "EE-ATT-REFRESH-TIMEOUT"].includes(e.data.reason)),
  );
});
