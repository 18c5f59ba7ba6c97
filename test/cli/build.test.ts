// The compiled eectl (scripts/build-cli.ts): what it loads to start, judged by a module-load trace rather than
// by wall time (a busy machine makes timing tests flaky; `npm run bench -- cli` measures the time), and the
// launcher's rule that a build older than its sources never runs.
import { execFile } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import test from "ava";
import { buildBundle, openBundle, packBundle } from "../../installer/bundle.ts";
import { buildCli } from "../../scripts/build-cli.ts";
import { REPO, tempDir } from "../helpers/cluster.ts";

/** Packages an operator command never needs: the control plane's, the agent's, and the TypeScript loader. */
const HEAVY = [
  "xstate",
  "koa",
  "@koa/router",
  "dockerode",
  "better-sqlite3",
  "ws",
  "msgpackr",
  "pino",
  "zod",
  "yaml",
  "tsx",
];
const UNREACHABLE = ["--cp", "http://127.0.0.1:1", "--token", "some-token"];

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env } }, (err, stdout) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout }),
    );
  });
}

/** The packages (and TypeScript files) a run of the compiled eectl in `dir` loads. */
async function loads(dir: string, trace: string, args: string[]): Promise<string[]> {
  rmSync(trace, { force: true });
  const hooks = join(REPO, "test/helpers/load-trace.mjs");
  await run(["--import", hooks, join(dir, "main.js"), ...args], { EE_LOAD_TRACE: trace });
  const urls = readFileSync(trace, "utf8").split("\n").filter(Boolean);
  // A trace that missed the program itself would make every "loads nothing heavy" pass for nothing.
  if (!urls.some((u) => u.endsWith(`${dir}/main.js`))) throw new Error(`the trace misses main.js: ${urls}`);
  return [
    ...new Set(
      urls.flatMap((u) => {
        const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1];
        return pkg ? [pkg] : u.endsWith(".ts") ? [u] : [];
      }),
    ),
  ];
}

test("the compiled eectl loads no heavy package for --version, --help or an operator command", async (t) => {
  t.timeout(120_000);
  // Inside the checkout, so that its imports find node_modules as dist/eectl's do.
  const dir = join(REPO, "dist", `.test-${process.pid}`, "eectl");
  t.teardown(() => rmSync(join(dir, ".."), { recursive: true, force: true }));
  await buildCli(dir);
  const trace = join(tempDir(t, "ee-build-"), "trace");

  const version = await run([join(dir, "main.js"), "--version"]);
  t.is(version.stdout.trim(), JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
  for (const args of [
    ["--version"],
    ["--help"],
    ["control-plane", "--help"],
    ["agents", "list", "--json", ...UNREACHABLE],
    ["deploy", "--app", "web", "--compose", "/nonexistent/compose.yaml", ...UNREACHABLE],
    ["install", "status", "--help"],
    ["events", "--json", ...UNREACHABLE],
    ["inspect", "agent", "agt_x", "--jsonl", ...UNREACHABLE],
    ["admin-token", "rotate", "--help"],
  ]) {
    const loaded = await loads(dir, trace, args);
    t.deepEqual(
      loaded.filter((p) => HEAVY.includes(p) || p.endsWith(".ts")),
      [],
      `eectl ${args.join(" ")} loaded ${loaded.join(", ")}`,
    );
  }
  // And the trace does see what a command loads when it runs: the agent config's schema needs zod.
  t.true((await loads(dir, trace, ["config", "cmdline", "/nonexistent.json"])).includes("zod"));
});

test("bin/eectl.js runs the build only while every source it was built from is unchanged", async (t) => {
  // A checkout in miniature: the launcher, one source, a "build" of it, and the real node_modules for tsx.
  const root = tempDir(t, "ee-launcher-");
  for (const d of ["bin", "cli", "dist/eectl"]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(join(REPO, "bin/eectl.js"), join(root, "bin/eectl.js"));
  symlinkSync(join(REPO, "node_modules"), join(root, "node_modules"));
  writeFileSync(join(root, "package.json"), '{"type": "module"}\n');
  const source = join(root, "cli/main.ts");
  writeFileSync(source, 'process.stdout.write("sources\\n");\n');
  writeFileSync(join(root, "dist/eectl/main.js"), 'process.stdout.write("compiled\\n");\n');
  const record = (mtimeMs: number) =>
    writeFileSync(
      join(root, "dist/eectl/inputs.json"),
      JSON.stringify({ inputs: { "cli/main.ts": mtimeMs } }),
    );
  const launch = async () => (await run([join(root, "bin/eectl.js")])).stdout.trim();

  const when = new Date("2026-01-01T00:00:00Z");
  utimesSync(source, when, when);
  record(when.getTime());
  t.is(await launch(), "compiled");
  // Edited after the build: the sources run.
  const later = new Date(when.getTime() + 1000);
  utimesSync(source, later, later);
  t.is(await launch(), "sources");
  // A source recorded as changed during the build, a missing source, no build at all: the sources run.
  record(-1);
  t.is(await launch(), "sources");
  writeFileSync(join(root, "dist/eectl/inputs.json"), JSON.stringify({ inputs: { "cli/gone.ts": 0 } }));
  t.is(await launch(), "sources");
  rmSync(join(root, "dist"), { recursive: true });
  t.is(await launch(), "sources");
});

test("an agent bundle, packed and unpacked, runs the compiled eectl", async (t) => {
  t.timeout(180_000);
  // The bundle copies the checkout's dist/eectl, which `npm test` builds first (pretest). Rebuilding it here
  // replaced its chunks under the other test files running the compiled eectl at the same time.
  const scratch = tempDir(t, "ee-bundle-");
  const dir = join(scratch, "easyenclave-agent-7.7.7");
  await buildBundle({ version: "7.7.7", dest: dir });
  await packBundle(dir, `${dir}.tar.gz`);
  mkdirSync(join(scratch, "unpacked"));
  const staged = await openBundle(`${dir}.tar.gz`, join(scratch, "unpacked"));
  const trace = join(scratch, "trace");
  const launched = await run(
    ["--import", join(REPO, "test/helpers/load-trace.mjs"), join(staged.dir, "bin/eectl.js"), "--version"],
    { EE_LOAD_TRACE: trace },
  );
  t.is(launched.stdout.trim(), "7.7.7", "the bundle's own package.json version");
  const urls = readFileSync(trace, "utf8").split("\n");
  t.true(urls.includes(`file://${staged.dir}/dist/eectl/main.js`), urls.join("\n"));
  t.deepEqual(
    urls.filter((u) => u.endsWith(".ts")),
    [],
  );
});
