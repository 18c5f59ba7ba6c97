// Agent config: the schema, the source chain (--config, EASYENCLAVE_CONFIG) and the loggable view.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import test from "ava";
import {
  type ConfigSource,
  describeConfig,
  loadAgentConfig,
  loadFromChain,
  parseAgentConfig,
  readConfigFile,
} from "../../agent/config.ts";
import { LIMIT_PRESETS, limitsFor } from "../../agent/runtime/limits.ts";
import { parseHostPort } from "../../lib/host-port.ts";
import { ValidationError } from "../../spec/errors.ts";

const valid = {
  control_plane_url: "ws://127.0.0.1:8080/",
  vm_name: "agent-1",
  node_size: "tiny",
  datacenter: "baremetal:local",
  api_listen: "127.0.0.1:9001",
  data_dir: "/var/lib/easyenclave",
  attestation: { provider: "dev", dir: "/tmp/dev-att", mrtd: "AB".repeat(48) },
};

async function writeConfig(value: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ee-agent-config-"));
  const path = join(dir, "agent.json");
  await writeFile(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

function configError(t: import("ava").ExecutionContext, fn: () => unknown): ValidationError {
  const err = t.throws(fn, { instanceOf: ValidationError });
  t.is(err.code, "EE-CONFIG-INVALID");
  return err;
}

test("a valid config loads with defaults filled and values normalised", (t) => {
  const cfg = parseAgentConfig(valid, "test");
  t.is(cfg.heartbeat_interval_ms, 5000);
  t.is(
    cfg.control_plane_url,
    "ws://127.0.0.1:8080",
    "trailing slash dropped before the connect path is added",
  );
  t.deepEqual(cfg.attestation, { provider: "dev", dir: "/tmp/dev-att", mrtd: "ab".repeat(48) });
  const tsm = parseAgentConfig(
    { ...valid, attestation: { provider: "tsm" }, heartbeat_interval_ms: 100, api_listen: "[::1]:0" },
    "test",
  );
  t.deepEqual(tsm.attestation, { provider: "tsm" });
  t.is(tsm.heartbeat_interval_ms, 100);
  t.is(
    parseAgentConfig({ ...valid, control_plane_url: "wss://cp.example.com" }, "t").control_plane_url,
    "wss://cp.example.com",
  );
});

// [the key the error must name, the top-level key to set, its bad value, a word the message must hold]
const badValues: [string, string, unknown, string][] = [
  ["control_plane_url", "control_plane_url", "http://127.0.0.1:8080", "ws:// or wss://"],
  ["control_plane_url", "control_plane_url", "not a url", "ws:// or wss://"],
  ["control_plane_url", "control_plane_url", "ws://h:1/?x=1", "without query"],
  ["vm_name", "vm_name", "Agent_1", "DNS label"],
  ["node_size", "node_size", "", "Too small"],
  ["datacenter", "datacenter", "baremetal", "provider:zone"],
  ["api_listen", "api_listen", "127.0.0.1", "host:port"],
  ["api_listen", "api_listen", "127.0.0.1:70000", "host:port"],
  ["data_dir", "data_dir", "", "directory path"],
  ["heartbeat_interval_ms", "heartbeat_interval_ms", 99, "at least 100"],
  ["heartbeat_interval_ms", "heartbeat_interval_ms", 1000.5, "integer"],
  ["heartbeat_interval_ms", "heartbeat_interval_ms", "5000", "expected number"],
  ["attestation.provider", "attestation", { provider: "sgx" }, '"provider": "tsm"'],
  ["attestation", "attestation", "dev", '"provider": "tsm"'],
];

for (const [named, key, value, hint] of badValues) {
  test(`a bad ${key} (${JSON.stringify(value)}) is refused by name`, (t) => {
    const err = configError(t, () => parseAgentConfig({ ...valid, [key]: value }, "file:/etc/agent.json"));
    t.true(err.message.startsWith(`file:/etc/agent.json: ${named}: `), err.message);
    t.true(err.message.includes(hint), err.message);
    t.like(err.details, { source: "file:/etc/agent.json", issues: [{ key: named }] });
  });
}

test("nested attestation keys are named with their path", (t) => {
  const noDir = configError(t, () => parseAgentConfig({ ...valid, attestation: { provider: "dev" } }, "s"));
  t.is(noDir.message, "s: attestation.dir: is required");
  const badMrtd = configError(t, () =>
    parseAgentConfig({ ...valid, attestation: { provider: "dev", dir: "d", mrtd: "abc" } }, "s"),
  );
  t.regex(badMrtd.message, /attestation\.mrtd: must be 96 hex/);
  const tsmDir = configError(t, () =>
    parseAgentConfig({ ...valid, attestation: { provider: "tsm", dir: "d" } }, "s"),
  );
  t.is(tsmDir.message, "s: attestation.dir: unknown key");
});

test("unknown keys are refused, each by name", (t) => {
  const err = configError(t, () => parseAgentConfig({ ...valid, colour: "blue", heartbeat_ms: 5 }, "s"));
  t.is(err.message, "s: colour: unknown key; heartbeat_ms: unknown key");
});

test("missing keys are each named as required", (t) => {
  const { vm_name: _v, data_dir: _d, ...rest } = valid;
  const err = configError(t, () => parseAgentConfig(rest, "s"));
  t.is(err.message, "s: vm_name: is required; data_dir: is required");
});

test("a config that is not an object is refused", (t) => {
  const err = configError(t, () => parseAgentConfig([1, 2], "s"));
  t.regex(err.message, /^s: <root>: /);
});

test("--config names the file source; its name is in the result", async (t) => {
  const path = await writeConfig(valid);
  const loaded = await loadAgentConfig({ configPath: path, env: {} });
  t.is(loaded.source, `file:${path}`);
  t.is(loaded.config.vm_name, "agent-1");
});

test("without --config, EASYENCLAVE_CONFIG names the file; --config wins over it", async (t) => {
  const path = await writeConfig(valid);
  const other = await writeConfig({ ...valid, vm_name: "agent-2" });
  t.is((await loadAgentConfig({ env: { EASYENCLAVE_CONFIG: path } })).config.vm_name, "agent-1");
  t.is(
    (await loadAgentConfig({ configPath: other, env: { EASYENCLAVE_CONFIG: path } })).config.vm_name,
    "agent-2",
  );
});

test("relative paths in a config file resolve against the file's folder, not the working directory", async (t) => {
  const path = await writeConfig({
    ...valid,
    data_dir: "./agent1",
    attestation: { provider: "dev", dir: "../dev-root" },
    docker_socket: "run/docker.sock",
  });
  const dir = dirname(path);
  const expected = {
    data_dir: join(dir, "agent1"),
    attestation: { provider: "dev", dir: resolve(dir, "../dev-root") },
    docker_socket: join(dir, "run/docker.sock"),
  };
  t.not(process.cwd(), dir);
  t.like((await loadAgentConfig({ configPath: path, env: {} })).config, expected);
  t.like((await loadAgentConfig({ env: { EASYENCLAVE_CONFIG: path } })).config, expected);
  // What the installer and `eectl config` copy elsewhere names the same files.
  const read = await readConfigFile(path);
  t.like(read.config, expected);
  t.like(read.raw, expected);
  t.false("heartbeat_interval_ms" in (read.raw as object), "the raw copy holds no filled-in defaults");
});

test("a missing file is an error naming the source", async (t) => {
  const err = await t.throwsAsync(loadAgentConfig({ configPath: "/nonexistent/agent.json", env: {} }), {
    instanceOf: ValidationError,
  });
  t.is(err.code, "EE-CONFIG-INVALID");
  t.is(err.message, "file:/nonexistent/agent.json: cannot read the config file (ENOENT)");
});

test("bad JSON is an error naming the source", async (t) => {
  const path = await writeConfig("{ not json");
  const err = await t.throwsAsync(loadAgentConfig({ configPath: path, env: {} }), {
    instanceOf: ValidationError,
  });
  t.is(err.code, "EE-CONFIG-INVALID");
  t.true(err.message.startsWith(`file:${path}: not valid JSON`), err.message);
});

test("a bad key in a file names the file and the key", async (t) => {
  const path = await writeConfig({ ...valid, datacenter: "nowhere" });
  const err = await t.throwsAsync(loadAgentConfig({ configPath: path, env: {} }), {
    instanceOf: ValidationError,
  });
  t.true(err.message.startsWith(`file:${path}: datacenter: `), err.message);
});

test("no source at all says how to give one", async (t) => {
  const err = await t.throwsAsync(loadAgentConfig({ env: {} }), { instanceOf: ValidationError });
  t.regex(err.message, /no agent config found.*--config FILE or set EASYENCLAVE_CONFIG/);
});

test("the chain skips sources that hold no config and takes the first that does", async (t) => {
  const empty: ConfigSource = { name: "empty", read: async () => null };
  const full: ConfigSource = { name: "full", read: async () => ({ raw: valid }) };
  const never: ConfigSource = {
    name: "never",
    read: async () => {
      throw new Error("must not be read");
    },
  };
  t.is((await loadFromChain([empty, full, never])).source, "full");
});

test("describeConfig lists the effective values field by field", (t) => {
  const cfg = parseAgentConfig(valid, "s");
  t.deepEqual(describeConfig(cfg), {
    control_plane_url: "ws://127.0.0.1:8080",
    control_plane_ca: null,
    allow_insecure_transport: false,
    vm_name: "agent-1",
    node_size: "tiny",
    datacenter: "baremetal:local",
    api_listen: "127.0.0.1:9001",
    data_dir: "/var/lib/easyenclave",
    heartbeat_interval_ms: 5000,
    attestation: { provider: "dev", dir: "/tmp/dev-att", mrtd: "ab".repeat(48) },
    bind_allowlist: [],
    docker_socket: "/var/run/docker.sock",
    registration: { max_attempts: 0 },
    connectivity_probe: null,
    cp_envelope: { policy: "signed", trusted_mrtds: [], pin_first_seen: false },
    workloads: { allow_published_ports: false, limits: LIMIT_PRESETS },
  });
});

test("plain ws:// to a host that is not loopback is refused with its own code unless allow_insecure_transport", (t) => {
  for (const url of [
    "ws://10.0.0.1:1",
    "ws://cp.example.com:8080",
    "ws://[2001:db8::1]:80",
    "ws://localhost.example:1",
  ]) {
    const err = t.throws(() => parseAgentConfig({ ...valid, control_plane_url: url }, "file:/etc/a.json"), {
      instanceOf: ValidationError,
    });
    t.is(err.code, "EE-CONFIG-INSECURE-TRANSPORT", url);
    t.true(err.message.startsWith("file:/etc/a.json: control_plane_url: plain ws://"), err.message);
    t.true(err.message.includes("allow_insecure_transport"), err.message);
    t.like(err.details, { key: "control_plane_url" });
    const allowed = parseAgentConfig(
      { ...valid, control_plane_url: url, allow_insecure_transport: true },
      "s",
    );
    t.true(allowed.allow_insecure_transport);
  }
  // Loopback never leaves the host (npm start's agent); wss:// is fine anywhere.
  for (const url of [
    "ws://127.0.0.1:1",
    "ws://127.1.2.3:1",
    "ws://localhost:1",
    "ws://LOCALHOST:1",
    "ws://[::1]:1",
    "wss://10.0.0.1:1",
  ])
    t.is(parseAgentConfig({ ...valid, control_plane_url: url }, "s").allow_insecure_transport, false, url);
  configError(t, () => parseAgentConfig({ ...valid, allow_insecure_transport: "yes" }, "s"));
});

test("control_plane_ca resolves against the config file's folder and applies to wss:// only", async (t) => {
  const path = await writeConfig({
    ...valid,
    control_plane_url: "wss://cp.example.com",
    control_plane_ca: "ca/cp-ca.pem",
  });
  t.is(
    (await loadAgentConfig({ configPath: path, env: {} })).config.control_plane_ca,
    join(dirname(path), "ca/cp-ca.pem"),
  );
  const read = await readConfigFile(path);
  t.is(read.config.control_plane_ca, join(dirname(path), "ca/cp-ca.pem"));
  t.like(read.raw, { control_plane_ca: join(dirname(path), "ca/cp-ca.pem") }, "what the installer copies");
  const onWs = configError(t, () => parseAgentConfig({ ...valid, control_plane_ca: "/etc/ca.pem" }, "s"));
  t.like(onWs.details, { issues: [{ key: "control_plane_ca" }] });
  t.true(onWs.message.includes("wss://"), onWs.message);
  const noFolder = configError(t, () =>
    parseAgentConfig(
      { ...valid, control_plane_url: "wss://cp", control_plane_ca: "ca.pem" },
      "cmdline",
      null,
    ),
  );
  t.like(noFolder.details, { issues: [{ key: "control_plane_ca" }] });
});

test("workloads.limits override the built-in preset of a node_size; other sizes keep theirs", (t) => {
  const cfg = parseAgentConfig(
    { ...valid, workloads: { limits: { tiny: { memory_mb: 64, cpus: 0.5, pids: 32 } } } },
    "s",
  );
  t.deepEqual(limitsFor("tiny", cfg.workloads.limits), {
    Memory: 64 * 1024 * 1024,
    MemorySwap: 64 * 1024 * 1024,
    NanoCpus: 5e8,
    PidsLimit: 32,
  });
  t.is(limitsFor("llm", cfg.workloads.limits).PidsLimit, LIMIT_PRESETS.llm!.pids);
  t.is(
    limitsFor("huge", cfg.workloads.limits).PidsLimit,
    LIMIT_PRESETS.standard!.pids,
    "no preset: standard",
  );
  t.false(cfg.workloads.allow_published_ports);
  const bad = t.throws(() =>
    parseAgentConfig({ ...valid, workloads: { limits: { tiny: { pids: 1 } } } }, "s"),
  );
  t.regex(bad?.message ?? "", /workloads\.limits\.tiny\.pids/);
});

test("describeConfig shows only the origin of the connectivity probe URL (it may carry a token)", (t) => {
  const cfg = parseAgentConfig(
    { ...valid, connectivity_probe: { url: "https://tunnel.example/health?token=s3cret", action: "exit" } },
    "s",
  );
  const shown = describeConfig(cfg);
  t.deepEqual(shown.connectivity_probe, {
    url: "https://tunnel.example",
    interval_ms: 30_000,
    timeout_ms: 5_000,
    failure_threshold: 5,
    action: "exit",
  });
  t.false(JSON.stringify(shown).includes("s3cret"));
});

test("parseHostPort accepts names, IPv4, bracketed IPv6 and port 0", (t) => {
  t.deepEqual(parseHostPort("localhost:9001"), { host: "localhost", port: 9001 });
  t.deepEqual(parseHostPort("[::1]:0"), { host: "::1", port: 0 });
  t.is(parseHostPort("::1:80"), null);
  t.is(parseHostPort(":80"), null);
  t.is(parseHostPort("h:65536"), null);
});
