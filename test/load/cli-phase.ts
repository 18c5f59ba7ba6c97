// The `cli` phase: how long eectl takes to answer, next to Node's own start. Runs `node -e 0`, `eectl --version`
// and `eectl agents list --json` against a local control plane (an `eectl control-plane` process), --runs times
// each, alternating so that foreign load on the machine hits all three alike, and reports the medians and the two
// ratios issue 12 bounds: --version at most 5× `node -e 0` (CONTRACT.md), agents list at most 10×.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCli } from "../../scripts/build-cli.ts";
import { quantile, round } from "./measure.ts";
import type { BenchOptions, Phase, PhaseResult } from "./phase.ts";

const EECTL = fileURLToPath(new URL("../../bin/eectl.js", import.meta.url));
const TOKEN = "bench-admin-token-0123456789";

export const cliPhase: Phase = {
  name: "cli",
  async run(opts: BenchOptions): Promise<PhaseResult> {
    // What bin/eectl.js runs: the compiled eectl, built from the sources as they are now.
    await buildCli();
    const dataDir = mkdtempSync(join(tmpdir(), "ee-bench-cli-"));
    const cp = await startCp(dataDir);
    try {
      const env = { ...process.env, EE_CP_URL: cp.url, EE_TOKEN: TOKEN };
      const commands = {
        node: ["-e", "0"],
        version: [EECTL, "--version"],
        list: [EECTL, "agents", "list", "--json"],
      };
      const ms: Record<keyof typeof commands, number[]> = { node: [], version: [], list: [] };
      opts.log(
        `cli: node -e 0, eectl --version, eectl agents list --json; ${opts.runs} runs each, alternating`,
      );
      for (let i = 0; i < opts.runs; i++) {
        for (const [name, args] of Object.entries(commands) as [keyof typeof commands, string[]][]) {
          const start = process.hrtime.bigint();
          const r = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
          ms[name].push(Number(process.hrtime.bigint() - start) / 1e6);
          if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
        }
      }
      const [node, version, list] = [ms.node, ms.version, ms.list].map(
        (xs) => quantile(xs, 0.5) ?? Number.NaN,
      ) as [number, number, number];
      return {
        metrics: {
          cli_node_ms: round(node, 1),
          cli_version_ms: round(version, 1),
          cli_agents_list_ms: round(list, 1),
          cli_version_ratio: round(version / node, 2),
          cli_agents_list_ratio: round(list / node, 2),
        },
        figures: {
          cli_node_ms: { label: "node -e 0, median (baseline)", value: node, unit: " ms" },
          cli_version_ms: {
            label: "eectl --version, median",
            value: version,
            unit: " ms",
            baseline: "cli_node_ms",
          },
          cli_agents_list_ms: {
            label: "eectl agents list --json, median",
            value: list,
            unit: " ms",
            baseline: "cli_node_ms",
          },
        },
        notes: [],
      };
    } finally {
      cp.child.kill("SIGTERM");
      await new Promise((resolve) => cp.child.once("exit", resolve));
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

/** `eectl control-plane` on a free loopback port, once it prints its URL. */
function startCp(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const args = ["control-plane", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-token", TOKEN];
  const child = spawn(process.execPath, [EECTL, ...args], {
    env: { ...process.env, EE_LOG_LEVEL: "error" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const url = /^control plane: (\S+)$/m.exec(out)?.[1];
      if (url) resolve({ child, url });
    });
    child.once("exit", (code) => reject(new Error(`the control plane exited ${code}: ${out}`)));
  });
}
