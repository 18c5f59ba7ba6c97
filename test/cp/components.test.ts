// The CP's start and stop as one ordered list (cp/components.ts): stop runs in the reverse order of start, a start
// that throws stops what had started, a stop that throws does not keep the others from stopping, and the real
// control plane's list keeps the orders its comments promise (stores first, the agent channel and REST before
// what must stop while agents are still connected, the checkpoint last).
import test from "ava";
import { Components } from "../../cp/components.ts";
import { startTestCp, tempDir } from "../helpers/cluster.ts";

function recorder() {
  const calls: string[] = [];
  const errors: string[] = [];
  const components = new Components((name) => errors.push(name));
  const part = (name: string, fail?: "start" | "stop") => ({
    name,
    start: async () => {
      calls.push(`start ${name}`);
      if (fail === "start") throw new Error(`${name} cannot start`);
      return name.toUpperCase();
    },
    stop: (value: string) => {
      calls.push(`stop ${name} ${value}`);
      if (fail === "stop") throw new Error(`${name} cannot stop`);
    },
  });
  return { calls, errors, components, part };
}

test("stop runs in the reverse order of start, each stop getting its start's value", async (t) => {
  const { calls, components, part } = recorder();
  t.is(await components.start(part("a")), "A");
  await components.start(part("b"));
  await components.start({ name: "no-stop", start: () => calls.push("start no-stop") });
  await components.start(part("c"));
  await components.stop();
  t.deepEqual(calls, ["start a", "start b", "start no-stop", "start c", "stop c C", "stop b B", "stop a A"]);
  t.deepEqual(components.started, ["a", "b", "no-stop", "c"]);
  t.deepEqual(components.stopped, ["c", "no-stop", "b", "a"]);
  await components.stop();
  t.is(calls.length, 7, "a second stop stops nothing twice");
});

test("a start that throws stops what had started, newest first, and rethrows", async (t) => {
  const { calls, components, part } = recorder();
  await components.start(part("a"));
  await components.start(part("b"));
  await t.throwsAsync(components.start(part("c", "start")), { message: "c cannot start" });
  t.deepEqual(calls, ["start a", "start b", "start c", "stop b B", "stop a A"]);
  t.deepEqual(components.started, ["a", "b"]);
  t.deepEqual(components.stopped, ["b", "a"]);
});

test("a stop that throws is reported and the components before it still stop", async (t) => {
  const { calls, errors, components, part } = recorder();
  await components.start(part("a"));
  await components.start(part("b", "stop"));
  await components.start(part("c"));
  await components.stop();
  t.deepEqual(calls.slice(3), ["stop c C", "stop b B", "stop a A"]);
  t.deepEqual(errors, ["b"]);
});

test("the control plane stops its components in the reverse order it started them", async (t) => {
  const { cp } = await startTestCp(t, { dataDir: tempDir(t, "ee-cp-") });
  const started = [...cp.components.started];
  const before = (a: string, b: string) =>
    t.true(started.indexOf(a) < started.indexOf(b), `${a} starts before ${b}: ${started.join(", ")}`);
  t.is(started[0], "runtime-db");
  // The supervisor outlives the agent channel (agents' disconnects reach it); deployments, re-attestation and
  // the checkpoint stop while agents are still connected.
  before("supervisor", "http-server");
  before("http-server", "deployments");
  before("http-server", "reattestor");
  t.is(started.at(-1), "checkpoint");
  await cp.stop();
  t.deepEqual(cp.components.stopped, [...started].reverse());
});
