// `eectl control-plane` flags from the contract that only validate today: --role (standalone serves; master and
// dc are refused until federation exists), --dc-id and --upstream (dc only). Run as a user would: bin/eectl.js.
import test from "ava";
import { eectl } from "../helpers/cli.ts";
import { devRoot, spawnCp, tempDir } from "../helpers/cluster.ts";
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
  [
    ["--role", "dc", "--dc-id", "dc-1", "--upstream", "https://master.example"],
    /--role dc: federation .* not built yet/,
  ],
  [["--role", "master"], /--role master: federation/],
  [["--role", "edge"], /--role: expected standalone, master or dc, got "edge"/],
  [["--dc-id", "dc-1"], /--dc-id and --upstream go with --role dc/],
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
  for (const flag of ["--role", "--dc-id", "--upstream"]) t.true(run.stdout.includes(flag), flag);
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
