// The Compose subset: every supported form parses to the expected model, every refusal carries its code and the
// key path, equal apps hash equal however they are spelled, and hostile input is refused quickly.
import test from "ava";
import {
  COMPOSE_LIMITS,
  type ComposeService,
  canonicalCompose,
  composeHash,
  parseCompose,
} from "../../compose/compose.ts";
import { splitShellWords } from "../../compose/service.ts";
import { type CodeOf, ComposeError } from "../../spec/errors.ts";
import { MAX_COMPOSE_BYTES } from "../../spec/protocol.ts";

const one = (yaml: string, opts?: Parameters<typeof parseCompose>[1]): ComposeService =>
  parseCompose(yaml, opts).services[0]!;

function refuses(
  code: CodeOf<"EE-COMPOSE-">,
  yaml: string,
  message: RegExp,
  opts?: Parameters<typeof parseCompose>[1],
) {
  test(`${code}: ${JSON.stringify(yaml)}`, (t) => {
    const err = t.throws(() => parseCompose(yaml, opts), { instanceOf: ComposeError });
    t.is(err?.code, code);
    t.regex(err!.message, message);
  });
}

test("a minimal service gets the defaults", (t) => {
  t.deepEqual(parseCompose("services:\n  web:\n    image: nginx:1\n"), {
    services: [
      {
        name: "web",
        image: "nginx:1",
        environment: {},
        ports: [],
        volumes: [],
        restart: "no",
        depends_on: [],
      },
    ],
    volumes: [],
  });
});

test("a full service in short syntax parses to the model", (t) => {
  const s = one(`
version: "3.9"
name: shop
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: shop/web:2
    command: sh -c 'echo "hi there" && exec httpd'
    entrypoint: ["/bin/tini", "--"]
    environment: { A: x, B: 2, C: true, D: null }
    ports: ["8080:80", "0.0.0.0:8443:443", "5353:53/udp", "[::1]:9000:9000"]
    volumes: ["data:/var/data", "cache:/cache:ro"]
    healthcheck: { test: curl -f localhost, interval: 1m30s, timeout: 500ms, retries: 5, start_period: 1h }
    working_dir: /srv
    user: "1000:1000"
    x-note: ignored
volumes:
  data:
  cache: {}
`);
  t.deepEqual(s, {
    name: "web",
    image: "shop/web:2",
    command: ["sh", "-c", 'echo "hi there" && exec httpd'],
    entrypoint: ["/bin/tini", "--"],
    environment: { A: "x", B: "2", C: "true", D: "" },
    ports: [
      { host_ip: "127.0.0.1", host_port: 8080, container_port: 80, protocol: "tcp" },
      { host_ip: "0.0.0.0", host_port: 8443, container_port: 443, protocol: "tcp" },
      { host_ip: "127.0.0.1", host_port: 5353, container_port: 53, protocol: "udp" },
      { host_ip: "::1", host_port: 9000, container_port: 9000, protocol: "tcp" },
    ],
    volumes: [
      { type: "volume", source: "data", target: "/var/data", read_only: false },
      { type: "volume", source: "cache", target: "/cache", read_only: true },
    ],
    healthcheck: {
      test: ["CMD-SHELL", "curl -f localhost"],
      interval_ms: 90_000,
      timeout_ms: 500,
      retries: 5,
      start_period_ms: 3_600_000,
    },
    restart: "unless-stopped",
    depends_on: [],
    working_dir: "/srv",
    user: "1000:1000",
  });
});

test("long syntax: ports, volumes, build, list environment, depends_on conditions, healthcheck defaults", (t) => {
  const project = parseCompose(
    `
services:
  api:
    build: { context: ./svc/api/, dockerfile: docker/Dockerfile.prod }
    environment: ["A=1", "B=x=y", "C"]
    ports: [{ target: 80, published: "8080" }, { target: 53, published: 5353, host_ip: 10.0.0.1, protocol: udp }]
    volumes:
      - { type: volume, source: data, target: /data, read_only: true }
      - { type: bind, source: /srv/ee/./shared//x, target: /x }
    healthcheck: { test: ["CMD", "wget", "-q", "localhost"] }
    depends_on: { db: { condition: service_healthy } }
  db:
    image: db:1
    build: .
    healthcheck: { disable: true }
volumes: { data: }
`,
    { bindAllowlist: ["/srv/ee/"] },
  );
  t.deepEqual(
    project.services.map((s) => s.name),
    ["db", "api"],
  );
  const [db, api] = project.services;
  t.deepEqual(db!.build, { context: ".", dockerfile: "Dockerfile" });
  t.is(db!.image, "db:1");
  t.deepEqual(db!.healthcheck?.test, ["NONE"]);
  t.deepEqual(api!.build, { context: "svc/api", dockerfile: "docker/Dockerfile.prod" });
  t.deepEqual(api!.environment, { A: "1", B: "x=y", C: "" });
  t.deepEqual(api!.ports, [
    { host_ip: "127.0.0.1", host_port: 8080, container_port: 80, protocol: "tcp" },
    { host_ip: "10.0.0.1", host_port: 5353, container_port: 53, protocol: "udp" },
  ]);
  t.deepEqual(api!.volumes, [
    { type: "volume", source: "data", target: "/data", read_only: true },
    { type: "bind", source: "/srv/ee/shared/x", target: "/x", read_only: false },
  ]);
  t.deepEqual(api!.healthcheck, {
    test: ["CMD", "wget", "-q", "localhost"],
    interval_ms: 30_000,
    timeout_ms: 30_000,
    retries: 3,
    start_period_ms: 0,
  });
  t.deepEqual(api!.depends_on, ["db"]);
  t.deepEqual(project.volumes, ["data"]);
});

test("services come after their dependencies, otherwise in name order", (t) => {
  const project = parseCompose(`
services:
  web: { image: w, depends_on: [api, cache] }
  zeta: { image: z }
  api: { image: a, depends_on: [db] }
  db: { image: d }
  cache: { image: c }
`);
  t.deepEqual(
    project.services.map((s) => s.name),
    ["cache", "db", "api", "web", "zeta"],
  );
});

test("shell words honour quotes and escapes", (t) => {
  t.deepEqual(splitShellWords(`a 'b c' "d \\"e\\" $f" g\\ h '' "x"'y'`), [
    "a",
    "b c",
    'd "e" $f',
    "g h",
    "",
    "xy",
  ]);
  t.deepEqual(splitShellWords("  "), []);
  t.throws(() => splitShellWords("echo 'oops"), { instanceOf: ComposeError, message: /unterminated/ });
});

test("two spellings of the same app have one canonical form and hash; the context changes the hash", (t) => {
  const a = parseCompose(`
services:
  web:
    image: app:1
    command: ["httpd", "-f"]
    environment: { B: "2", A: 1 }
    ports: ["8080:80"]
    restart: "no"
`);
  const b = parseCompose(`
# the same app in other words
services: { web: { restart: "no", ports: [{ published: 8080, target: 80, host_ip: 127.0.0.1, protocol: tcp }],
  environment: [A=1, B=2], command: httpd -f, image: "app:1" } }
version: "3"
`);
  t.is(canonicalCompose(a), canonicalCompose(b));
  t.is(composeHash(a), composeHash(b));
  t.regex(composeHash(a), /^[0-9a-f]{64}$/);
  const ctx = new Uint8Array([1, 2, 3]);
  t.not(composeHash(a, ctx), composeHash(a));
  t.not(composeHash(a, ctx), composeHash(a, new Uint8Array([1, 2, 4])));
  t.is(composeHash(a, ctx), composeHash(b, new Uint8Array([1, 2, 3])));
  const c = parseCompose("services:\n  web:\n    image: app:2\n");
  t.not(composeHash(c), composeHash(a));
});

test("an alias bomb is refused quickly", (t) => {
  const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 12; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(", ")}]`);
  }
  const started = Date.now();
  const err = t.throws(() => parseCompose(`${levels.join("\n")}\nservices: { web: { image: x } }\n`), {
    instanceOf: ComposeError,
  });
  t.is(err?.code, "EE-COMPOSE-INVALID");
  t.regex(err!.message, /alias count/);
  t.true(Date.now() - started < 1000);
});

test("a file over MAX_COMPOSE_BYTES is refused before parsing", (t) => {
  const started = Date.now();
  const text = `services:\n  web:\n    image: x\n#${"x".repeat(MAX_COMPOSE_BYTES)}\n`;
  const err = t.throws(() => parseCompose(text), { instanceOf: ComposeError });
  t.is(err?.code, "EE-COMPOSE-INVALID");
  t.regex(err!.message, /at most 262144/);
  t.true(Date.now() - started < 500);
});

test("read_only and user are part of the subset", (t) => {
  const s = one('services:\n  web:\n    image: x\n    read_only: true\n    user: "1000:1000"\n');
  t.is(s.read_only, true);
  t.is(s.user, "1000:1000");
  t.false(
    "read_only" in one("services:\n  web:\n    image: x\n"),
    "absent stays absent (same hash as before)",
  );
});

test("a 10,000-service file is refused by the scan before any YAML is parsed", (t) => {
  const text = `services:\n${Array.from({ length: 10_000 }, (_, i) => `  s${i}:\n    image: x\n`).join("")}`;
  t.true(Buffer.byteLength(text) <= MAX_COMPOSE_BYTES, "under the byte cap: the scan is what refuses it");
  const err = t.throws(() => parseCompose(text), { instanceOf: ComposeError });
  t.is(err?.code, "EE-COMPOSE-TOO-LARGE");
  t.regex(err!.message, /lines and separators has 20001; at most 4096/);
  // The flow style has one line: its commas count.
  const flow = `services: {${Array.from({ length: 10_000 }, (_, i) => `s${i}: {image: x}`).join(", ")}}`;
  t.is(t.throws(() => parseCompose(flow), { instanceOf: ComposeError })?.code, "EE-COMPOSE-TOO-LARGE");
  // Comments and blank lines are free.
  const commented = `services:\n  web:\n    image: x\n${"# note\n\n".repeat(5000)}`;
  t.is(parseCompose(commented).services.length, 1);
});

test("services, ports and environment entries are counted right after the parse", (t) => {
  const code = (yaml: string) => t.throws(() => parseCompose(yaml), { instanceOf: ComposeError });
  const services = code(
    `services:\n${Array.from({ length: COMPOSE_LIMITS.services + 1 }, (_, i) => `  s${i}: { image: x }\n`).join("")}`,
  );
  t.is(services?.code, "EE-COMPOSE-TOO-LARGE");
  t.regex(services!.message, /^services has 33; at most 32/);
  const ports = Array.from({ length: COMPOSE_LIMITS.ports + 1 }, (_, i) => `"${10_000 + i}:80"`).join(", ");
  const p = code(`services:\n  web:\n    image: x\n    ports: [${ports}]\n`);
  t.is(p?.code, "EE-COMPOSE-TOO-LARGE");
  t.regex(p!.message, /^services\.web\.ports has 65/);
  const env = Array.from({ length: COMPOSE_LIMITS.environment + 1 }, (_, i) => `      V${i}: x\n`).join("");
  const e = code(`services:\n  web:\n    image: x\n    environment:\n${env}`);
  t.is(e?.code, "EE-COMPOSE-TOO-LARGE");
  t.regex(e!.message, /^services\.web\.environment has 257/);
});

// Published ports under the agent's policies; the CP's check (`any`) takes them all.
refuses(
  "EE-COMPOSE-PORTS",
  "services:\n  web: { image: x, ports: ['8080:80'] }\n",
  /publishes no host ports/,
  {
    publishedPorts: "none",
  },
);
refuses(
  "EE-COMPOSE-PORTS",
  "services:\n  web: { image: x, ports: ['0.0.0.0:8080:80'] }\n",
  /host_ip 0\.0\.0\.0 is not allowed; this agent publishes ports on 127\.0\.0\.1 only/,
  { publishedPorts: "loopback" },
);
test("published ports on 127.0.0.1 pass the loopback policy", (t) => {
  t.is(
    one("services:\n  web: { image: x, ports: ['8080:80'] }\n", { publishedPorts: "loopback" }).ports[0]
      ?.host_ip,
    "127.0.0.1",
  );
  t.is(one("services:\n  web: { image: x }\n", { publishedPorts: "none" }).ports.length, 0);
});

// Not YAML, wrong shape, bad values.
refuses("EE-COMPOSE-INVALID", "services: [", /not valid YAML/);
refuses("EE-COMPOSE-INVALID", "services:\n  a: { image: x }\n  a: { image: y }\n", /not valid YAML/);
refuses("EE-COMPOSE-INVALID", "- a\n", /\(root\)/);
refuses("EE-COMPOSE-INVALID", "version: '3'\n", /^services: must be a mapping/);
refuses("EE-COMPOSE-INVALID", "services: {}\n", /^services: at least one service/);
refuses("EE-COMPOSE-INVALID", "services:\n  Web: { image: x }\n", /^services\.Web: service names/);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { command: x }\n",
  /^services\.web: needs an image or a build/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: 3 }\n",
  /^services\.web\.image: must be a non-empty string/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, ports: ['8080:80', '9090:0'] }\n",
  /^services\.web\.ports\[1\]: must be a port number/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, ports: ['99999:80'] }\n",
  /^services\.web\.ports\[0\]: must be a port number/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, ports: ['nope:8080:80'] }\n",
  /^services\.web\.ports\[0\]: nope is not an IP address/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  a: { image: x, ports: ['8080:80'] }\n  b: { image: x, ports: ['0.0.0.0:8080:81'] }\n",
  /^services\.b\.ports\[0\]: host port 8080\/tcp is already published by services\.a\.ports\[0\]/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, volumes: ['data:/data'] }\n",
  /^services\.web\.volumes\[0\]: volume data is not declared/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, volumes: ['data:relative'] }\nvolumes: { data: }\n",
  /^services\.web\.volumes\[0\]: must be an absolute path/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, healthcheck: { test: x, interval: 10 } }\n",
  /^services\.web\.healthcheck\.interval: must be a duration/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, healthcheck: { test: [CURL, x] } }\n",
  /^services\.web\.healthcheck\.test: must be/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, environment: { A: [1] } }\n",
  /^services\.web\.environment\.A: must be a string/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, command: [echo, 1] }\n",
  /^services\.web\.command\[1\]: must be a string/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { build: ../outside }\n",
  /^services\.web\.build: must not leave the build context/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { build: { context: /abs } }\n",
  /^services\.web\.build\.context: must be relative/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  web: { image: x, depends_on: [db] }\n",
  /^services\.web\.depends_on: unknown service db/,
);
refuses(
  "EE-COMPOSE-INVALID",
  "services:\n  a: { image: x, depends_on: [b] }\n  b: { image: x, depends_on: [a] }\n  c: { image: x }\n",
  /^services: depends_on cycle among a, b/,
);

// Outside the subset.
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x }\nnetworks: {}\n",
  /^networks is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x }\nsecrets: {}\n",
  /^secrets is not supported/,
);
// Each isolation key alone (one refusal per file would hide the others behind the first).
for (const key of [
  "privileged: true",
  "cap_add: [SYS_ADMIN]",
  "network_mode: host",
  "pid: host",
  "ipc: host",
  "devices: ['/dev/sda:/dev/sda']",
  "security_opt: ['seccomp=unconfined']",
  "sysctls: { net.ipv4.ip_forward: 1 }",
  "userns_mode: host",
  "cgroup_parent: /",
  "cgroup: host",
  "uts: host",
]) {
  const name = key.split(":")[0]!;
  refuses(
    "EE-COMPOSE-UNSUPPORTED",
    `services:\n  web:\n    image: x\n    ${key}\n`,
    new RegExp(`^services\\.web\\.${name} is not supported: it breaks the workload's isolation`),
  );
}
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, devices: ['/dev/sda'], security_opt: [x], sysctls: {} }\n",
  /^services\.web\.devices is not supported/,
);
// Anchors, aliases and merge keys are expanded before the keys are checked: what they bring in is refused.
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "x-base: &base { privileged: true }\nservices:\n  web:\n    <<: *base\n    image: x\n",
  /^services\.web\.privileged is not supported: it breaks the workload's isolation/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "x-a: &a { image: x }\nx-b: &b { pid: host }\nservices:\n  web:\n    <<: [*a, *b]\n",
  /^services\.web\.pid is not supported: it breaks the workload's isolation/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "x-caps: &caps [SYS_ADMIN]\nservices:\n  web: { image: x, cap_add: *caps }\n",
  /^services\.web\.cap_add is not supported: it breaks the workload's isolation/,
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "x-v: &v ['/etc:/host-etc']\nservices:\n  web: { image: x, volumes: *v }\n",
  /^services\.web\.volumes\[0\]: host path \/etc is not under an allowed directory/,
  { bindAllowlist: ["/srv/ee"] },
);
// Keys are matched exactly against what is allowed: case and NUL variants are not some other spelling of an
// allowed key, they are refused (Docker would not read them as the isolation key, but nothing unknown passes).
for (const key of [
  "Privileged",
  "PRIVILEGED",
  "Network_Mode",
  "privileged\\0",
  "network_mode\\0",
  "cap_add\\u0000",
]) {
  refuses(
    "EE-COMPOSE-UNSUPPORTED",
    `services:\n  web:\n    image: x\n    "${key}": true\n`,
    /^services\.web\.\S+\s? is not supported$/,
  );
}
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x }\nNetworks: {}\n",
  /^Networks is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, tmpfs: /t }\n",
  /^services\.web\.tmpfs is not supported$/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, ports: ['80'] }\n",
  /^services\.web\.ports\[0\] is not supported: a container port without a host port/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, ports: [80] }\n",
  /^services\.web\.ports\[0\] is not supported: a container port without a host port/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, ports: [{ target: 80 }] }\n",
  /^services\.web\.ports\[0\] is not supported: a container port without a host port/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, ports: ['8000-8001:80'] }\n",
  /^services\.web\.ports\[0\] is not supported: port ranges/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, ports: ['80:80/sctp'] }\n",
  /^services\.web\.ports\[0\] is not supported: protocol/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, restart: on-failure:3 }\n",
  /^services\.web\.restart is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { build: { context: ., args: { A: 1 } } }\n",
  /^services\.web\.build\.args is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x }\nvolumes: { data: { driver: nfs } }\n",
  /^volumes\.data\.driver is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, volumes: [{ type: tmpfs, source: x, target: /t }] }\n",
  /^services\.web\.volumes\[0\]\.type is not supported/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  web: { image: x, volumes: ['/only-target'] }\n",
  /^services\.web\.volumes\[0\] is not supported: anonymous volumes/,
);
refuses(
  "EE-COMPOSE-UNSUPPORTED",
  "services:\n  db: { image: x }\n  web: { image: x, depends_on: { db: { condition: service_ready } } }\n",
  /^services\.web\.depends_on\.db\.condition is not supported/,
);

// Host paths.
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: ['/etc:/host-etc:ro'] }\n",
  /^services\.web\.volumes\[0\]: host path \/etc is not under an allowed directory/,
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: ['/srv/ee/../../etc:/x'] }\n",
  /^services\.web\.volumes\[0\]: host path .* must not contain \.\./,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: ['/srv/eevil:/x'] }\n",
  /not under an allowed directory/,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: ['./data:/x'] }\n",
  /^services\.web\.volumes\[0\]: host path \.\/data must be absolute/,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  'services:\n  web: { image: x, volumes: ["/srv/ee/a\\0/../../../etc:/x"] }\n',
  /must not contain \.\./,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  'services:\n  web: { image: x, volumes: ["/srv/ee\\0/x:/x"] }\n',
  /not under an allowed directory/,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: [{ type: bind, source: /srv/ee/../etc, target: /x }] }\n",
  /must not contain \.\./,
  { bindAllowlist: ["/srv/ee"] },
);
refuses(
  "EE-COMPOSE-BIND-MOUNT",
  "services:\n  web: { image: x, volumes: [{ type: bind, source: /var/run/docker.sock, target: /s }] }\n",
  /host path \/var\/run\/docker\.sock is not under an allowed directory/,
);
