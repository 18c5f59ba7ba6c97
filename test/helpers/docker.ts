// Docker for tests: the engine when it answers (a test fails instead of skipping when EE_REQUIRE_DOCKER=1, as in
// CI), deployment ids unique across parallel test processes, and teardown of everything a deployment labelled.
import { randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import Docker from "dockerode";
import { DockerRuntime } from "../../agent/runtime/docker.ts";

/** The engine, or null after logging (or failing, under EE_REQUIRE_DOCKER=1) when it does not answer. */
export async function requireDocker(t: ExecutionContext): Promise<Docker | null> {
  const docker = new Docker();
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    const why = `the Docker engine does not answer (${(err as Error).message})`;
    if (process.env.EE_REQUIRE_DOCKER === "1") t.fail(`${why}; EE_REQUIRE_DOCKER=1 makes this a failure`);
    else t.log(`skipped: ${why}; set EE_REQUIRE_DOCKER=1 to make this a failure`);
    return null;
  }
}

/** A deployment id no other test (or test process) uses. */
export function testDeploymentId(): string {
  return `t-${randomBytes(6).toString("hex")}`;
}

/** Removes the deployment's containers, networks, volumes and built images when the test ends. */
export function cleanupDeployment(t: ExecutionContext, docker: Docker, deploymentId: string): void {
  t.teardown(() => new DockerRuntime({ docker }).remove(deploymentId));
}

/**
 * Removes every deployment an agent left on the engine: a test that ends without undeploying must not leave its
 * networks behind (the engine's default address pools hold about 30 bridge networks).
 */
export async function removeAgentWorkloads(agentId: string): Promise<void> {
  const docker = new Docker();
  if (
    !(await docker.ping().then(
      () => true,
      () => false,
    ))
  )
    return;
  const runtime = new DockerRuntime({ docker, owner: agentId });
  for (const d of await runtime.deployments()) await runtime.remove(d.deploymentId);
}
