// The workload manager over the in-memory FakeRuntime (test/helpers/fake-runtime.ts; its contract with the Docker
// adapter is test/agent/workload-runtime.contract.ts): what needs no engine runs here in milliseconds — an update
// in place stops the old deployment only once the request the proxy forwarded to it has finished, and a container
// that exits fails the gate with its code at once.
import test from "ava";
import { createWorkloads, type WorkloadStatus, type Workloads } from "../../agent/workload.ts";
import { silentLogger } from "../../lib/log.ts";
import { FakeRuntime, fakeDigest } from "../helpers/fake-runtime.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";

const IMAGE = "ee-test/busybox:1";

function setup(t: import("ava").ExecutionContext) {
  const runtime = new FakeRuntime();
  runtime.engine.images.set(IMAGE, fakeDigest(IMAGE));
  const workloads = createWorkloads({
    runtime,
    dataDir: tempDir(t),
    log: silentLogger,
    pollMs: 10,
    settleMs: 10,
    publishedPorts: "loopback",
  });
  t.teardown(() => workloads.stop());
  /** Every status published, in order. */
  const seen: WorkloadStatus[] = [];
  workloads.subscribe((s) => seen.push(s));
  return { runtime, workloads, seen };
}

/** Resolves once deployment `id` publishes `step`. */
function reaches(w: Workloads, id: string, step: string): Promise<WorkloadStatus> {
  return new Promise((resolve) => {
    const off = w.subscribe((s) => {
      if (s.deployment_id !== id || s.step !== step) return;
      off();
      resolve(s);
    });
  });
}

const web = async (command = '["sleep", "300"]') =>
  `services:\n  web:\n    image: ${IMAGE}\n    command: ${command}\n    ports: ["127.0.0.1:${await closedPort()}:80"]\n`;

test("an update stops the old deployment only after the request forwarded to it has finished", async (t) => {
  const { workloads, seen } = setup(t);
  const oldRunning = reaches(workloads, "dep-old", "running");
  workloads.deploy({ deployment_id: "dep-old", app: "web", compose: await web() });
  await oldRunning;
  const target = workloads.proxyTarget();
  t.truthy(target);
  const release = target!.hold!();

  const newRunning = reaches(workloads, "dep-new", "running");
  const oldStopped = reaches(workloads, "dep-old", "stopped");
  workloads.deploy({ deployment_id: "dep-new", app: "web", compose: await web(), replaces: "dep-old" });
  await newRunning;
  t.is(workloads.current()?.deployment_id, "dep-new", "the switch is at once");
  // The drain is event-driven: a few turns of the event loop later the old one is still serving its request.
  await new Promise((r) => setImmediate(r));
  const oldSteps = () => seen.filter((s) => s.deployment_id === "dep-old").map((s) => s.step);
  t.false(oldSteps().includes("stopping"), "not stopped while its request is in flight");

  const releasedAt = seen.length;
  release();
  await oldStopped;
  const stopping = seen.findIndex((s) => s.deployment_id === "dep-old" && s.step === "stopping");
  t.true(stopping >= releasedAt, "stopping only after the release");
  t.is(workloads.current()?.step, "running");
});

test("a container that exits before the gate fails the deploy with EE-WORKLOAD-EXITED and its code, and is removed", async (t) => {
  const { runtime, workloads } = setup(t);
  const failed = reaches(workloads, "dep-exit", "failed");
  workloads.deploy({
    deployment_id: "dep-exit",
    app: "web",
    compose: `services:\n  web:\n    image: ${IMAGE}\n    restart: "no"\n    command: ["sh", "-c", "exit 7"]\n`,
  });
  const status = await failed;
  t.is(status.code, "EE-WORKLOAD-EXITED");
  t.regex(status.message ?? "", /service web exited with code 7/);
  t.deepEqual(await runtime.inspect("dep-exit"), []);
});
