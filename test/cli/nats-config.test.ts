// `eectl nats config`: the configs it prints are accepted by the real nats-server (`nats-server -t`), carry the
// allow-lists and mTLS mapping, hold no secret, and bad flags are EE-CONFIG-INVALID with nothing printed.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { leafPermissions } from "../../actors/federation/server-config.ts";
import { eectl } from "../helpers/cli.ts";
import { NATS_SERVER } from "../helpers/nats.ts";
import { tempDir } from "../helpers/temp.ts";

/** `nats-server -t`: parses the config (with the environment it names) and exits. */
function serverAccepts(dir: string, text: string, env: Record<string, string>): { ok: boolean; out: string } {
  const file = join(dir, "x.conf");
  writeFileSync(file, text);
  const r = spawnSync(NATS_SERVER, ["-t", "-c", file], { env: { ...process.env, ...env }, encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test("a hub config with two dcs: domain hub, leaf listener, allow-lists per dc, passwords from the environment", async (t) => {
  const dir = tempDir(t);
  const run = await eectl([
    "nats",
    "config",
    "--role",
    "hub",
    "--listen",
    "127.0.0.1:4222",
    "--leaf-listen",
    "0.0.0.0:7422",
    "--store",
    join(dir, "js"),
    "--dc",
    "dc1",
    "--dc",
    "eu-west",
  ]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /domain: hub/);
  t.regex(run.stdout, /listen: "0\.0\.0\.0:7422"/);
  t.regex(run.stdout, /password: \$EE_NATS_LEAF_EU_WEST_PASSWORD/);
  t.notRegex(run.stdout, /deny/, "allow-lists only");
  for (const subject of leafPermissions("eu-west").publish)
    t.true(run.stdout.includes(JSON.stringify(subject)), subject);
  t.true(run.stdout.includes('"$JS.FC.EE_DOWN_EU_WEST.>"'));
  const accepted = serverAccepts(dir, run.stdout, {
    EE_NATS_CP_PASSWORD: "pmaster",
    EE_NATS_LEAF_DC1_PASSWORD: "pdc1",
    EE_NATS_LEAF_EU_WEST_PASSWORD: "peu",
  });
  t.true(accepted.ok, accepted.out);
});

test("a dc's permissions name only its own streams and subjects", (t) => {
  const p = leafPermissions("dc1");
  for (const s of [...p.publish, ...p.subscribe]) {
    t.false(/dc2|DC2/.test(s), s);
    t.false(/STREAM\.(DELETE|PURGE|UPDATE|CREATE)|\$KV|MSG\.DELETE/.test(s), s);
  }
  t.true(p.publish.includes("ee.hello.dc1"));
  // Relayed reads: its own requests in, answers only into its own reply space out, never a relay request.
  t.true(p.subscribe.includes("ee.relay.dc1.>"));
  t.true(p.publish.includes("ee.reply.dc1.>"));
  t.false(p.publish.some((s) => s.startsWith("ee.relay.")));
});

test("a leaf config with mTLS: the hub URL and certificate files, no password for the link", async (t) => {
  const dir = tempDir(t);
  const run = await eectl([
    "nats",
    "config",
    "--role",
    "leaf",
    "--dc-id",
    "dc1",
    "--hub",
    "hub.example:7422",
    "--store",
    join(dir, "js"),
    "--auth",
    "tls",
    "--tls-cert",
    "/etc/ee/dc1.pem",
    "--tls-key",
    "/etc/ee/dc1.key",
    "--tls-ca",
    "/etc/ee/ca.pem",
  ]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /domain: dc1/);
  t.regex(run.stdout, /urls: \["nats-leaf:\/\/hub\.example:7422"\], tls \{ cert_file: "\/etc\/ee\/dc1\.pem"/);
  t.notRegex(run.stdout, /EE_NATS_HUB_URL/);
  const hub = await eectl([
    "nats",
    "config",
    "--role",
    "hub",
    "--leaf-listen",
    "0.0.0.0:7422",
    "--store",
    join(dir, "js"),
    "--dc",
    "dc1",
    "--auth",
    "tls",
    "--tls-cert",
    "/etc/ee/hub.pem",
    "--tls-key",
    "/etc/ee/hub.key",
    "--tls-ca",
    "/etc/ee/ca.pem",
  ]);
  t.regex(hub.stdout, /verify_and_map: true/);
  t.regex(hub.stdout, /user: "dc1\.leaf\.ee", permissions/);
});

for (const [args, message] of [
  [["--role", "edge", "--store", "/x"], /--role: expected hub or leaf, got "edge"/],
  [["--role", "hub", "--store", "/x", "--dc", "dc1"], /--role hub needs --leaf-listen/],
  [["--role", "hub", "--store", "/x", "--leaf-listen", "0.0.0.0:7422"], /--dc: name every dc/],
  [["--role", "hub", "--store", "/x", "--leaf-listen", "0.0.0.0:7422", "--dc", "Bad_Id"], /--dc: a dc id is/],
  [["--role", "hub", "--store", "/x", "--leaf-listen", "0.0.0.0:7422", "--dc", "hub"], /"hub" is reserved/],
  [["--role", "leaf", "--store", "/x"], /--role leaf needs --dc-id/],
  [
    ["--role", "leaf", "--store", "/x", "--dc-id", "dc1", "--auth", "tls"],
    /--tls-cert, --tls-key and --tls-ca|--auth tls needs/,
  ],
  [["--role", "leaf", "--store", "/x", "--dc-id", "dc1", "--auth", "none"], /--hub HOST:PORT/],
  [
    ["--role", "leaf", "--store", "/x", "--dc-id", "dc1", "--auth", "magic"],
    /--auth: expected password, tls or none/,
  ],
  [["--role", "leaf", "--store", "/x", "--dc-id", "dc1", "--hub", "nohost"], /--hub: expected HOST:PORT/],
] as const) {
  test(`nats config ${args.join(" ")} is EE-CONFIG-INVALID and prints nothing`, async (t) => {
    const run = await eectl(["nats", "config", ...args]);
    t.is(run.code, 1);
    t.regex(run.stderr, /^eectl: EE-CONFIG-INVALID: /m);
    t.regex(run.stderr, message);
    t.is(run.stdout, "");
  });
}
