// The policy for tests that need Docker (test/helpers/skip.ts), run for real: the Docker contract suite in a child
// ava with DOCKER_HOST pointing at no engine is skipped visibly (a SKIPPED notice per test and a summary line,
// exit 0), and fails under EE_REQUIRE_DOCKER=1.
import { spawnSync } from "node:child_process";
import test from "ava";

function runWithoutDocker(requireDocker: boolean) {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: "unix:///nonexistent/docker.sock", CI: "1" };
  delete env.EE_REQUIRE_DOCKER;
  if (requireDocker) env.EE_REQUIRE_DOCKER = "1";
  const child = spawnSync(
    process.execPath,
    [
      "node_modules/ava/entrypoints/cli.mjs",
      "test/agent/workload-runtime-docker.test.ts",
      "--match",
      "*pull*",
    ],
    { env, encoding: "utf8", timeout: 120_000 },
  );
  return { status: child.status, output: `${child.stdout}${child.stderr}` };
}

test("without Docker a Docker test is skipped with a visible notice and a summary line, and passes", (t) => {
  const { status, output } = runWithoutDocker(false);
  t.is(status, 0, output);
  t.regex(output, /SKIPPED: the Docker engine is not available \(.+\); set EE_REQUIRE_DOCKER=1/);
  t.regex(output, /SKIPPED tests in this file: 1 for want of the Docker engine/);
});

test("without Docker under EE_REQUIRE_DOCKER=1 the same test fails, saying why", (t) => {
  const { status, output } = runWithoutDocker(true);
  t.is(status, 1, output);
  t.regex(output, /the Docker engine is not available .*EE_REQUIRE_DOCKER=1 makes this a failure/);
});
