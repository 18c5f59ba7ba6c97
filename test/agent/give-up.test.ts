// The agent gives up only when told to: registration.max_attempts exhausted, or the connectivity probe's `exit`
// action. Real sockets and HTTP on loopback; a closed port stands in for an unreachable CP.
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import test from "ava";
import { startAgent } from "../../agent/agent.ts";
import { startConnectivityProbe } from "../../agent/connectivity-probe.ts";
import { silentLogger } from "../../lib/log.ts";
import type { AgentExitError } from "../../spec/errors.ts";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, devRoot, waitFor } from "../helpers/cluster.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";

test("an agent that cannot reach its CP gives up after registration.max_attempts", async (t) => {
  const port = await closedPort();
  const config = agentConfig(t, `ws://127.0.0.1:${port}`, await devRoot(), {
    registration: { max_attempts: 2 },
  });
  const agent = await startAgent(config, { log: silentLogger });
  t.teardown(() => agent.stop());
  const err = await Promise.race([agent.failed, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
  t.truthy(err, "gave up in time");
  t.is(err?.code, "EE-AGENT-REGISTRATION-EXHAUSTED");
  t.regex(err?.message ?? "", /after 2 attempts/);
  t.is(agent.state().state, "gave_up");
});

test("max_attempts 0 (the default) never gives up", async (t) => {
  const port = await closedPort();
  const agent = await startAgent(agentConfig(t, `ws://127.0.0.1:${port}`, await devRoot()), {
    log: silentLogger,
  });
  t.teardown(() => agent.stop());
  let settled = false;
  void agent.failed.then(() => (settled = true));
  // Past the attempts a max_attempts of 2 gives up after (the test above), with the link still trying.
  await waitFor("a third connection attempt", () => (agent.state().attempt >= 3 ? true : undefined), 30_000);
  t.false(settled);
  t.not(agent.state().state, "gave_up");
});

async function flakyServer(t: import("ava").ExecutionContext) {
  let status = 204;
  /** Requests seen, by the status they were answered with: the probe sends one only after handling the last. */
  const answered = new Map<number, number>();
  const server = createServer((_, res) => {
    answered.set(status, (answered.get(status) ?? 0) + 1);
    res.statusCode = status;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/health?token=x`,
    setStatus: (s: number) => (status = s),
    answered: (s: number) => answered.get(s) ?? 0,
  };
}

test("the probe's exit action fires once after failure_threshold failures in a row; answers reset the count", async (t) => {
  const srv = await flakyServer(t);
  let exits: AgentExitError[] = [];
  const probe = startConnectivityProbe(
    { url: srv.url, interval_ms: 30, timeout_ms: 500, failure_threshold: 3, action: "exit" },
    { log: silentLogger, onExit: (e) => exits.push(e) },
  );
  t.teardown(() => probe.stop());
  await waitFor("a successful probe", () => (probe.state().lastOkAt !== null ? true : undefined));
  srv.setStatus(404);
  // A fourth request means the probe has handled three 404s: as many as would have made it act.
  await waitFor("four probes answered 404", () => (srv.answered(404) >= 4 ? true : undefined));
  t.is(probe.state().consecutiveFailures, 0, "a 4xx answer still proves the path works");
  srv.setStatus(503);
  await waitFor("the exit action", () => (exits.length > 0 ? true : undefined));
  t.is(exits[0]?.code, "EE-AGENT-CONNECTIVITY");
  t.false(exits[0]?.message.includes("token"), "the URL's query is not in the message");
  const atExit = srv.answered(503);
  await waitFor("four more failed probes", () => (srv.answered(503) >= atExit + 4 ? true : undefined));
  t.is(exits.length, 1, "once per outage");
  srv.setStatus(200);
  await waitFor("recovered", () => (probe.state().consecutiveFailures === 0 ? true : undefined));
  exits = [];
  srv.setStatus(500);
  await waitFor("a second outage acts again", () => (exits.length > 0 ? true : undefined));
});

test("the probe's log action never makes the agent give up", async (t) => {
  const port = await closedPort();
  let exited = false;
  const probe = startConnectivityProbe(
    {
      url: `http://127.0.0.1:${port}/`,
      interval_ms: 20,
      timeout_ms: 200,
      failure_threshold: 2,
      action: "log",
    },
    { log: silentLogger, onExit: () => (exited = true) },
  );
  t.teardown(() => probe.stop());
  await waitFor("failures", () => (probe.state().consecutiveFailures >= 4 ? true : undefined));
  t.false(exited);
});

test("`eectl agent` exits 1 with EE-AGENT-REGISTRATION-EXHAUSTED when registration.max_attempts runs out", async (t) => {
  const port = await closedPort();
  const config = agentConfig(t, `ws://127.0.0.1:${port}`, await devRoot(), {
    registration: { max_attempts: 2 },
  });
  const file = join(tempDir(t), "agent.json");
  writeFileSync(file, JSON.stringify(config));
  const run = await eectl(["agent", "--config", file], { env: { EE_LOG_LEVEL: "silent" } });
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    /^eectl: EE-AGENT-REGISTRATION-EXHAUSTED: no registration with ws:\/\/127\.0\.0\.1:\d+ after 2 attempts/m,
  );
});
