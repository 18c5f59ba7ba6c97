// `npm run bench` smoke tests: the attest, scale, cli and (opt-in) federation phases (a tiny N, short measurements) run as child
// processes; the last stdout line must be the JSON object scripts read, with plausible figures.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function bench(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "test/load/bench.ts", ...args],
      { cwd: REPO },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
    );
  });
}

test("attest phase prints one JSON object as the last stdout line", async (t) => {
  const { stdout, stderr } = await bench("attest", "--seconds", "0.2", "--agents", "3");
  const last = stdout.trimEnd().split("\n").at(-1) ?? "";
  const out = JSON.parse(last) as Record<string, unknown>;
  for (const key of ["ecdsa_verify_per_s", "quote_verify_per_s"]) {
    t.true(typeof out[key] === "number" && out[key] > 0, `${key} = ${String(out[key])}`);
  }
  const ratio = out.quote_verify_ratio;
  t.true(typeof ratio === "number" && ratio > 0 && ratio < 2, `quote_verify_ratio = ${String(ratio)}`);
  t.is(out.agents, 3);
  t.deepEqual(out.phases, ["attest"]);
  t.true(typeof out.cpus === "number" && typeof out.node === "string");
  t.true(
    out.intel_quote_verify_per_s === null ||
      (typeof out.intel_quote_verify_per_s === "number" && out.intel_quote_verify_per_s > 0),
  );
  // The table goes to stderr so stdout stays machine-readable.
  t.regex(stderr, /ratio to baseline/);
});

test("scale phase: a CP process and simulated agents through every step", async (t) => {
  t.timeout(180_000);
  const { stdout, stderr } = await bench(
    "scale",
    "--agents",
    "12",
    "--seconds",
    "0.6",
    "--heartbeat-ms",
    "500",
  );
  const out = JSON.parse(stdout.trimEnd().split("\n").at(-1) ?? "") as Record<string, unknown>;
  const positive = [
    "register_storm_s",
    "register_p99_ms",
    "heartbeat_msgs_per_s",
    "echo_baseline_msgs_per_s",
    "heartbeat_ack_p99_ms",
    "deploy_dispatch_p99_ms",
    "rehydrate_s",
    "list_agents_ms",
  ];
  for (const key of positive)
    t.true(typeof out[key] === "number" && out[key] > 0, `${key} = ${String(out[key])}`);
  const ratio = out.heartbeat_ratio;
  t.true(typeof ratio === "number" && ratio > 0 && ratio < 5, `heartbeat_ratio = ${String(ratio)}`);
  t.true(typeof out.rss_per_agent_kb === "number");
  t.is(out.agents, 12);
  t.is(out.deploys, 12);
  t.is(out.heartbeat_ms, 500);
  t.is(out.reregistered_in_steady, 0);
  t.regex(stderr, /rehydration of 12/);
});

test("cli phase: eectl's medians beside node -e 0's, and the two ratios", async (t) => {
  t.timeout(120_000);
  const { stdout } = await bench("cli", "--runs", "3");
  const out = JSON.parse(stdout.trimEnd().split("\n").at(-1) ?? "") as Record<string, unknown>;
  for (const key of ["cli_node_ms", "cli_version_ms", "cli_agents_list_ms"])
    t.true(typeof out[key] === "number" && out[key] > 0, `${key} = ${String(out[key])}`);
  // The ratios themselves are timing, which a busy machine skews: only that they are computed.
  const ratio = (out.cli_version_ms as number) / (out.cli_node_ms as number);
  t.true(
    Math.abs((out.cli_version_ratio as number) - ratio) < 0.02,
    `cli_version_ratio = ${out.cli_version_ratio}`,
  );
  t.true(typeof out.cli_agents_list_ratio === "number" && out.cli_agents_list_ratio > 0);
  t.deepEqual(out.phases, ["cli"]);
});

test("federation phase (opt-in): dc → master rate beside the raw JetStream rate, lag, agents listed, catch-up", async (t) => {
  const { stdout, stderr } = await bench(
    "federation",
    "--dcs",
    "1",
    "--dc-agents",
    "3",
    "--outage-s",
    "1",
    "--seconds",
    "0.5",
  );
  const out = JSON.parse(stdout.trimEnd().split("\n").at(-1) ?? "") as Record<string, unknown>;
  t.deepEqual(out.phases, ["federation"]);
  t.like(out, { fed_dcs: 1, fed_agents_per_dc: 3, fed_outage_s: 1 });
  for (const key of [
    "fed_raw_jetstream_publish_per_s",
    "fed_events_per_s",
    "fed_agents_listed_ms",
    "fed_lag_p99_ms",
    "fed_catch_up_ms",
  ])
    t.true(typeof out[key] === "number" && (out[key] as number) > 0, `${key} = ${String(out[key])}`);
  t.true((out.fed_lag_p50_ms as number) <= (out.fed_lag_p99_ms as number));
  t.regex(stderr, /dc → master events \(1 dcs at once\)\s+[\d,]+\/s\s+\d\.\d{3}/);
});

test("an unknown phase is a usage error", async (t) => {
  const err = await t.throwsAsync(bench("nope"));
  t.regex(err?.message ?? "", /unknown phase "nope"/);
});
