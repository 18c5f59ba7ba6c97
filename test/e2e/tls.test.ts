// TLS on loopback with a CA made in the test: a CP serving https/wss, agents trusting it through control_plane_ca
// (or not), eectl trusting it through --cacert or EE_CACERT (or not), and the agent's refusal of plain ws:// off
// loopback. The CP's flags and SIGHUP reload are in test/cli/control-plane-tls.test.ts.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { pino } from "pino";
import { startAgent } from "../../agent/agent.ts";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  agentState,
  devRoot,
  startTestAgent,
  startTestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { removeAgentWorkloads } from "../helpers/docker.ts";
import { httpsStatus, makeCa, makeServerCert, type TestCa } from "../helpers/tls.ts";

async function tlsCp(t: ExecutionContext, ca: TestCa) {
  const server = await makeServerCert(ca, 1);
  return startTestCp(t, {
    tls: {
      certFile: server.certFile,
      keyFile: server.keyFile,
      certSetting: "--tls-cert",
      keySetting: "--tls-key",
    },
  });
}

test("a CP with --tls-cert/--tls-key serves https and wss; an agent trusting control_plane_ca registers over wss", async (t) => {
  const ca = await makeCa(t);
  const { cp, devDir } = await tlsCp(t, ca);
  t.regex(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.regex(cp.wsUrl, /^wss:\/\/127\.0\.0\.1:\d+$/);
  t.is(await httpsStatus(`${cp.url}/healthz`, ca.pem), 200);
  await t.throwsAsync(fetch(`${cp.url.replace("https:", "http:")}/healthz`), undefined, "no plain http");

  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { control_plane_ca: ca.certFile }));
  await waitFor(
    "the agent registered over wss",
    () => agentState(cp, agent.agentId) === "registered" && agent.state().registered,
  );

  // eectl trusts the private CA from --cacert, or from EE_CACERT.
  const base = ["agents", "list", "--json", "--cp", cp.url, "--token", ADMIN_TOKEN];
  for (const run of [
    () => eectl([...base, "--cacert", ca.certFile]),
    () => eectl(base, { env: { EE_CACERT: ca.certFile } }),
  ]) {
    const listed = await run();
    t.is(listed.code, 0, listed.stderr);
    const body = JSON.parse(listed.stdout) as { agents: { agent_id: string; state: string }[] };
    t.deepEqual(
      body.agents.map((a) => [a.agent_id, a.state]),
      [[agent.agentId, "registered"]],
    );
  }
  // A stream (ndjson, followed until Ctrl-C) over the private CA, as a plain list is.
  const follow = eectlRunning(t, [
    "events",
    "--follow",
    "--json",
    "--kind",
    "agent.registered",
    "--cp",
    cp.url,
    "--token",
    ADMIN_TOKEN,
    "--cacert",
    ca.certFile,
  ]);
  await waitFor("the followed event", () => follow.stdout().includes(agent.agentId), 20_000);
  follow.kill("SIGINT");
  t.is(await follow.exited, 0);
});

test("eectl without the CA, with another CA or with an unreadable one fails with a code, not a stack", async (t) => {
  const [ca, other] = await Promise.all([makeCa(t), makeCa(t, "other-ca")]);
  const { cp } = await tlsCp(t, ca);
  const base = ["agents", "list", "--json", "--cp", cp.url, "--token", ADMIN_TOKEN];
  const errorOf = (stdout: string) =>
    (JSON.parse(stdout) as { error: { code: string; message: string } }).error;

  const none = await eectl(base);
  t.is(none.code, 1);
  t.like(errorOf(none.stdout), { code: "EE-TLS-UNTRUSTED" });
  t.regex(errorOf(none.stdout).message, /--cacert PEM or EE_CACERT/);
  t.notRegex(none.stderr, /\n\s+at /, "no stack trace");

  const wrong = await eectl([...base, "--cacert", other.certFile]);
  t.is(wrong.code, 1);
  t.like(errorOf(wrong.stdout), { code: "EE-TLS-UNTRUSTED" });

  const missing = await eectl(base, { env: { EE_CACERT: join(ca.dir, "nope.pem") } });
  t.is(missing.code, 1);
  t.like(errorOf(missing.stdout), { code: "EE-TLS-INVALID" });
  t.regex(errorOf(missing.stdout).message, /^EE_CACERT .*nope\.pem: no such file/);

  const notPem = join(ca.dir, "not.pem");
  writeFileSync(notPem, "hello");
  const text = await eectl(["agents", "list", "--cp", cp.url, "--token", ADMIN_TOKEN, "--cacert", notPem]);
  t.is(text.code, 1);
  t.regex(text.stderr, /^eectl: EE-TLS-INVALID: --cacert .*not\.pem: holds no PEM certificate/);
});

test("an agent whose control_plane_ca did not sign the CP's certificate does not register, keeps retrying and says why", async (t) => {
  const [ca, other] = await Promise.all([makeCa(t), makeCa(t, "other-ca")]);
  const { cp, devDir } = await tlsCp(t, ca);
  const lines: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
  const agent = await startAgent(agentConfig(t, cp.wsUrl, devDir, { control_plane_ca: other.certFile }), {
    log,
  });
  t.teardown(async () => {
    await agent.stop();
    await removeAgentWorkloads(agent.agentId);
  });
  const view = await waitFor(
    "a second failed attempt",
    () => {
      const v = agent.state();
      return v.attempt >= 2 ? v : undefined;
    },
    20_000,
  );
  t.is(view.lastError, "EE-TLS-UNTRUSTED");
  t.false(view.registered);
  t.is(cp.index.get(agent.agentId), undefined, "the CP never saw a registration");
  const refusal = lines.map((l) => JSON.parse(l)).find((l) => l.code === "EE-TLS-UNTRUSTED");
  t.truthy(refusal, lines.join(""));
  t.regex(refusal.msg, /not trusted .*control_plane_ca/);
  t.is(refusal.ca, "control_plane_ca");
});

test("plain ws:// off loopback: the agent refuses the config without allow_insecure_transport, and starts with it", async (t) => {
  const devDir = await devRoot();
  const file = join(tempDir(t, "ee-agent-cfg-"), "config.json");
  const raw = {
    control_plane_url: "ws://10.0.0.1:1",
    vm_name: "vm-insecure",
    node_size: "tiny",
    datacenter: "baremetal:local",
    api_listen: "127.0.0.1:0",
    data_dir: "./data",
    attestation: { provider: "dev", dir: devDir },
  };
  writeFileSync(file, JSON.stringify(raw));
  const refused = await eectl(["agent", "--config", file]);
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    /EE-CONFIG-INSECURE-TRANSPORT: file:.*control_plane_url: plain ws:\/\/ to 10\.0\.0\.1/,
  );

  // Accepted with the key: the agent starts and tries the CP (nothing answers there).
  const agent = await startTestAgent(
    t,
    agentConfig(t, "ws://10.0.0.1:1", devDir, { vm_name: "vm-insecure", allow_insecure_transport: true }),
  );
  t.false(agent.state().registered);
  t.true(["connecting", "disconnected"].includes(agent.state().state), agent.state().state);
});
