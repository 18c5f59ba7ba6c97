// The deploy coordinator's jobs at unit level, with real parts (a supervisor verifying dev quotes, the read model,
// the SQLite deployment store) and a recording AgentLink: idempotent creates replay or conflict, agents'
// deploy_status frames are routed to the deployment they name (or adopted, or dropped), and an agent's session
// transitions end the records of deployments it lost.
import { randomBytes } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import type { AgentLink } from "../../actors/agent-link.ts";
import type { AppRegistry } from "../../actors/business/store.ts";
import { Deployments } from "../../actors/deployments.ts";
import { DeploymentStore } from "../../actors/store/deployment-store.ts";
import { TextSealer } from "../../actors/store/sealed-text.ts";
import { silentLogger } from "../../lib/log.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import { waitFor } from "../helpers/cluster.ts";
import { supervisorFixture } from "../helpers/supervisor.ts";

const COMPOSE = "services:\n  web:\n    image: web:1\n";

class RecordingLink implements AgentLink {
  sent: { agentId: string; type: string; body: unknown }[] = [];
  #id = 1;
  send(agentId: string, type: string, body: unknown): boolean {
    this.sent.push({ agentId, type, body });
    return true;
  }
  nextFrameId(): number {
    return this.#id++;
  }
  close(): void {}
}

async function setup(t: ExecutionContext) {
  const link = new RecordingLink();
  const { db, events, index, supervisor, register } = await supervisorFixture(t, link);
  const store = new DeploymentStore(db, new TextSealer(randomBytes(32)), (err) => t.fail(String(err)));
  const deployments = new Deployments({
    store,
    apps: {} as AppRegistry,
    index,
    supervisor,
    link,
    events,
    log: silentLogger,
    attestationMaxAgeMs: 600_000,
    reconcileGraceMs: 50,
    placementSecret: new Uint8Array(32),
  });
  t.teardown(() => {
    deployments.stop();
    store.flush();
  });
  const agentId = await register();
  const step = (step: MessageBody<"deploy_status">["step"], deploymentId: string, from = agentId) =>
    deployments.status(from, { deployment_id: deploymentId, step, at: Date.now() });
  const deploys = () => link.sent.filter((f) => f.type === "deploy");
  return { deployments, store, index, events, link, supervisor, agentId, register, step, deploys };
}

test("a retried create with the same Idempotency-Key and body replays the first result and dispatches nothing", async (t) => {
  const s = await setup(t);
  const first = await s.deployments.create({ app: "web", compose: COMPOSE }, "key-1");
  t.false(first.replayed);
  t.is(first.agent_id, s.agentId);
  // The registry credentials are not part of the request's identity.
  const again = await s.deployments.create(
    { app: "web", compose: COMPOSE, registry_auth: { "registry.example": { username: "u", password: "p" } } },
    "key-1",
  );
  t.deepEqual(again, { deployment_id: first.deployment_id, agent_id: s.agentId, replayed: true });
  t.is(s.deploys().length, 1, "one deploy frame for both");
  t.is(s.deployments.list({}).length, 1);
});

test("another body under a used Idempotency-Key is EE-CONFLICT-IDEMPOTENCY and creates nothing", async (t) => {
  const s = await setup(t);
  await s.deployments.create({ app: "web", compose: COMPOSE }, "key-1");
  const err = await t.throwsAsync(
    s.deployments.create({ app: "web", compose: COMPOSE.replace("web:1", "web:2") }, "key-1"),
  );
  t.is((err as { code?: string }).code, "EE-CONFLICT-IDEMPOTENCY");
  t.is(s.deploys().length, 1);
  t.is(s.deployments.list({}).length, 1);
});

test("deploy_status steps reach the deployment they name on its agent; another agent's are dropped", async (t) => {
  const s = await setup(t);
  const { deployment_id: id } = await s.deployments.create({ app: "web", compose: COMPOSE });
  t.deepEqual(s.deploys()[0], {
    agentId: s.agentId,
    type: "deploy",
    body: { deployment_id: id, app: "web", compose: COMPOSE },
  });
  s.step("preparing", id);
  t.is(s.deployments.get(id).status, "deploying");
  s.step("running", id, "agt_someone_else");
  t.is(
    s.deployments.get(id).status,
    "deploying",
    "a step from an agent that does not hold it changes nothing",
  );
  s.step("running", id);
  t.is(s.deployments.get(id).status, "healthy");
  t.is(s.index.get(s.agentId)?.state, "healthy", "the agent's session heard it");
});

test("a running step for a deployment this CP has no record of is adopted as unrecognized (no CP envelope)", async (t) => {
  const s = await setup(t);
  s.step("running", "d-foreign");
  const row = s.deployments.get("d-foreign");
  t.is(row.status, "healthy");
  t.true(row.rehydrated);
  t.deepEqual(row.request, { unrecognized: true });
  t.is(s.events.list({ kind: "deployment.unrecognized" }).length, 1);
  // A step that does not say the deployment is active is not adopted.
  s.step("failed", "d-other");
  t.false(s.deployments.has("d-other"));
});

test("an agent going stale mid-deploy fails its in-flight deployment as agent lost", async (t) => {
  const s = await setup(t);
  const { deployment_id: id } = await s.deployments.create({ app: "web", compose: COMPOSE });
  s.step("preparing", id);
  s.supervisor.send(s.agentId, { type: "STALE", at: Date.now() });
  await waitFor("failed", () => s.deployments.get(id).status === "failed");
  t.is(s.deployments.get(id).code, "EE-WORKLOAD-AGENT-LOST");
});

test("an agent re-registering without its healthy deployment ends it EE-WORKLOAD-NONE after the grace", async (t) => {
  const s = await setup(t);
  const { deployment_id: id } = await s.deployments.create({ app: "web", compose: COMPOSE });
  s.step("running", id);
  t.is(s.deployments.get(id).status, "healthy");
  await s.register();
  await waitFor("failed", () => s.deployments.get(id).status === "failed");
  t.is(s.deployments.get(id).code, "EE-WORKLOAD-NONE");
  t.is(s.deployments.get(id).message, "the agent re-registered without this workload");
});

test("an agent back while its deployment is being undeployed is sent the undeploy again", async (t) => {
  const s = await setup(t);
  const { deployment_id: id } = await s.deployments.create({ app: "web", compose: COMPOSE });
  s.step("running", id);
  s.deployments.undeploy(id);
  const undeploys = () => s.link.sent.filter((f) => f.type === "undeploy").length;
  t.is(undeploys(), 1);
  await s.register();
  await waitFor("undeploy resent", () => undeploys() === 2);
  t.is(s.deployments.get(id).status, "undeploying");
});
