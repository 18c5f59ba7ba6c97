// The SQLite store on a real temp file: migrations apply once, the event log is append-only, batched and
// ordered by a monotonic id, and a failing write does not throw into the runtime.
import { randomBytes } from "node:crypto";
import test from "ava";
import { openDatabase, schemaVersion } from "../../actors/store/db.ts";
import { type DeploymentRow, DeploymentStore } from "../../actors/store/deployment-store.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { MIGRATIONS } from "../../actors/store/migrations.ts";
import { TextSealer } from "../../actors/store/sealed-text.ts";
import { tempDir } from "../helpers/temp.ts";

const sealer = (key = randomBytes(32)) => new TextSealer(key);

test("migrations run once and reopen cleanly", (t) => {
  const dir = tempDir(t);
  const db = openDatabase(dir);
  t.is(schemaVersion(db), MIGRATIONS.at(-1)!.version);
  t.is(db.pragma("journal_mode", { simple: true }), "wal");
  db.close();
  const again = openDatabase(dir);
  t.is(
    (again.prepare("SELECT COUNT(*) AS n FROM schema_migrations").get() as { n: number }).n,
    MIGRATIONS.length,
  );
  again.close();
});

test("events are batched, flushed on read, and paged by monotonic id", async (t) => {
  const db = openDatabase(tempDir(t));
  const log = new EventLog(db, (err) => t.fail(String(err)));
  for (let i = 0; i < 250; i++)
    log.append({
      at: i,
      kind: i % 2 ? "agent.stale" : "agent.registered",
      agent_id: `agt_${i % 3}`,
      data: { i },
    });
  const first = log.list({ limit: 100 });
  t.is(first.length, 100);
  t.deepEqual(
    first.map((e) => e.data.i),
    [...Array(100).keys()],
  );
  const next = log.list({ after: first.at(-1)!.id, limit: 1000 });
  t.is(next.length, 150);
  t.true(next.every((e, i) => i === 0 || e.id > next[i - 1]!.id));
  t.is(log.list({ kind: "agent.stale", limit: 1000 }).length, 125);
  t.is(log.list({ agentId: "agt_0", limit: 1000 }).length, 84);
  await new Promise((r) => setImmediate(r));
  db.close();
});

test("known agents are upserted with a registration count", (t) => {
  const db = openDatabase(tempDir(t));
  const log = new EventLog(db, (err) => t.fail(String(err)));
  const a = { agent_id: "agt_a", vm_name: "vm-a", node_size: "tiny", datacenter: "x:y", mrtd: "00", at: 1 };
  log.recordAgent(a);
  log.recordAgent({ ...a, at: 2, node_size: "llm" });
  t.is(log.knownAgentCount(), 1);
  const row = db.prepare("SELECT * FROM agents").get() as Record<string, unknown>;
  t.like(row, { node_size: "llm", registrations: 2, first_registered_at: 1, last_registered_at: 2 });
  db.close();
});

test("a write failure is reported, not thrown", (t) => {
  const db = openDatabase(tempDir(t));
  const errors: unknown[] = [];
  const log = new EventLog(db, (err) => errors.push(err));
  db.exec("DROP TABLE events");
  log.append({ at: 1, kind: "x" });
  t.notThrows(() => log.flush());
  t.is(errors.length, 1);
  db.close();
});

test("deployment status changes are written behind, one transaction per tick; reads see their own writes", async (t) => {
  const db = openDatabase(tempDir(t));
  const store = new DeploymentStore(db, sealer(), (err) => t.fail(String(err)));
  const row: DeploymentRow = {
    deployment_id: "d-1",
    app: "web",
    app_version: null,
    agent_id: "agt_1",
    status: "pending",
    code: null,
    message: null,
    compose_hash: null,
    images: [],
    progress: [{ step: "dispatched", at: 1 }],
    request: {},
    compose: "services: {}",
    created_at: 1,
    updated_at: 1,
    rehydrated: false,
  };
  store.create(row, { key: "k1", requestHash: "h" });
  const raw = () =>
    db.prepare("SELECT status FROM deployments WHERE deployment_id = 'd-1'").get() as { status: string };
  t.is(raw().status, "pending", "a new deployment is written at once, with its idempotency key");
  t.is(store.idempotencyKey("k1")?.deployment_id, "d-1");
  store.save({ ...row, status: "deploying", updated_at: 2 });
  store.save({ ...row, status: "healthy", updated_at: 3 });
  t.is(raw().status, "pending", "not written yet");
  t.is(store.get("d-1")?.status, "healthy", "a read flushes first");
  store.save({ ...row, status: "undeploying", updated_at: 4 });
  await new Promise((r) => setImmediate(r));
  t.is(raw().status, "undeploying", "written by the next tick");
  db.close();
});

const SECRET = "hunter2-s3cr3t-value";
const composeWithSecret = `services:\n  app:\n    image: x\n    environment:\n      PASSWORD: ${SECRET}\n`;

function deploymentRow(id: string, compose: string): DeploymentRow {
  return {
    deployment_id: id,
    app: "web",
    app_version: null,
    agent_id: "agt_1",
    status: "pending",
    code: null,
    message: null,
    compose_hash: null,
    images: [],
    progress: [],
    request: {},
    compose,
    created_at: 1,
    updated_at: 1,
    rehydrated: false,
  };
}

test("compose texts are sealed at rest and read back as given; the empty (rehydrated) compose stays empty", (t) => {
  const db = openDatabase(tempDir(t));
  const key = randomBytes(32);
  const store = new DeploymentStore(db, sealer(key));
  store.create(deploymentRow("d-1", composeWithSecret));
  store.save({ ...deploymentRow("d-1", composeWithSecret), status: "healthy", updated_at: 2 });
  store.save({ ...deploymentRow("d-2", ""), rehydrated: true });
  const columns = db.prepare("SELECT compose FROM deployments").all() as {
    compose: string;
  }[];
  t.true(
    columns.every((c) => !c.compose.includes(SECRET)),
    "no compose in clear",
  );
  t.true(columns.some((c) => c.compose.startsWith("ee-sealed:v1:")));
  t.is(store.get("d-1")?.compose, composeWithSecret);
  t.is(store.get("d-1")?.status, "healthy");
  t.is(store.get("d-2")?.compose, "");
  t.deepEqual(
    store
      .active()
      .map((r) => r.compose)
      .sort(),
    ["", composeWithSecret],
  );
  t.is(
    new DeploymentStore(db, sealer(key)).get("d-1")?.compose,
    composeWithSecret,
    "the same key opens it later",
  );
  t.throws(() => new DeploymentStore(db, sealer()).get("d-1"), { code: "EE-CONFIG-INVALID" } as never);
  db.close();
});

test("a sealed value is bound to its row, and a row written before sealing is read as it is", (t) => {
  const db = openDatabase(tempDir(t));
  const store = new DeploymentStore(db, sealer());
  store.create(deploymentRow("d-1", composeWithSecret));
  store.create(deploymentRow("d-2", "services: {}\n"));
  db.exec(
    "UPDATE deployments SET compose = (SELECT compose FROM deployments WHERE deployment_id = 'd-1') WHERE deployment_id = 'd-2'",
  );
  t.throws(() => store.get("d-2"), { code: "EE-CONFIG-INVALID" } as never);
  db.exec("UPDATE deployments SET compose = 'services: {}' WHERE deployment_id = 'd-2'");
  t.is(store.get("d-2")?.compose, "services: {}");
  db.close();
});
