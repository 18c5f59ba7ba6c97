// The WorkloadRuntime contract (workload-runtime.contract.ts) against DockerRuntime on the real engine, with the
// test busybox image; skipped visibly without Docker (a failure under EE_REQUIRE_DOCKER=1).
import test from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { silentLogger } from "../../lib/log.ts";
import { cleanupDeployment, requireDocker, testDeploymentId } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { workloadRuntimeContract } from "./workload-runtime.contract.ts";

workloadRuntimeContract(test, async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return undefined;
  const image = await busyboxImage(docker);
  return {
    runtime: (owner) => new DockerRuntime({ docker, log: silentLogger, ...(owner ? { owner } : {}) }),
    unreachable: () => new DockerRuntime({ socketPath: "/nonexistent/docker.sock" }),
    image,
    newId: () => {
      const id = testDeploymentId();
      cleanupDeployment(t, docker, id);
      return id;
    },
  };
});
