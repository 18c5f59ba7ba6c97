// `npm start` (tsx cli/start.ts) on an operator's everyday mistakes: a busy CP port, a busy agent API port, a
// busy demo registry port and EE_HOME under a file each end with `eectl: CODE: message` naming the variable that fixes it, exit 1, no stack.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { type EectlRun, finished } from "../helpers/cli.ts";
import { REPO, tempDir } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { registryAvailable } from "../helpers/registry.ts";
import { closedPort } from "../helpers/temp.ts";

function npmStart(env: Record<string, string>): Promise<EectlRun> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "cli/start.ts")], {
    cwd: REPO,
    env: { ...process.env, EE_ADMIN_TOKEN: "", EE_LOG_LEVEL: "silent", ...env },
  });
  child.stdin.end();
  return finished(child);
}

async function occupied(t: { teardown(fn: () => void): void }): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

/** npm start refused a busy port: one line naming the address and the setting that moves it, nothing else. */
function refusedBusy(t: ExecutionContext, run: EectlRun, busy: number, moveWith: string): void {
  t.is(run.code, 1);
  t.is(
    run.stderr,
    `eectl: EE-LISTEN-BUSY: 127.0.0.1:${busy} is already in use (is another control plane or agent running?); listen elsewhere with ${moveWith} npm start\n`,
  );
  t.is(run.stdout, "");
}

test("a busy control plane port names EE_PORT", async (t) => {
  const busy = await occupied(t);
  const run = await npmStart({ EE_HOME: tempDir(t), EE_PORT: String(busy) });
  refusedBusy(t, run, busy, "EE_PORT=PORT");
});

test("a busy agent API port names EE_AGENT_LISTEN", async (t) => {
  const busy = await occupied(t);
  const run = await npmStart({
    EE_HOME: tempDir(t),
    EE_PORT: String(await closedPort()),
    EE_AGENT_LISTEN: `127.0.0.1:${busy}`,
  });
  refusedBusy(t, run, busy, "EE_AGENT_LISTEN=HOST:PORT");
});

test("a busy demo registry port names EE_REGISTRY_PORT", async (t) => {
  if (!(await requireDocker(t)) || !registryAvailable(t)) return;
  const busy = await occupied(t);
  const cpPort = await closedPort();
  const run = await npmStart({
    EE_HOME: tempDir(t),
    EE_PORT: String(cpPort),
    EE_AGENT_LISTEN: `127.0.0.1:${await closedPort()}`,
    EE_REGISTRY_PORT: String(busy),
  });
  refusedBusy(t, run, busy, "EE_REGISTRY_PORT=PORT");
});

test("EE_HOME under a regular file is EE-DATA-DIR-UNUSABLE naming the file", async (t) => {
  const file = join(tempDir(t), "plain-file");
  writeFileSync(file, "x");
  const run = await npmStart({ EE_HOME: join(file, "home"), EE_PORT: String(await closedPort()) });
  t.is(run.code, 1);
  t.is(
    run.stderr,
    `eectl: EE-DATA-DIR-UNUSABLE: EE_HOME ${join(file, "home")}: ${file} is a file, not a directory\n`,
  );
});

test("EE_PORT that is not a port is EE-CONFIG-INVALID", async (t) => {
  const run = await npmStart({ EE_HOME: tempDir(t), EE_PORT: "80a" });
  t.is(run.code, 1);
  t.is(run.stderr, 'eectl: EE-CONFIG-INVALID: EE_PORT: expected a port number, got "80a"\n');
});
