// `eectl control-plane` flags from the contract: --role (standalone serves; master and dc need --nats, a dc its
// --dc-id; a nats-server that does not answer is EE-FED-UNAVAILABLE), and the timing flags. Run as a user would:
// bin/eectl.js. Federation itself is test/e2e/federation.test.ts.
import { spawn } from "node:child_process";
import test from "ava";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import { devRoot, RawAgent, spawnCp, tempDir, waitFor } from "../helpers/cluster.ts";
import { NATS_SERVER } from "../helpers/nats.ts";
import { closedPort } from "../helpers/temp.ts";

const base = async (t: Parameters<typeof tempDir>[0]) => [
  "control-plane",
  "--listen",
  `127.0.0.1:${await closedPort()}`,
  "--data-dir",
  tempDir(t),
  "--dev-attestation",
  await devRoot(),
  "--admin-token",
  "cli-test-admin-token-0123",
];

for (const [args, message] of [
  [["--role", "dc", "--dc-id", "dc-1"], /--role dc needs --nats nats:\/\/HOST:PORT/],
  [["--role", "master"], /--role master needs --nats/],
  [["--role", "dc", "--nats", "nats://127.0.0.1:4222"], /--role dc needs --dc-id ID/],
  [["--role", "dc", "--nats", "http://x", "--dc-id", "dc1"], /--nats: expected nats:\/\/HOST:PORT/],
  [["--role", "dc", "--nats", "nats://127.0.0.1:4222", "--dc-id", "DC_1"], /--dc-id: a dc id is/],
  [["--role", "dc", "--nats", "nats://127.0.0.1:4222", "--dc-id", "master"], /--dc-id: "master" is reserved/],
  [["--role", "master", "--nats", "nats://127.0.0.1:4222", "--dc-id", "dc1"], /--dc-id goes with --role dc/],
  [
    ["--role", "dc", "--nats", "nats://127.0.0.1:4222", "--dc-id", "dc1", "--dc-lag-warn-ms", "5000"],
    /--dc-lag-warn-ms goes with --role master/,
  ],
  [["--dc-lag-warn-ms", "5000"], /go with --role master or dc/],
  [
    ["--role", "dc", "--nats", "nats://127.0.0.1:4222", "--dc-id", "dc1", "--master-key", "xyz"],
    /--master-key: expected the master's CP identity public key, 64 hex digits/,
  ],
  [
    ["--role", "master", "--nats", "nats://127.0.0.1:4222", "--master-key", "ab".repeat(32)],
    /--master-key goes with --role dc/,
  ],
  [["--role", "master", "--nats", "nats://127.0.0.1:4222", "--dc-lag-warn-ms", "0"], /--dc-lag-warn-ms/],
  [["--role", "edge"], /--role: expected standalone, master or dc, got "edge"/],
  [["--dc-id", "dc-1"], /--dc-id, --nats and the --nats-\* flags go with --role master or dc/],
  [["--nats", "nats://127.0.0.1:4222"], /go with --role master or dc/],
  [["--stale-after-ms", "999"], /--stale-after-ms must be at least 1000 \(ms\), got 999/],
  [
    ["--stale-after-ms", "3000", "--heartbeat-ms", "3000"],
    /heartbeat-ms \(3000\) must be less than stale-after-ms \(3000\)/,
  ],
] as const) {
  test(`control-plane ${args.join(" ")} is refused with EE-CONFIG-INVALID before anything starts`, async (t) => {
    const run = await eectl([...(await base(t)), ...args]);
    t.is(run.code, 1);
    t.regex(run.stderr, /^eectl: EE-CONFIG-INVALID: /m);
    t.regex(run.stderr, message);
    t.is(run.stdout, "", "nothing served");
  });
}

test("--help lists the federation flags", async (t) => {
  const run = await eectl(["control-plane", "--help"]);
  t.is(run.code, 0);
  for (const flag of [
    "--role",
    "--dc-id",
    "--nats",
    "--nats-creds",
    "--nats-tls-ca",
    "--dc-degraded-after-ms",
    "--dc-lag-warn-ms",
    "--master-key",
  ])
    t.true(run.stdout.includes(flag), flag);
});

test("--role dc with a nats-server that does not answer is EE-FED-UNAVAILABLE, and nothing serves", async (t) => {
  const run = await eectl([
    ...(await base(t)),
    "--role",
    "dc",
    "--dc-id",
    "dc1",
    "--nats",
    `nats://127.0.0.1:${await closedPort()}`,
  ]);
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    /^eectl: EE-FED-UNAVAILABLE: cannot reach the nats-server at nats:\/\/127\.0\.0\.1:\d+/m,
  );
  t.is(run.stdout, "", "nothing served");
});

test("--role dc on a nats-server without JetStream is EE-FED-UNAVAILABLE, and nothing serves", async (t) => {
  const [port, http] = [await closedPort(), await closedPort()];
  const server = spawn(NATS_SERVER, ["-a", "127.0.0.1", "-p", String(port), "-m", String(http)], {
    stdio: "ignore",
  });
  t.teardown(() => server.kill("SIGKILL"));
  await waitFor(
    "nats-server",
    async () => (await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => null))?.ok || undefined,
  );
  const run = await eectl([
    ...(await base(t)),
    "--role",
    "dc",
    "--dc-id",
    "dc1",
    "--nats",
    `nats://127.0.0.1:${port}`,
  ]);
  t.is(run.code, 1);
  t.regex(run.stderr, /^eectl: EE-FED-UNAVAILABLE: setting up the dc streams on the nats-server failed/m);
  t.is(run.stdout, "");
});

test("--role standalone serves", async (t) => {
  const cp = await spawnCp(t, {
    port: await closedPort(),
    dataDir: tempDir(t),
    devDir: await devRoot(),
    args: ["--role", "standalone"],
  });
  t.is((await fetch(`${cp.url}/healthz`)).status, 200);
  await cp.kill();
});

test("an unknown EE_LOG_LEVEL is EE-CONFIG-INVALID naming the variable, not a stack trace", async (t) => {
  const run = await eectl(await base(t), { env: { EE_LOG_LEVEL: "verbose" } });
  t.is(run.code, 1);
  t.is(
    run.stderr,
    'eectl: EE-CONFIG-INVALID: EE_LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"\n',
  );
});

test("--stale-after-ms 3000 alone serves and asks agents for a heartbeat a third of it", async (t) => {
  const args = await base(t);
  const cp = eectlRunning(t, [...args, "--stale-after-ms", "3000"]);
  let exit: number | null | undefined;
  void cp.exited.then((code) => {
    exit = code;
  });
  const url = `http://${args[2]}`;
  await waitFor(
    "the control plane to serve",
    async () => {
      if (exit !== undefined) throw new Error(`eectl control-plane exited with ${exit}`);
      return (await fetch(`${url}/healthz`).catch(() => null))?.ok || undefined;
    },
    60_000,
  );
  const raw = await RawAgent.connect(t, `ws://${args[2]}`);
  const registered = await raw.register(args[6]!);
  t.is(registered.body.heartbeat_ms, 1000);
  t.is(registered.body.stale_after_ms, 3000);
  cp.kill("SIGTERM");
  t.is(await cp.exited, 0);
});
