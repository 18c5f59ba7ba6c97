// What a launcher does with one claimed order: `local` starts a real `eectl agent` on this machine (dev
// attestation, the order's bootstrap token in its config, its API on a free loopback port); `exec` runs an
// operator's command with the order in its environment (how a libvirt, GCP or bare-metal script plugs in).
// A launch resolves once the agent or VM is started, and rejects with the reason it could not be.
// Imports node:* only.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ClaimedOrder {
  order_id: string;
  datacenter: string;
  node_size: string;
}

/** A node size's preset as the CP serves it (GET /api/v2/capacity/sizes). */
export interface SizePresetJson {
  vcpus: number;
  memory_mb: number;
  gpus: number;
}

export interface LaunchContext {
  order: ClaimedOrder;
  /** What to provision for the order's node size, when the CP knows a preset for it. */
  preset: SizePresetJson | undefined;
  bootstrapToken: string;
  /** The CP's REST URL (EE_CP_URL); agents get its ws(s):// form. */
  cpUrl: string;
  /** Resolves once the order left provisioning (the agent registered): a local launch waits for it. */
  registered: () => Promise<void>;
  /** Tells the operator what was started, as soon as it is (the launch may wait long after). */
  note: (line: string) => void;
}

export interface Provider {
  launch(c: LaunchContext): Promise<{ detail: string }>;
  /** Ctrl-C: what the provider started goes with it (local agents, running commands); resolves once gone. */
  stop(): Promise<void>;
}

/** The last bytes of a process's output, for a failure reason (never the whole log). */
function tail(text: string, max = 600): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}

export function localProvider(o: { workDir: string; devAttestationDir: string; eectl: string }): Provider {
  const children = new Set<ChildProcess>();
  return {
    async launch(c) {
      const dir = join(o.workDir, c.order.order_id);
      mkdirSync(join(dir, "data"), { recursive: true, mode: 0o700 });
      const config = {
        control_plane_url: c.cpUrl.replace(/^http/, "ws"),
        vm_name: c.order.order_id,
        node_size: c.order.node_size,
        datacenter: c.order.datacenter,
        bootstrap_token: c.bootstrapToken,
        api_listen: "127.0.0.1:0",
        data_dir: join(dir, "data"),
        attestation: { provider: "dev", dir: o.devAttestationDir },
        // A refused registration (a spent token) does not retry for ever.
        registration: { max_attempts: 5 },
      };
      const file = join(dir, "config.json");
      // The config holds the bootstrap token: owner-only.
      writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
      const logFile = join(dir, "agent.log");
      const log = openSync(logFile, "a", 0o600);
      const child = spawn(process.execPath, [o.eectl, "agent", "--config", file], {
        stdio: ["ignore", log, log],
        env: { ...process.env, EE_LOG_LEVEL: process.env.EE_LOG_LEVEL ?? "info" },
      });
      children.add(child);
      c.note(`agent pid ${child.pid}, log ${logFile}`);
      const exited = new Promise<never>((_, reject) =>
        child.once("exit", (code, signal) => {
          children.delete(child);
          reject(
            new Error(
              `the agent exited (${signal ?? code}) before registering: ${tail(readFileSync(logFile, "utf8"))}`,
            ),
          );
        }),
      );
      exited.catch(() => {});
      await Promise.race([c.registered(), exited]);
      return { detail: "its agent registered" };
    },
    stop: () => stopAll(children),
  };
}

export function execProvider(o: { command: string }): Provider {
  const running = new Set<ChildProcess>();
  return {
    launch(c) {
      return new Promise((resolve, reject) => {
        const child = spawn("/bin/sh", ["-c", o.command], {
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            EE_ORDER_ID: c.order.order_id,
            EE_DATACENTER: c.order.datacenter,
            EE_NODE_SIZE: c.order.node_size,
            EE_BOOTSTRAP_TOKEN: c.bootstrapToken,
            EE_CP_URL: c.cpUrl,
            EE_CP_WS_URL: c.cpUrl.replace(/^http/, "ws"),
            ...(c.preset
              ? {
                  EE_VCPUS: String(c.preset.vcpus),
                  EE_MEMORY_MB: String(c.preset.memory_mb),
                  EE_GPUS: String(c.preset.gpus),
                }
              : {}),
          },
        });
        running.add(child);
        let out = "";
        const keep = (d: Buffer) => {
          out = (out + d.toString()).slice(-4096);
        };
        child.stdout.on("data", keep);
        child.stderr.on("data", keep);
        child.once("error", (err) => reject(err));
        child.once("close", (code, signal) => {
          running.delete(child);
          if (code === 0) resolve({ detail: tail(out, 200) || "command exited 0" });
          else reject(new Error(`the command exited (${signal ?? code}): ${tail(out)}`));
        });
      });
    },
    stop: () => stopAll(running),
  };
}

/** SIGTERM to each, SIGKILL to any still running after 10 s; resolves when all have exited. */
async function stopAll(children: ReadonlySet<ChildProcess>): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
          child.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}
