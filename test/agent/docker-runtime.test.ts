// DockerRuntime against the real engine: a busybox workload is built or found locally, started, reached over
// HTTP, inspected, logged, measured and removed without leftovers; each refusal carries its EE-WORKLOAD-* code.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import test, { type ExecutionContext } from "ava";
import type Docker from "dockerode";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { limitsFor } from "../../agent/runtime/limits.ts";
import { LABELS, type LogLine, type WorkloadSpec } from "../../agent/runtime/runtime.ts";
import { composeHash, parseCompose } from "../../compose/compose.ts";
import { WorkloadError } from "../../spec/errors.ts";
import { cleanupDeployment, requireDocker, testDeploymentId } from "../helpers/docker.ts";
import { BUSYBOX_IMAGE, busyboxContext, busyboxImage } from "../helpers/images.ts";
import { closedPort } from "../helpers/temp.ts";

interface Setup {
  docker: Docker;
  runtime: DockerRuntime;
  spec: (compose: string, context?: Uint8Array) => WorkloadSpec;
}

/** The engine, a runtime and a spec factory for one fresh deployment id that is removed when the test ends. */
async function setup(t: ExecutionContext): Promise<Setup | null> {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const deploymentId = testDeploymentId();
  cleanupDeployment(t, docker, deploymentId);
  const runtime = new DockerRuntime({ docker });
  const spec = (compose: string, context?: Uint8Array): WorkloadSpec => {
    const project = parseCompose(compose);
    return { deploymentId, app: "test-app", project, composeHash: composeHash(project, context), context };
  };
  return { docker, runtime, spec };
}

const labelled = (id: string) => ({ label: [`${LABELS.deployment}=${id}`] });

async function leftovers(docker: Docker, id: string) {
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters: labelled(id) }),
    docker.listNetworks({ filters: labelled(id) }),
    docker.listVolumes({ filters: labelled(id) }),
  ]);
  return containers.length + networks.length + (volumes.Volumes ?? []).length;
}

async function collect(lines: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("a busybox httpd workload starts, answers on its published port, is labelled, and remove leaves nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const port = await closedPort();
  const spec = s.spec(`
services:
  web:
    image: ${BUSYBOX_IMAGE}
    command: ["sh", "-c", "mkdir -p /www && echo hello-ee > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1:${port}:8080"]
    volumes: ["data:/data"]
    healthcheck: { test: ["CMD", "true"], interval: 1s, timeout: 2s }
volumes:
  data: {}
`);
  const id = spec.deploymentId;
  const images = await s.runtime.prepare(spec);
  // A local-only image has no registry digest: its image id stands for its bytes.
  t.like(images, [{ service: "web", ref: BUSYBOX_IMAGE }]);
  t.regex(images[0]!.digest, /^sha256:[0-9a-f]{64}$/);

  const started = await s.runtime.start(spec);
  t.is(started.length, 1);
  t.like(started[0], {
    service: "web",
    state: "running",
    exitCode: null,
    image: BUSYBOX_IMAGE,
    imageId: images[0]!.digest,
  });
  t.deepEqual(started[0]!.ports, [
    { host_ip: "127.0.0.1", host_port: port, container_port: 8080, protocol: "tcp" },
  ]);

  const body = await eventually(
    () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()),
    (text) => text.includes("hello-ee"),
  );
  t.is(body.trim(), "hello-ee");

  const container = await s.docker.getContainer(started[0]!.id).inspect();
  t.like(container.Config.Labels, {
    [LABELS.deployment]: id,
    [LABELS.app]: "test-app",
    [LABELS.service]: "web",
    [LABELS.composeHash]: spec.composeHash,
  });
  t.is(container.Name, `/ee-${id}-web`);
  t.false(container.Config.Tty);
  t.deepEqual(container.NetworkSettings.Networks[`ee-${id}`]?.Aliases?.includes("web"), true);
  t.deepEqual(container.Config.Healthcheck?.Test, ["CMD", "true"]);
  t.is(container.Config.Healthcheck?.Interval, 1_000_000_000);
  const network = await s.docker.getNetwork(`ee-${id}`).inspect();
  t.is(network.Labels?.[LABELS.deployment], id);
  const volume = await s.docker.getVolume(`ee-${id}-data`).inspect();
  t.is(volume.Labels?.[LABELS.deployment], id);
  t.true(container.Mounts.some((m) => m.Name === `ee-${id}-data` && m.Destination === "/data"));

  const healthy = await eventually(
    () => s.runtime.inspect(id),
    (cs) => cs[0]?.health === "healthy",
  );
  t.truthy(healthy[0]!.startedAt);
  const found = (await s.runtime.deployments()).find((d) => d.deploymentId === id);
  t.like(found, { app: "test-app", composeHash: spec.composeHash });
  t.is((await s.runtime.inspect(found!.deploymentId)).length, 1);

  await s.runtime.remove(id);
  t.is(await leftovers(s.docker, id), 0);
  t.deepEqual(await s.runtime.inspect(id), []);
  await s.runtime.remove(id); // idempotent
  t.false((await s.runtime.deployments()).some((d) => d.deploymentId === id));
});

test("services start in depends_on order; logs are demultiplexed, tailed, followed until aborted; stats per container", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const spec = s.spec(`
services:
  talk:
    image: ${BUSYBOX_IMAGE}
    command: sh -c 'echo out; echo err >&2; sleep 300'
    depends_on: { ticker: { condition: service_started } }
  ticker:
    image: ${BUSYBOX_IMAGE}
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
`);
  const id = spec.deploymentId;
  t.deepEqual(
    spec.project.services.map((x) => x.name),
    ["ticker", "talk"],
  );
  await s.runtime.prepare(spec);
  const started = await s.runtime.start(spec);
  t.deepEqual(
    started.map((c) => c.service),
    ["ticker", "talk"],
  );
  t.true(started[0]!.startedAt! <= started[1]!.startedAt!);

  const lines = await eventually(
    () => collect(s.runtime.logs(id, {})),
    (ls) => ls.some((l) => l.text === "err") && ls.filter((l) => l.service === "ticker").length >= 3,
  );
  t.like(
    lines.find((l) => l.text === "out"),
    { service: "talk", stream: "stdout" },
  );
  t.like(
    lines.find((l) => l.text === "err"),
    { service: "talk", stream: "stderr" },
  );
  t.true(lines.every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(l.ts)));
  t.deepEqual(
    lines.map((l) => l.ts),
    lines.map((l) => l.ts).sort(),
  );

  const tail = await collect(s.runtime.logs(id, { tail: 1 }));
  t.is(tail.filter((l) => l.service === "talk").length, 1);
  t.is(tail.filter((l) => l.service === "ticker").length, 1);
  t.deepEqual(await collect(s.runtime.logs(id, { since: Date.now() + 60_000 })), []);

  const abort = new AbortController();
  const followed: LogLine[] = [];
  const firstTick = lines.filter((l) => l.service === "ticker").at(-1)!;
  for await (const line of s.runtime.logs(id, { follow: true, signal: abort.signal })) {
    followed.push(line);
    // A tick newer than any the non-follow read saw proves lines arrive live.
    if (line.service === "ticker" && line.ts > firstTick.ts) abort.abort();
  }
  t.true(followed.some((l) => l.text === "err" && l.stream === "stderr"));
  t.true(abort.signal.aborted);
  // An idle follow (nothing new can match) ends when its signal aborts.
  const idle = collect(
    s.runtime.logs(id, { follow: true, since: Date.now() + 60_000, signal: AbortSignal.timeout(300) }),
  );
  t.deepEqual(await idle, []);

  const stats = await s.runtime.stats(id);
  t.deepEqual(stats.map((x) => x.service).sort(), ["talk", "ticker"]);
  for (const x of stats) {
    t.true(x.memory_bytes > 0 && x.memory_limit_bytes >= x.memory_bytes);
    t.true(x.cpu_percent >= 0);
    t.true(x.network_rx_bytes >= 0 && x.network_tx_bytes >= 0);
  }
});

test("a service built from a sub-folder of the context runs the built image", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const context = await busyboxContext(
    'RUN ["/bin/sh", "-c", "echo built-from-context > /built.txt"]\nCMD ["sh", "-c", "cat /built.txt; sleep 300"]',
    "app/",
  );
  const spec = s.spec("services:\n  app:\n    build: { context: ./app }\n", context);
  const images = await s.runtime.prepare(spec);
  const tag = `ee-local/${spec.deploymentId}-app:latest`;
  const image = await s.docker.getImage(tag).inspect();
  t.deepEqual(images, [{ service: "app", ref: tag, digest: image.Id }]);
  t.is(image.Config.Labels?.[LABELS.deployment], spec.deploymentId);
  await s.runtime.start(spec);
  const lines = await eventually(
    () => collect(s.runtime.logs(spec.deploymentId, {})),
    (ls) => ls.length > 0,
  );
  t.is(lines[0]!.text, "built-from-context");
  await s.runtime.remove(spec.deploymentId);
  // Built images go with their deployment.
  await t.throwsAsync(s.docker.getImage(tag).inspect());
});

/** A tar archive with entries tar-stream writes as given: `..` and absolute names, symlinks, hard links. */
function hostileTar(entries: { name: string; data?: Buffer | string; type?: string; linkname?: string }[]) {
  const tar = createRequire(import.meta.url)("tar-stream") as {
    pack(): NodeJS.ReadableStream & {
      entry(h: Record<string, unknown>, data?: Buffer | string): void;
      finalize(): void;
    };
  };
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve) => pack.on("end", () => resolve(Buffer.concat(chunks))));
  for (const e of entries) {
    const { data, ...header } = e;
    pack.entry({ mode: 0o755, mtime: new Date(0), ...header }, data ?? "");
  }
  pack.finalize();
  return done;
}

test("a build context cannot write outside itself: .. and absolute names, symlinks and hard links stay in the build", async (t) => {
  const s = await setup(t);
  if (!s) return;
  // The engine shares this host's /tmp (same mount namespace), so an escape would show here.
  const mark = `ee-tar-escape-${process.pid}-${Date.now()}`;
  const outside = ["a", "b", "c", "d", "e"].map((x) => `/tmp/${mark}-${x}`);
  t.teardown(() => {
    for (const f of outside) rmSync(f, { force: true });
  });
  const dockerfile = [
    "FROM scratch",
    "COPY busybox /bin/busybox",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    "COPY . /ctx",
    'CMD ["sleep", "300"]',
  ].join("\n");
  const up = "../../../../../../..";
  const base = (dir: string) => [
    { name: `${dir}Dockerfile`, data: `${dockerfile}\n` },
    { name: `${dir}busybox`, data: readFileSync("/bin/busybox") },
  ];
  const escapes = (dir: string) => [
    ...base(dir),
    { name: `${dir}${up}${outside[0]}`, data: "dot-dot" },
    { name: outside[1]!, data: "absolute" },
    { name: `${dir}tmp-link`, type: "symlink", linkname: "/tmp" },
    { name: `${dir}tmp-link/${mark}-c`, data: "through a symlink" },
    { name: `${dir}up-link`, type: "symlink", linkname: `${up}/tmp` },
    { name: `${dir}up-link/${mark}-d`, data: "through a relative symlink" },
  ];
  const cases = [
    ["build: .", await hostileTar(escapes("")), /^built$/],
    ["build: { context: ./app }", await hostileTar(escapes("app/")), /^built$/],
    // A hard link is resolved inside the context too: to a file that is not there, so the engine refuses it.
    [
      "build: .",
      await hostileTar([...base(""), { name: "hard", type: "link", linkname: `${up}${outside[4]}` }]),
      /^EE-WORKLOAD-ENGINE: .*Error processing tar file/,
    ],
  ] as const;
  for (const [build, context, outcome] of cases) {
    const built = await s.runtime.prepare(s.spec(`services:\n  app:\n    ${build}\n`, context)).then(
      () => "built",
      (err: WorkloadError) => `${err.code}: ${err.message}`,
    );
    t.regex(built, outcome, build);
    for (const f of outside) t.false(existsSync(f), `${f} was written outside the context`);
  }
});

test("a failing Dockerfile step is EE-WORKLOAD-BUILD-FAILED with the builder's message", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const context = await busyboxContext('RUN ["/bin/sh", "-c", "exit 3"]');
  const err = await t.throwsAsync(s.runtime.prepare(s.spec("services:\n  app:\n    build: .\n", context)), {
    instanceOf: WorkloadError,
  });
  t.is(err?.code, "EE-WORKLOAD-BUILD-FAILED");
  t.log(err!.message);
  t.regex(err!.message, /service app: .*(non-zero code|exit code): 3/);
  t.true(err!.message.length <= 500);
  const none = await t.throwsAsync(s.runtime.prepare(s.spec("services:\n  app:\n    build: .\n")));
  t.like(none, { code: "EE-WORKLOAD-BUILD-FAILED" });
  t.regex(none!.message, /needs a build context/);
});

test("preparing an image that is not on the host (not pulled) is EE-WORKLOAD-IMAGE-MISSING, naming it", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const err = await t.throwsAsync(
    s.runtime.prepare(s.spec("services:\n  web:\n    image: ee-test/not-here:404\n")),
    { instanceOf: WorkloadError },
  );
  t.is(err?.code, "EE-WORKLOAD-IMAGE-MISSING");
  t.regex(err!.message, /ee-test\/not-here:404 is not on this host and was not pulled/);
});

test("a host port held by another process is EE-WORKLOAD-PORT-CONFLICT, naming the port", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const { port } = holder.address() as { port: number };
  const spec = s.spec(`
services:
  web:
    image: ${BUSYBOX_IMAGE}
    command: ["sleep", "300"]
    ports: ["${port}:80"]
`);
  const err = await t.throwsAsync(s.runtime.start(spec), { instanceOf: WorkloadError });
  t.is(err?.code, "EE-WORKLOAD-PORT-CONFLICT");
  t.log(err!.message);
  t.true(err!.message.includes(String(port)), err!.message);
});

test("no containers: logs are EE-WORKLOAD-NONE, inspect is empty and remove is a no-op", async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const runtime = new DockerRuntime({ docker });
  const id = testDeploymentId();
  await t.throwsAsync(collect(runtime.logs(id, {})), { instanceOf: WorkloadError, message: /no containers/ });
  const err = await t.throwsAsync(collect(runtime.logs(id, {})));
  t.is((err as WorkloadError).code, "EE-WORKLOAD-NONE");
  t.deepEqual(await runtime.inspect(id), []);
  await t.notThrowsAsync(runtime.remove(id));
  await t.notThrowsAsync(runtime.ping());
});

test("an engine that does not answer is EE-WORKLOAD-ENGINE", async (t) => {
  const runtime = new DockerRuntime({ socketPath: "/nonexistent/docker.sock" });
  for (const call of [() => runtime.ping(), () => runtime.inspect("t-x"), () => runtime.remove("t-x")]) {
    const err = await t.throwsAsync(call(), { instanceOf: WorkloadError });
    t.is(err?.code, "EE-WORKLOAD-ENGINE");
  }
});

test("every container is contained: node_size limits, no-new-privileges, read_only and user from the compose", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const limits = limitsFor("tiny");
  const runtime = new DockerRuntime({ docker: s.docker, limits });
  const spec = s.spec(`
services:
  app:
    image: ${BUSYBOX_IMAGE}
    user: "65534:65534"
    read_only: true
    command: ["sh", "-c", "touch /probe 2>/dev/null && echo root-writable || echo root-read-only; id -u; exec sleep 300"]
`);
  await runtime.prepare(spec);
  const [app] = await runtime.start(spec);
  const info = await s.docker.getContainer(app!.id).inspect();
  t.like(info.HostConfig, {
    Memory: 512 * 1024 * 1024,
    MemorySwap: 512 * 1024 * 1024,
    NanoCpus: 1e9,
    PidsLimit: 256,
    SecurityOpt: ["no-new-privileges:true"],
    ReadonlyRootfs: true,
  });
  t.is(info.Config.User, "65534:65534");
  const lines = await eventually(
    () => collect(runtime.logs(spec.deploymentId, {})),
    (l) => l.length >= 2,
  );
  t.deepEqual(
    lines.map((l) => l.text),
    ["root-read-only", "65534"],
  );
});

test("without read_only the root filesystem is writable, and the default limits are the standard preset", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const spec = s.spec(`services:\n  app:\n    image: ${BUSYBOX_IMAGE}\n    command: ["sleep", "300"]\n`);
  await s.runtime.prepare(spec);
  const [app] = await s.runtime.start(spec);
  const info = await s.docker.getContainer(app!.id).inspect();
  const standard = limitsFor("standard");
  t.like(info.HostConfig, {
    Memory: standard.Memory,
    NanoCpus: standard.NanoCpus,
    PidsLimit: standard.PidsLimit,
    SecurityOpt: ["no-new-privileges:true"],
    ReadonlyRootfs: false,
  });
});

test("a tag already on the engine is not pulled again, resolves to its image, and stays after remove", async (t) => {
  const s = await setup(t);
  if (!s) return;
  // Nothing listens at this registry: a pull would fail with EE-WORKLOAD-PULL-FAILED.
  const repo = `127.0.0.1:${await closedPort()}/present`;
  await s.docker.getImage(BUSYBOX_IMAGE).tag({ repo, tag: "1" });
  t.teardown(() =>
    s.docker
      .getImage(`${repo}:1`)
      .remove()
      .catch(() => {}),
  );
  const spec = s.spec(`services:\n  web:\n    image: ${repo}:1\n`);
  const progress: unknown[] = [];
  await s.runtime.pull(spec, { onProgress: (p) => progress.push(p) });
  t.deepEqual(progress, []);
  const [image] = await s.runtime.prepare(spec);
  t.is(
    image!.digest,
    (await s.docker.getImage(BUSYBOX_IMAGE).inspect()).Id,
    "no registry digest: its image id",
  );
  await s.runtime.remove(spec.deploymentId);
  await t.notThrowsAsync(s.docker.getImage(`${repo}:1`).inspect(), "an image it did not pull is not removed");
});
