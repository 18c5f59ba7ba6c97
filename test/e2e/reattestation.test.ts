// Periodic re-attestation end to end: a real agent answers refresh requests; a changed MRTD or silence takes
// the agent out of placement with a reason shown in its listing, and it stays connected.
import test from "ava";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { encodeFrame } from "../../transport/frame.ts";
import { agentConfig, RawAgent, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";

interface Listed {
  agent_id: string;
  state: string;
  reason: string | null;
  attestation: { status: string; attested_at: string | null };
}

test("a real agent answers re-attestation and stays attested", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, { reattestMs: 300 });
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
  const { cp, devDir, api } = await startTestCp(t, { reattestMs: 300, heartbeatMs: 100, staleAfterMs: 5000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir, {}, { mrtd: "11".repeat(48) });
  const req = await raw.next("attest", 5000);
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
  const { cp, devDir } = await startTestCp(t, { reattestMs: 300, heartbeatMs: 100, staleAfterMs: 5000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  const req = await raw.next("attest", 5000);
  const wrongPurpose = await raw.registerBody(devDir, req.body.nonce);
  raw.ws.send(encodeFrame("attestation", { quote: wrongPurpose.quote }, { re: req.id! }));
  await waitFor("failed", () => cp.index.get(raw.agentId)?.reason === "EE-ATT-REPORTDATA-MISMATCH");
  t.is(cp.index.get(raw.agentId)?.attestation_status, "failed");
});

test("an agent that does not answer fails with EE-ATT-REFRESH-TIMEOUT", async (t) => {
  const { cp, devDir } = await startTestCp(t, { reattestMs: 200, heartbeatMs: 100, staleAfterMs: 5000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  await raw.next("attest", 5000);
  await waitFor("timed out", () => cp.index.get(raw.agentId)?.reason === "EE-ATT-REFRESH-TIMEOUT", 5000);
  t.is(cp.index.get(raw.agentId)?.attestation_status, "failed");
});
