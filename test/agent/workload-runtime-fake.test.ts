// The WorkloadRuntime contract (workload-runtime.contract.ts) against the in-memory FakeRuntime
// (test/helpers/fake-runtime.ts): what unit tests on the fake may rely on is what the Docker adapter does.
import test from "ava";
import { FakeEngine, FakeRuntime, fakeDigest } from "../helpers/fake-runtime.ts";
import { workloadRuntimeContract } from "./workload-runtime.contract.ts";

let n = 0;
workloadRuntimeContract(test, async () => {
  const engine = new FakeEngine();
  const image = "ee-test/busybox:1";
  engine.images.set(image, fakeDigest(image));
  return {
    runtime: (owner) => new FakeRuntime({ engine, ...(owner ? { owner } : {}) }),
    unreachable: () => {
      const down = new FakeEngine();
      down.down = true;
      return new FakeRuntime({ engine: down });
    },
    image,
    newId: () => `t-fake-${++n}`,
  };
});
