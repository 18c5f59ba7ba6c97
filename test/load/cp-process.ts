// The control plane under load, as its own process (`node --import tsx --expose-gc`): startControlPlane with a
// dev attestation root, re-attestation pushed past the run and a short readiness settle. Answers `stats` (RSS
// after a full GC, CPU seconds, worst pauses) over IPC, so the parent reads the CP alone, not the load generators.
// With EE_BENCH_PROFILE_DIR set, the CPU profile of each span between two `stats` is written there
// (`<label>-<pid>.cpuprofile`, for Chrome DevTools), which is how the hot spots of each step are found.
import { startControlPlane } from "../../cp/control-plane.ts";
import { createLogger } from "../../lib/log.ts";
import { childArgs, serveRequests } from "./child.ts";
import { type Pauses, watchPauses } from "./pauses.ts";
import { startProfile } from "./profile.ts";

export interface CpProcessArgs {
  port: number;
  dataDir: string;
  devDir: string;
  adminToken: string;
  heartbeatMs: number;
}

export interface CpStats extends Pauses {
  rss: number;
  cpu_s: number;
}

const args = childArgs<CpProcessArgs>();
const cp = await startControlPlane({
  host: "127.0.0.1",
  port: args.port,
  dataDir: args.dataDir,
  // Errors only: at 10k agents anything chattier measures the logger.
  log: createLogger("bench-cp", "error"),
  adminToken: args.adminToken,
  devAttestationDir: args.devDir,
  heartbeatMs: args.heartbeatMs,
  staleAfterMs: 3 * args.heartbeatMs,
  // A re-attestation round would be a second registration storm in the middle of the measurements.
  reattestMs: 24 * 3600_000,
  readiness: { settleMs: 500, maxWaitMs: 5_000 },
  // Every simulated agent connects from 127.0.0.1: the per-address cap would throttle the storm being measured.
  handshake: { maxPendingPerAddress: 1_000_000, maxPending: 1_000_000 },
});

const cut = await startProfile();
const pauses = watchPauses();
/** CPU seconds our forced GCs took: left out of `cpu_s`, like their pauses, since the CP did not ask for them. */
let forcedGcCpuS = 0;

serveRequests({
  stats: async (a: { label: string }): Promise<CpStats> => {
    await cut(a.label);
    // Read before the forced GC below, which is ours, not the CP's: its pause reaches the observer and the loop
    // monitor only after this handler returns, so it is let through and dropped before the next span starts.
    const paused = pauses();
    const before = process.cpuUsage();
    (globalThis as { gc?: () => void }).gc?.();
    const gcCpu = process.cpuUsage(before);
    forcedGcCpuS += (gcCpu.user + gcCpu.system) / 1e6;
    await new Promise((resolve) => setTimeout(resolve, 50));
    pauses();
    const cpu = process.cpuUsage();
    return { rss: process.memoryUsage.rss(), cpu_s: (cpu.user + cpu.system) / 1e6 - forcedGcCpuS, ...paused };
  },
});
process.send?.({ id: 0, ok: true, result: { port: cp.port } });
