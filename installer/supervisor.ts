// The --no-systemd supervisor: a detached program (`node --import tsx/esm installer/supervisor.ts ROOT`) that
// runs the installed agent's launcher, restarts it with exponential backoff when it exits, and stops it on
// SIGTERM. It keeps its pid and the agent's in ROOT/run and appends its notes and the agent's output to
// ROOT/var/log/easyenclave-agent.log. The environment is agent.env over PATH, as systemd's EnvironmentFile=
// would give. Imports node:fs, node:child_process, installer/layout and installer/env-file.
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseEnvFile } from "./env-file.ts";
import { layout } from "./layout.ts";

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 30_000;
/** An agent that stayed up this long starts the backoff over on its next exit. */
const HEALTHY_AFTER_MS = 30_000;
const STOP_GRACE_MS = 10_000;

const rootArg = process.argv[2];
if (!rootArg) {
  process.stderr.write("usage: supervisor.ts ROOT\n");
  process.exit(2);
}
const l = layout(rootArg);
mkdirSync(dirname(l.logFile), { recursive: true });
mkdirSync(l.runDir, { recursive: true });
const log = openSync(l.logFile, "a", 0o600);
const note = (msg: string) =>
  appendFileSync(log, `${new Date().toISOString()} supervisor[${process.pid}]: ${msg}\n`);

let child: ChildProcess | null = null;
let restartTimer: NodeJS.Timeout | null = null;
let delay = FIRST_DELAY_MS;
let stopping = false;

function agentEnv(): NodeJS.ProcessEnv {
  let vars = new Map<string, string>();
  try {
    vars = parseEnvFile(readFileSync(l.envFile, "utf8"));
  } catch (err) {
    note(`cannot read ${l.envFile} (${(err as NodeJS.ErrnoException).code}); starting without it`);
  }
  return { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", ...Object.fromEntries(vars) };
}

function finish(): never {
  rmSync(l.mainPidFile, { force: true });
  // Only our own pid file: a newer supervisor may have started while we stopped.
  let mine = false;
  try {
    mine = readFileSync(l.pidFile, "utf8").trim() === String(process.pid);
  } catch {}
  if (mine) rmSync(l.pidFile, { force: true });
  note("stopped");
  process.exit(0);
}

function start(): void {
  restartTimer = null;
  const startedAt = Date.now();
  const agent = spawn(l.launcher(), [], { env: agentEnv(), stdio: ["ignore", log, log], cwd: "/" });
  child = agent;
  if (agent.pid) {
    writeFileSync(l.mainPidFile, `${agent.pid}\n`);
    note(`agent started (pid ${agent.pid})`);
  }
  let ended = false;
  const onEnd = (why: string) => {
    if (ended) return;
    ended = true;
    child = null;
    // The pid file stays, naming a dead process: that is how the installer tells "exited" from "not started".
    if (stopping) finish();
    if (Date.now() - startedAt >= HEALTHY_AFTER_MS) delay = FIRST_DELAY_MS;
    note(`agent ${why}; restarting in ${delay} ms`);
    restartTimer = setTimeout(start, delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  };
  agent.once("error", (err) => onEnd(`could not start (${err.message})`));
  agent.once("exit", (code, signal) => onEnd(signal ? `killed by ${signal}` : `exited with ${code}`));
}

function stop(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  note(`${signal}: stopping the agent`);
  if (restartTimer) clearTimeout(restartTimer);
  if (!child) finish();
  child.kill("SIGTERM");
  setTimeout(() => child?.kill("SIGKILL"), STOP_GRACE_MS).unref();
}

process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGHUP", () => {});
writeFileSync(l.pidFile, `${process.pid}\n`);
note(`supervising ${l.launcher()}`);
start();
