// Docker for tests: the engine when it answers (else skipped visibly, or failed under EE_REQUIRE_DOCKER=1 as in
// CI: test/helpers/skip.ts), deployment ids unique across parallel test processes, and teardown of everything a
// deployment labelled.
import { randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import Docker from "dockerode";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { skipUnavailable } from "./skip.ts";

/** The engine, or null once the test is skipped (failed, under EE_REQUIRE_DOCKER=1) when it does not answer. */
export async function requireDocker(t: ExecutionContext): Promise<Docker | null> {
  const docker = new Docker();
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    skipUnavailable(t, "the Docker engine", (err as Error).message, "EE_REQUIRE_DOCKER");
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
