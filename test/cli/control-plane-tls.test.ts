// `eectl control-plane --tls-cert/--tls-key` as operators run it (bin/eectl.js): refusals before anything starts,
// and SIGHUP reloading the pair while an agent stays connected. CA and certificates are made in the test
// (test/helpers/tls.ts); https/wss with agents and eectl clients are in test/e2e/tls.test.ts.
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, devRoot, spawnCp, startTestAgent, tempDir, waitFor } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";
import { makeCa, makeServerCert, presentedFingerprint } from "../helpers/tls.ts";

test("only one TLS flag, an unreadable file or a mismatched pair: exit 1 with a code naming it, nothing started", async (t) => {
  const ca = await makeCa(t);
  const [one, two] = await Promise.all([makeServerCert(ca, 1), makeServerCert(ca, 2)]);
  const port = await closedPort();
  const cases: [string[], RegExp][] = [
    [["--tls-cert", one.certFile], /^eectl: EE-CONFIG-INVALID: --tls-key is missing/m],
    [["--tls-key", one.keyFile], /^eectl: EE-CONFIG-INVALID: --tls-cert is missing/m],
    [
      ["--tls-cert", join(ca.dir, "nope.pem"), "--tls-key", one.keyFile],
      /^eectl: EE-TLS-INVALID: --tls-cert \S+nope\.pem: no such file$/m,
    ],
    [
      ["--tls-cert", one.keyFile, "--tls-key", one.keyFile],
      /^eectl: EE-TLS-INVALID: --tls-cert \S+: holds no PEM certificate/m,
    ],
    [
      ["--tls-cert", one.certFile, "--tls-key", one.certFile],
      /^eectl: EE-TLS-INVALID: --tls-key \S+: is not a PEM private key/m,
    ],
    [
      ["--tls-cert", one.certFile, "--tls-key", two.keyFile],
      /^eectl: EE-TLS-INVALID: --tls-key \S+server-2\.key: is not the key of the certificate in \S+server-1\.pem$/m,
    ],
  ];
  for (const [flags, message] of cases) {
    const dataDir = join(tempDir(t), "cp");
    const run = await eectl([
      "control-plane",
      "--listen",
      `127.0.0.1:${port}`,
      "--data-dir",
      dataDir,
      "--admin-token",
      "cli-test-admin-token-0123",
      ...flags,
    ]);
    t.is(run.code, 1, flags.join(" "));
    t.regex(run.stderr, message);
    t.is(run.stdout, "", "nothing served");
    t.false(existsSync(dataDir), "no data dir made");
  }
});

test("SIGHUP serves a new certificate to new connections while the connected agent keeps its session; a bad pair is refused and the old one stays", async (t) => {
  const ca = await makeCa(t);
  const live = { certFile: join(ca.dir, "cp.pem"), keyFile: join(ca.dir, "cp.key") };
  const [first, second, third] = await Promise.all([
    makeServerCert(ca, 1, live),
    makeServerCert(ca, 2),
    makeServerCert(ca, 3),
  ]);
  const devDir = await devRoot();
  const port = await closedPort();
  const cp = await spawnCp(t, { port, dataDir: tempDir(t), devDir, tls: { ...live, ca: ca.pem } });
  t.is(await presentedFingerprint(port, ca.pem), first.fingerprint256);

  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { control_plane_ca: ca.certFile }));
  const session = await waitFor("the agent registered over wss", () => agent.state().sessionId ?? undefined);
  const heartbeatsAfter = async (seq: number) =>
    waitFor("heartbeats on the same session", () => {
      const v = agent.state();
      return v.sessionId === session && v.registered && v.heartbeatSeq >= seq + 3
        ? v.heartbeatSeq
        : undefined;
    });

  copyFileSync(second.certFile, live.certFile);
  copyFileSync(second.keyFile, live.keyFile);
  cp.child.kill("SIGHUP");
  await waitFor("new handshakes to get the new certificate", async () =>
    (await presentedFingerprint(port, ca.pem)) === second.fingerprint256 ? true : undefined,
  );
  const seq = await heartbeatsAfter(agent.state().heartbeatSeq);
  t.is(agent.state().sessionId, session, "the agent's connection was not dropped");

  // A certificate whose key is not beside it: refused, logged, and the second pair keeps serving.
  copyFileSync(third.certFile, live.certFile);
  cp.child.kill("SIGHUP");
  const refusal = await waitFor("the refusal in the log", () =>
    cp
      .stderr()
      .split("\n")
      .find((l) => l.includes("TLS reload refused")),
  );
  t.like(JSON.parse(refusal), { level: 50, code: "EE-TLS-INVALID" });
  t.regex(JSON.parse(refusal).err, /--tls-key \S+cp\.key: is not the key of the certificate/);
  t.is(await presentedFingerprint(port, ca.pem), second.fingerprint256);
  await heartbeatsAfter(seq);
  t.is(agent.state().sessionId, session);
  t.is(cp.child.exitCode, null, "the CP still runs");
});
