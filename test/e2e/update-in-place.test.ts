// Update in place end to end: a real CP, a real agent and real containers. A deploy naming a healthy deployment
// as `replaces` starts beside it; a client hammering the agent's proxy across the switch (or across a failed
// update) must see no failed request. Prints the measured figures (requests, failures, update duration).
import test, { type ExecutionContext } from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { agentConfig, startTestAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { agentContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { DEAF_PORT, deploymentIn, postJson, SLOW_S, WEB_PORT, webCompose } from "../helpers/workloads.ts";

const MIN_REQUESTS = 200;
const HEALTH = { port: WEB_PORT, path: "/", timeout_s: 30 };

async function setup(t: ExecutionContext) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const tcp = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-1" }));
  await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  const runtime = new DockerRuntime({ docker });
  return { tcp, agent, runtime };
}

function deploy(tcp: TestCp, body: Record<string, unknown>) {
  return postJson<{ deployment_id: string; agent_id: string; error?: { code: string } }>(
    tcp.api,
    "/api/v2/deployments",
    body,
  );
}

/** Deploys v1 of `web` and waits for it to be healthy; returns its id. */
async function deployV1(t: ExecutionContext, s: NonNullable<Awaited<ReturnType<typeof setup>>>) {
  const res = await deploy(s.tcp, { app: "web", compose: webCompose({ text: "v1" }), health: HEALTH });
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id;
  t.teardown(() => s.runtime.remove(id));
  const healthy = await deploymentIn(s.tcp.api, id, ["healthy", "failed"], 60_000);
  t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
  return id;
}

/**
 * GETs through the agent's proxy, one after another, until stopped with at least `min` sent; every answer that is
 * not a 200 (or no answer) counts as a failure.
 */
function clientLoop(url: string, min = MIN_REQUESTS) {
  const bodies: string[] = [];
  const failures: string[] = [];
  let stopping = false;
  const done = (async () => {
    while (!stopping || bodies.length + failures.length < min) {
      try {
        const r = await agentContract.fetch(url);
        const text = (await r.text()).trim();
        if (r.status === 200) bodies.push(text);
        else failures.push(`${r.status} ${text}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  })();
  return {
    bodies,
    failures,
    count: () => bodies.length + failures.length,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

test.serial(
  "an update in place switches the proxy to the new deployment with no failed request, and the old one ends undeployed",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, agent, runtime } = s;
    const oldId = await deployV1(t, s);
    const loop = clientLoop(`${agent.apiUrl}/index.html`);
    // Slow requests, always some in flight: those the old one is answering at the switch must not be cut.
    const slow = [0, 1, 2].map(() => clientLoop(`${agent.apiUrl}/cgi-bin/slow`, 1));
    await waitFor("the client loop under way", () => (loop.count() >= 20 ? true : undefined));

    const started = Date.now();
    const res = await deploy(tcp, {
      app: "web",
      compose: webCompose({ text: "v2" }),
      health: HEALTH,
      replaces: oldId,
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const newId = res.body.deployment_id;
    t.teardown(() => runtime.remove(newId));
    // The agent is busy with v1: without `replaces` the deploy would be EE-PLACE-BUSY; with it, same agent.
    t.is(res.body.agent_id, agent.agentId);
    const healthy = await deploymentIn(tcp.api, newId, ["healthy", "failed"], 60_000);
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
    const healthyMs = Date.now() - started;
    const old = await deploymentIn(tcp.api, oldId, ["undeployed", "failed"], 60_000);
    const switchedMs = Date.now() - started;
    t.is(old.status, "undeployed");
    t.is(old.replaced_by, newId);
    t.is(healthy.replaces, oldId);
    t.is(healthy.request.replaces, oldId);
    t.deepEqual(await runtime.inspect(oldId), []);

    // Keep the client going a little past the switch, then stop it with at least MIN_REQUESTS sent.
    const atSwitch = loop.count();
    await waitFor("requests after the switch", () => (loop.count() >= atSwitch + 20 ? true : undefined));
    await loop.stop();
    for (const l of slow) await l.stop();
    const slowBodies = slow.flatMap((l) => l.bodies);
    const slowFailures = slow.flatMap((l) => l.failures);
    t.log(
      `update in place: ${loop.count()} requests, ${loop.failures.length} failed; ${slowBodies.length + slowFailures.length} slow (${SLOW_S} s) requests, ${slowFailures.length} failed; new healthy after ${healthyMs} ms, old undeployed after ${switchedMs} ms`,
    );
    t.deepEqual(loop.failures, []);
    t.deepEqual(slowFailures, []);
    t.true(slowBodies.includes("v1"), "slow requests answered by the old one");
    t.true(loop.count() >= MIN_REQUESTS);
    // One switch: v1 until it, v2 from it on, never back.
    const firstV2 = loop.bodies.indexOf("v2");
    t.true(firstV2 > 0, "v1 served before the switch");
    t.true(
      loop.bodies.slice(0, firstV2).every((b) => b === "v1"),
      "only v1 before the switch",
    );
    t.true(
      loop.bodies.slice(firstV2).every((b) => b === "v2"),
      "only v2 after the switch",
    );

    // The agent runs, reports and binds v2 now.
    const rec = await waitFor("the agent on v2", () =>
      tcp.cp.index.get(agent.agentId)?.deployment_id === newId ? tcp.cp.index.get(agent.agentId) : undefined,
    );
    t.is(rec.state, "healthy");
    const attested = (await (
      await agentContract.fetch(`${agent.apiUrl}/api/health?attest=true&nonce=${"5a".repeat(32)}`)
    ).json()) as { attestation: { compose_hash: string } };
    t.is(attested.attestation.compose_hash, healthy.compose_hash ?? "");

    // Bad `replaces` values get their codes and change nothing.
    const cases: [Record<string, unknown>, number, string][] = [
      [{ replaces: "d-0000000000000000" }, 404, "EE-NOT-FOUND"],
      [{ replaces: oldId }, 409, "EE-CONFLICT-STATE"],
      [{ replaces: newId, app: "other" }, 400, "EE-REQ-INVALID"],
    ];
    for (const [extra, status, code] of cases) {
      const bad = await deploy(tcp, {
        app: "web",
        compose: webCompose({ text: "v3" }),
        health: HEALTH,
        ...extra,
      });
      t.is(bad.status, status, JSON.stringify(extra));
      t.is(bad.body.error?.code, code, JSON.stringify(extra));
    }
    t.is((await deploymentIn(tcp.api, newId, ["healthy"])).replaced_by, null);
  },
);

test.serial(
  "a failed update leaves the old deployment serving, untouched, with no failed request",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, agent, runtime } = s;
    const oldId = await deployV1(t, s);
    const containers = (await runtime.inspect(oldId)).map((c) => c.id).sort();
    t.is(containers.length, 1);
    const loop = clientLoop(`${agent.apiUrl}/index.html`);
    await waitFor("the client loop under way", () => (loop.count() >= 20 ? true : undefined));

    // The new one's health spec names a port nothing listens on: its gate never passes.
    const started = Date.now();
    const res = await deploy(tcp, {
      app: "web",
      compose: webCompose({ text: "v2" }),
      health: { port: DEAF_PORT, path: "/", timeout_s: 5 },
      replaces: oldId,
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const newId = res.body.deployment_id;
    t.teardown(() => runtime.remove(newId));
    // One update at a time.
    const second = await deploy(tcp, {
      app: "web",
      compose: webCompose({ text: "v3" }),
      health: HEALTH,
      replaces: oldId,
    });
    t.is(second.status, 409);
    t.is(second.body.error?.code, "EE-CONFLICT-STATE");

    const failed = await deploymentIn(tcp.api, newId, ["healthy", "failed"], 60_000);
    t.is(failed.status, "failed");
    t.is(failed.code, "EE-WORKLOAD-HEALTH-TIMEOUT");
    t.deepEqual(await runtime.inspect(newId), []);
    const failedMs = Date.now() - started;
    await waitFor(
      "requests after the failure",
      () => (loop.count() >= MIN_REQUESTS ? true : undefined),
      60_000,
    );
    await loop.stop();
    t.log(
      `failed update: ${loop.count()} requests, ${loop.failures.length} failed; new failed after ${failedMs} ms`,
    );
    t.deepEqual(loop.failures, []);
    t.true(loop.bodies.every((b) => b === "v1"));

    // The old one: still healthy, same containers, still the agent's.
    const old = await deploymentIn(tcp.api, oldId, ["healthy"]);
    t.is(old.replaced_by, null);
    t.deepEqual((await runtime.inspect(oldId)).map((c) => c.id).sort(), containers);
    const rec = tcp.cp.index.get(agent.agentId);
    t.is(rec?.state, "healthy");
    t.is(rec?.deployment_id, oldId);

    // A deploy of the same app name naming neither an agent nor `replaces` updates the one running in place.
    const implicit = await deploy(tcp, { app: "web", compose: webCompose({ text: "v3" }), health: HEALTH });
    t.is(implicit.status, 202, JSON.stringify(implicit.body));
    const v3 = implicit.body.deployment_id;
    t.teardown(() => runtime.remove(v3));
    const v3Healthy = await deploymentIn(tcp.api, v3, ["healthy", "failed"], 60_000);
    t.is(v3Healthy.status, "healthy", `${v3Healthy.code}: ${v3Healthy.message}`);
    t.is(v3Healthy.replaces, oldId);
    t.is((await deploymentIn(tcp.api, oldId, ["undeployed"], 60_000)).replaced_by, v3);
    t.is((await (await agentContract.fetch(`${agent.apiUrl}/index.html`)).text()).trim(), "v3");
  },
);
