// Running the installed agent: one ServiceControl per way of running it (systemd, the --no-systemd supervisor,
// or nothing for a root no service manager runs), and the start check upgrade and rollback rely on. Imports
// node:fs, node:child_process, installer/layout and spec/errors.
import { execFile, spawn } from "node:child_process";
import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rm, symlink } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { canAccess } from "../lib/can-access.ts";
import { InstallError } from "../spec/errors.ts";
import { type Layout, SERVICE_NAME } from "./layout.ts";

const run = promisify(execFile);

export type ServiceMode = "systemd" | "supervisor" | "none";

/** What the last start of the agent left: its pid and whether that process is alive. */
export interface AgentProbe {
  pid: number;
  alive: boolean;
}

export interface ServiceControl {
  readonly mode: ServiceMode;
  /** Enables and starts the service; a no-op when it runs. For mode none: enabled at the root's next boot. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops and disables the service; a no-op when it does not run. */
  stop(): Promise<void>;
  /** After the unit file is removed: systemd forgets it; nothing to do for the others. */
  forget(): Promise<void>;
  /** The agent process of the current start, or null before the first one. */
  probe(): Promise<AgentProbe | null>;
  /** The service runs and so does its agent process. */
  running(): Promise<boolean>;
  /**
   * The last lines the service logged since the agent process `pid` started (its output and how it ended), oldest
   * first; systemd's journal is read from its end.
   */
  outputSince(pid: number): Promise<string[]>;
  /** Where an operator reads the whole log. */
  readonly logHint: string;
}

/** How many lines outputSince returns at most. */
const OUTPUT_LINES = 20;
/** How much of the end of the supervisor's log outputSince reads. */
const OUTPUT_BYTES = 64 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function onPath(program: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    if (await canAccess(join(dir, program), constants.X_OK)) return true;
  }
  return false;
}

/** systemd manages the services of / (systemctl on PATH and /run/systemd/system present). */
async function systemdRuns(): Promise<boolean> {
  return (await canAccess("/run/systemd/system")) && (await onPath("systemctl"));
}

export async function chooseMode(l: Layout, noSystemd: boolean): Promise<ServiceMode> {
  if (noSystemd) return "supervisor";
  return l.root === "/" && (await systemdRuns()) ? "systemd" : "none";
}

export function serviceControl(mode: ServiceMode, l: Layout): ServiceControl {
  switch (mode) {
    case "systemd":
      return systemdControl();
    case "supervisor":
      return supervisorControl(l);
    case "none":
      return noneControl(l);
  }
}

function systemdControl(): ServiceControl {
  const systemctl = async (...args: string[]): Promise<string> => {
    try {
      return (await run("systemctl", args)).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new InstallError(
        "EE-INSTALL-SERVICE",
        `systemctl ${args.join(" ")}: ${(e.stderr || e.message).trim()}`,
      );
    }
  };
  return {
    mode: "systemd",
    start: async () => {
      await systemctl("daemon-reload");
      await systemctl("enable", "--now", SERVICE_NAME);
    },
    restart: async () => {
      await systemctl("daemon-reload");
      await systemctl("restart", SERVICE_NAME);
    },
    stop: async () => {
      await systemctl("disable", "--now", SERVICE_NAME).catch(() => undefined);
    },
    forget: async () => {
      await systemctl("daemon-reload");
    },
    probe: async () => {
      const out = await systemctl("show", "-p", "MainPID", "-p", "ActiveState", SERVICE_NAME);
      const pid = Number(/MainPID=(\d+)/.exec(out)?.[1] ?? 0);
      return { pid, alive: pid > 0 && /ActiveState=active/.test(out) };
    },
    running: () =>
      run("systemctl", ["is-active", "--quiet", SERVICE_NAME]).then(
        () => true,
        () => false,
      ),
    // The end of the unit's journal: the agent's output and systemd's word on how it ended.
    outputSince: () =>
      run("journalctl", ["-u", SERVICE_NAME, "-n", `${OUTPUT_LINES}`, "-o", "cat", "--no-pager"])
        .then(({ stdout }) => stdout.split("\n").filter((s) => s.trim() !== ""))
        .catch(() => []),
    logHint: `journalctl -u ${SERVICE_NAME}`,
  };
}

async function readPid(file: string): Promise<number | null> {
  const text = await readFile(file, "utf8").catch(() => "");
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** The last `bytes` of a file as text ("" when it cannot be read). */
async function readTail(file: string, bytes: number): Promise<string> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch {
    return "";
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return buf.toString("utf8");
  } finally {
    await handle.close();
  }
}

const SUPERVISOR = fileURLToPath(new URL("./supervisor.ts", import.meta.url));

function supervisorControl(l: Layout): ServiceControl {
  /** The live supervisor of this root; a pid file left by a reboot or a crash names some other process. */
  const supervisorPid = async (): Promise<number | null> => {
    const pid = await readPid(l.pidFile);
    if (pid === null || !isAlive(pid)) return null;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => null);
    if (cmdline !== null && !(cmdline.includes("supervisor.ts") && cmdline.includes(l.root))) return null;
    return pid;
  };
  const start = async () => {
    if ((await supervisorPid()) !== null) return;
    await rm(l.mainPidFile, { force: true });
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx/esm"), SUPERVISOR, l.root], {
      detached: true,
      stdio: "ignore",
      cwd: "/",
    });
    child.unref();
    const deadline = Date.now() + 15_000;
    while ((await readPid(l.pidFile)) !== child.pid) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new InstallError(
          "EE-INSTALL-SERVICE",
          `the supervisor did not start (exit ${child.exitCode ?? "none yet"}); see ${l.logFile}`,
        );
      }
      await sleep(50);
    }
  };
  const stop = async () => {
    const pid = await supervisorPid();
    if (pid !== null) {
      process.kill(pid, "SIGTERM");
      // The supervisor gives its agent 10 s to stop; past that, its whole process group goes.
      const deadline = Date.now() + 15_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(50);
      if (isAlive(pid)) process.kill(-pid, "SIGKILL");
      while (isAlive(pid)) await sleep(50);
    }
    await rm(l.pidFile, { force: true });
    await rm(l.mainPidFile, { force: true });
  };
  const probe = async (): Promise<AgentProbe | null> => {
    const pid = await readPid(l.mainPidFile);
    return pid === null ? null : { pid, alive: isAlive(pid) };
  };
  /** The end of the log from the supervisor's note that it started `pid`. */
  const outputSince = async (pid: number): Promise<string[]> => {
    const text = await readTail(l.logFile, OUTPUT_BYTES);
    const lines = text.split("\n").filter((s) => s.trim() !== "");
    const from = lines.findLastIndex((s) => s.includes(`agent started (pid ${pid})`));
    return lines.slice(from + 1).slice(-OUTPUT_LINES);
  };
  return {
    mode: "supervisor",
    start,
    outputSince,
    logHint: l.logFile,
    stop,
    forget: async () => {},
    restart: async () => {
      await stop();
      await start();
    },
    probe,
    running: async () => (await supervisorPid()) !== null && ((await probe())?.alive ?? false),
  };
}

/** A root no service manager runs here (an image being staged): enabling is the link systemctl enable makes. */
function noneControl(l: Layout): ServiceControl {
  return {
    mode: "none",
    start: async () => {
      await rm(l.wantsLink, { force: true });
      await mkdir(dirname(l.wantsLink), { recursive: true });
      await symlink(`../${SERVICE_NAME}`, l.wantsLink);
    },
    restart: async () => {},
    stop: async () => {
      await rm(l.wantsLink, { force: true });
    },
    forget: async () => {},
    probe: async () => null,
    running: async () => false,
    outputSince: async () => [],
    logHint: "(no service runs it here)",
  };
}

/**
 * Waits for the agent of a fresh start: a process must appear within `timeoutMs` and then stay the same, alive
 * process for `settleMs`. Returns why it did not, or null.
 */
export async function checkStarted(
  control: ServiceControl,
  o: { timeoutMs: number; settleMs: number },
): Promise<string | null> {
  const deadline = Date.now() + o.timeoutMs;
  let first = await control.probe();
  while (first === null) {
    if (Date.now() > deadline) return `no agent process within ${o.timeoutMs} ms`;
    await sleep(50);
    first = await control.probe();
  }
  const settled = Date.now() + o.settleMs;
  for (;;) {
    const now = await control.probe();
    if (!now?.alive || now.pid !== first.pid) {
      return `the agent process (pid ${first.pid}) exited within ${o.settleMs} ms of starting`;
    }
    if (Date.now() >= settled) return null;
    await sleep(100);
  }
}
