// Federation drills on real nats-servers and CP processes: a dc CP SIGKILLed shows degraded on the master within
// the threshold, a deploy on the master then goes elsewhere (a named agent of the dead dc is EE-PLACE-DC-DEGRADED),
// and the dc started again is healthy on the master with its agents listed once more (its outbox resynced).
import test from "ava";
import { agentConfig, startTestAgent, waitFor } from "../helpers/cluster.ts";
import { agentsOf, dcsOf, federation } from "../helpers/federation.ts";
import { postJson, SLEEP_COMPOSE } from "../helpers/workloads.ts";

const THRESHOLD_MS = 6_000;

test.serial(
  "a dc CP killed: degraded within the threshold, placements go elsewhere, healthy and resynced after a restart",
  async (t) => {
    const { master, dc, spawnedDcs } = await federation(t, {
      degradedAfterMs: THRESHOLD_MS,
      spawned: ["dc2"],
    });
    const dc2 = spawnedDcs.get("dc2")!;
    const alive = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-dc1" }));
    const doomed = [
      await startTestAgent(t, agentConfig(t, dc2.cp.wsUrl, dc2.devDir, { vm_name: "vm-dc2-a" })),
      await startTestAgent(t, agentConfig(t, dc2.cp.wsUrl, dc2.devDir, { vm_name: "vm-dc2-b" })),
    ];
    const listed = async (id: string, dcId: string) =>
      (await agentsOf(master)).find((a) => a.agent_id === id && a.dc_id === dcId && a.state === "registered");
    await waitFor(
      "every agent registered on the master",
      async () =>
        ((await listed(alive.agentId, "dc1")) &&
          (await listed(doomed[0]!.agentId, "dc2")) &&
          (await listed(doomed[1]!.agentId, "dc2"))) ||
        undefined,
      60_000,
    );
    const status = async (dcId: string) => (await dcsOf(master)).find((d) => d.dc_id === dcId)?.status;
    await waitFor("dc2 healthy", async () => (await status("dc2")) === "healthy" || undefined, 30_000);

    await dc2.kill();
    const killedAt = Date.now();
    await waitFor("dc2 degraded", async () => (await status("dc2")) === "degraded" || undefined, 30_000);
    const degradedMs = Date.now() - killedAt;
    t.log(`dc CP SIGKILLed → degraded on the master: ${degradedMs} ms (threshold ${THRESHOLD_MS} ms)`);
    // Its newest state predates the kill, so the threshold bounds this; the rest is polling on a busy machine.
    t.true(degradedMs <= THRESHOLD_MS + 3_000, `${degradedMs} ms`);
    t.is(await status("dc1"), "healthy");
    t.is(await status("master"), "healthy");
    // The dead dc's agents stay listed (as last reported) but take nothing new.
    t.truthy(await listed(doomed[0]!.agentId, "dc2"));
    const refused = await postJson<{ error: { code: string } }>(master.api, "/api/v2/deployments", {
      app: "pinned",
      compose: SLEEP_COMPOSE,
      agent_id: doomed[0]!.agentId,
    });
    t.is(refused.status, 409, JSON.stringify(refused.body));
    t.is(refused.body.error.code, "EE-PLACE-DC-DEGRADED");
    // No agent named, no direct agent: of three dc agents, the only one in a healthy dc takes it.
    const placed = await postJson<{ deployment_id: string; agent_id: string }>(
      master.api,
      "/api/v2/deployments",
      { app: "anywhere", compose: SLEEP_COMPOSE },
    );
    t.is(placed.status, 202, JSON.stringify(placed.body));
    t.is(placed.body.agent_id, alive.agentId);
    const row = await master.api<{ dc_id?: string }>(`/api/v2/deployments/${placed.body.deployment_id}`);
    t.is(row.body.dc_id, "dc1");

    // What the master holds of them from before the kill: their agents attest again on the restarted dc.
    const attestedBefore = await Promise.all(
      doomed.map(async (a) => (await listed(a.agentId, "dc2"))!.attestation.attested_at!),
    );
    await dc2.restart();
    const restartedAt = Date.now();
    const reattested = async (i: number) =>
      ((await listed(doomed[i]!.agentId, "dc2"))?.attestation.attested_at ?? "") > attestedBefore[i]!;
    await waitFor(
      "dc2 healthy again with its agents registered anew",
      async () =>
        ((await status("dc2")) === "healthy" && (await reattested(0)) && (await reattested(1))) || undefined,
      90_000,
    );
    t.log(`dc CP restarted → healthy with its agents on the master: ${Date.now() - restartedAt} ms`);
    const newest = (await dc2.rest.api<{ events: { id: number }[] }>("/api/v2/events?tail=1")).body.events[0]!
      .id;
    const synced = await waitFor("every dc2 event applied", async () => {
      const d = (await dcsOf(master)).find((x) => x.dc_id === "dc2");
      return d && d.outbox_seq >= newest ? d : undefined;
    });
    t.is(synced.agents.total, 2);
    const ids = (await agentsOf(master)).map((a) => a.agent_id);
    t.is(new Set(ids).size, ids.length, "no agent listed twice");
  },
);
