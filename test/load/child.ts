// Child processes of the scale benchmark (the CP, the echo server, the load generators) and the small
// request/answer protocol spoken with them over the Node IPC channel: the parent sends `{id, cmd, args}`, the
// child answers `{id, ok, result | error}`. `serveRequests` is the child side.
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

interface Answer {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export class Child {
  readonly proc: ChildProcess;
  /** The child's first answer (id 0), sent once it is serving. */
  readonly ready: Promise<unknown>;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #exited: Error | null = null;

  constructor(module: string, args: unknown, opts: { nodeFlags?: string[] } = {}) {
    this.proc = fork(fileURLToPath(new URL(module, import.meta.url)), [JSON.stringify(args)], {
      execArgv: ["--import", "tsx", ...(opts.nodeFlags ?? [])],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.ready = new Promise((resolve, reject) => this.#pending.set(0, { resolve, reject }));
    this.proc.on("message", (m: Answer) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${module}: ${m.error}`));
    });
    this.proc.on("exit", (code, signal) => {
      this.#exited = new Error(`${module} exited (${signal ?? code})`);
      for (const p of this.#pending.values()) p.reject(this.#exited);
      this.#pending.clear();
    });
  }

  request<T>(cmd: string, args: unknown = {}): Promise<T> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, args });
    });
  }

  /** Kills the child (SIGKILL by default) and resolves once it is gone. */
  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.#exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once("exit", () => resolve());
      this.proc.kill(signal);
    });
  }

  /** Lets the child exit on its own (it exits when the IPC channel closes; a --cpu-prof is then written). */
  async close(graceMs = 10_000): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.proc.disconnect();
    const timer = setTimeout(() => void this.kill(), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/** The child side: answers each request with its handler's result; an unknown command is an error answer. */
export function serveRequests(handlers: Record<string, (args: never) => unknown>): void {
  process.on("message", async (m: { id: number; cmd: string; args: unknown }) => {
    const handler = handlers[m.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${m.cmd}`);
      const result = await handler(m.args as never);
      process.send?.({ id: m.id, ok: true, result });
    } catch (err) {
      process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  });
  // The parent going away (even killed) ends the child: no orphaned load generators.
  process.on("disconnect", () => process.exit(0));
}

/** The child's startup argument (JSON in argv[2]). */
export function childArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? "{}") as T;
}
