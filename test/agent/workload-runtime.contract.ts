// The WorkloadRuntime port's contract (agent/runtime/runtime.ts): what the workload manager and the deploy gate
// rely on, run against every implementation (DockerRuntime in workload-runtime-docker.test.ts, the in-memory
// FakeRuntime in workload-runtime-fake.test.ts), so a unit test on the fake holds for the engine too. `open`
// gives the implementation under test, or undefined when its engine is not available here (the test is then
// skipped visibly, see test/helpers/skip.ts).
import type { ExecutionContext, TestFn } from "ava";
import type { LogLine, WorkloadRuntime, WorkloadSpec } from "../../agent/runtime/runtime.ts";
import { composeHash, parseCompose } from "../../compose/compose.ts";
import { WorkloadError } from "../../spec/errors.ts";
import { waitFor } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

export interface RuntimeUnderTest {
  /** A runtime on the engine under test, as agent `owner` when given (runtimes share the engine). */
  runtime(owner?: string): WorkloadRuntime;
  /** A runtime whose engine does not answer. */
  unreachable(): WorkloadRuntime;
  /** An image present on the engine that has `sh`, `echo` and `sleep`. */
  image: string;
  /** A fresh deployment id, removed from the engine when the test ends. */
  newId(): string;
}

const DEADLINE_MS = 20_000;

function specOf(id: string, compose: string, app = "contract-app"): WorkloadSpec {
  const project = parseCompose(compose);
  return { deploymentId: id, app, project, composeHash: composeHash(project) };
}

async function collect(lines: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

export function workloadRuntimeContract(
  test: TestFn,
  open: (t: ExecutionContext) => Promise<RuntimeUnderTest | undefined>,
): void {
  const sleeper = (image: string, service = "app", extra = "") =>
    `  ${service}:\n    image: ${image}\n    command: ["sleep", "300"]\n${extra}`;

  test("a started deployment is inspected in start order, each container running on its own address; remove leaves nothing, twice", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const id = u.newId();
    const spec = specOf(
      id,
      `services:\n${sleeper(u.image, "web", "    depends_on: [db]\n")}${sleeper(u.image, "db")}`,
    );
    await runtime.prepare(spec);
    const started = await runtime.start(spec);
    t.deepEqual(
      started.map((c) => c.service),
      ["db", "web"],
    );
    const containers = await runtime.inspect(id);
    t.deepEqual(
      containers.map((c) => [c.service, c.state, c.exitCode]),
      [
        ["db", "running", null],
        ["web", "running", null],
      ],
    );
    for (const c of containers) {
      t.regex(c.imageId, /^sha256:[0-9a-f]{64}$/);
      t.is(c.image, u.image);
      t.truthy(c.startedAt && !Number.isNaN(Date.parse(c.startedAt)));
      t.regex(c.ip ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    }
    t.not(containers[0]!.ip, containers[1]!.ip);
    t.deepEqual(
      (await runtime.deployments()).filter((d) => d.deploymentId === id),
      [{ deploymentId: id, app: "contract-app", composeHash: spec.composeHash }],
    );
    t.deepEqual(await runtime.inspect(u.newId()), [], "another deployment has no containers");
    await runtime.remove(id);
    t.deepEqual(await runtime.inspect(id), []);
    t.false((await runtime.deployments()).some((d) => d.deploymentId === id));
    await t.notThrowsAsync(runtime.remove(id), "remove is idempotent");
  });

  test("deployments() lists only its own agent's deployments when the runtime has an owner", async (t) => {
    const u = await open(t);
    if (!u) return;
    const mine = u.runtime("agent-contract-a");
    const id = u.newId();
    const spec = specOf(id, `services:\n${sleeper(u.image)}`);
    await mine.prepare(spec);
    await mine.start(spec);
    t.true((await mine.deployments()).some((d) => d.deploymentId === id));
    t.false((await u.runtime("agent-contract-b").deployments()).some((d) => d.deploymentId === id));
  });

  test("logs: stdout lines per container in order, tail keeps the last N; no containers is EE-WORKLOAD-NONE", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const id = u.newId();
    const spec = specOf(
      id,
      `services:\n  app:\n    image: ${u.image}\n    command: ["sh", "-c", "echo one; echo two; exec sleep 300"]\n`,
    );
    await runtime.prepare(spec);
    await runtime.start(spec);
    const lines = await waitFor(
      "two log lines",
      async () => {
        const got = await collect(runtime.logs(id, {}));
        return got.length >= 2 ? got : undefined;
      },
      DEADLINE_MS,
    );
    t.deepEqual(
      lines.map((l) => [l.service, l.stream, l.text]),
      [
        ["app", "stdout", "one"],
        ["app", "stdout", "two"],
      ],
    );
    for (const l of lines) t.false(Number.isNaN(Date.parse(l.ts)));
    t.deepEqual(
      (await collect(runtime.logs(id, { tail: 1 }))).map((l) => l.text),
      ["two"],
    );
    const none = await t.throwsAsync(collect(runtime.logs(u.newId(), {})), { instanceOf: WorkloadError });
    t.is(none?.code, "EE-WORKLOAD-NONE");
  });

  test("stats: one entry per running container, by service, in non-negative figures", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const id = u.newId();
    const spec = specOf(id, `services:\n${sleeper(u.image)}`);
    await runtime.prepare(spec);
    const [app] = await runtime.start(spec);
    const stats = await runtime.stats(id);
    t.deepEqual(
      stats.map((s) => [s.service, s.id]),
      [["app", app!.id]],
    );
    for (const [k, v] of Object.entries(stats[0]!)) if (typeof v === "number") t.true(v >= 0, k);
    t.deepEqual(await runtime.stats(u.newId()), []);
  });

  test("a container that exits is reported exited with its code (the gate fails on it without waiting)", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const id = u.newId();
    const spec = specOf(
      id,
      `services:\n  app:\n    image: ${u.image}\n    restart: "no"\n    command: ["sh", "-c", "exit 3"]\n`,
    );
    await runtime.prepare(spec);
    await runtime.start(spec);
    const [app] = await waitFor(
      "the container to exit",
      async () => {
        const got = await runtime.inspect(id);
        return got[0]?.state === "exited" ? got : undefined;
      },
      DEADLINE_MS,
    );
    t.like(app, { service: "app", state: "exited", exitCode: 3 });
  });

  test("prepare resolves an image on the host to its digest; a missing image and a build without context fail with their codes", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const [image] = await runtime.prepare(specOf(u.newId(), `services:\n${sleeper(u.image)}`));
    t.like(image, { service: "app", ref: u.image });
    t.regex(image!.digest, /^sha256:[0-9a-f]{64}$/);
    const missing = await t.throwsAsync(
      runtime.prepare(specOf(u.newId(), "services:\n  web:\n    image: ee-test/not-here:404\n")),
      { instanceOf: WorkloadError },
    );
    t.is(missing?.code, "EE-WORKLOAD-IMAGE-MISSING");
    t.regex(missing!.message, /ee-test\/not-here:404/);
    const unbuilt = await t.throwsAsync(
      runtime.prepare(specOf(u.newId(), "services:\n  app:\n    build: .\n")),
      { instanceOf: WorkloadError },
    );
    t.is(unbuilt?.code, "EE-WORKLOAD-BUILD-FAILED");
  });

  test("pull leaves an image already on the engine alone: no progress, no failure", async (t) => {
    const u = await open(t);
    if (!u) return;
    const progress: unknown[] = [];
    await u.runtime().pull(specOf(u.newId(), `services:\n${sleeper(u.image)}`), {
      onProgress: (p) => progress.push(p),
    });
    t.deepEqual(progress, []);
  });

  test("a host port another deployment publishes is EE-WORKLOAD-PORT-CONFLICT, naming the port", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.runtime();
    const port = await closedPort();
    const published = `    ports: ["127.0.0.1:${port}:80"]\n`;
    const first = specOf(u.newId(), `services:\n${sleeper(u.image, "app", published)}`);
    await runtime.prepare(first);
    await runtime.start(first);
    const second = specOf(u.newId(), `services:\n${sleeper(u.image, "app", published)}`);
    const err = await t.throwsAsync(runtime.start(second), { instanceOf: WorkloadError });
    t.is(err?.code, "EE-WORKLOAD-PORT-CONFLICT");
    t.true(err!.message.includes(String(port)), err!.message);
  });

  test("an engine that does not answer is EE-WORKLOAD-ENGINE on every call", async (t) => {
    const u = await open(t);
    if (!u) return;
    const runtime = u.unreachable();
    const calls = [
      () => runtime.ping(),
      () => runtime.inspect("t-x"),
      () => runtime.remove("t-x"),
      () => runtime.deployments(),
      () => runtime.stats("t-x"),
    ];
    for (const call of calls) {
      const err = await t.throwsAsync(call(), { instanceOf: WorkloadError });
      t.is(err?.code, "EE-WORKLOAD-ENGINE");
    }
  });
}
