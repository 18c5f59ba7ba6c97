// eectl run as a user would: bin/eectl.js as a child process of this Node, with EE_CP_URL and EE_TOKEN cleared
// so only what a test passes counts. Imports node:child_process and test/helpers/cluster (REPO).
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./cluster.ts";

export interface EectlRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface EectlOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed. */
  input?: string;
}

function start(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [join(REPO, "bin/eectl.js"), ...args], {
    env: { ...process.env, EE_CP_URL: "", EE_TOKEN: "", ...env },
  });
}

/** Runs eectl to its end: the exit code and everything it printed. */
export function eectl(args: string[], o: EectlOptions = {}): Promise<EectlRun> {
  const child = start(args, o.env);
  child.stdin.end(o.input ?? "");
  return finished(child);
}

/** Waits for a child process to end: its exit code and everything it printed. */
export function finished(child: ChildProcessWithoutNullStreams): Promise<EectlRun> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

export interface LongEectl {
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** The exit code, once the process has ended. */
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts an eectl that runs until stopped (watch, logs -f); killed when the test ends if it still runs. */
export function eectlRunning(
  t: { teardown(fn: () => void): void },
  args: string[],
  env?: Record<string, string>,
): LongEectl {
  const child = start(args, env);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited: new Promise((resolve) => child.on("close", (code) => resolve(code))),
    kill: (signal) => child.kill(signal),
  };
}
