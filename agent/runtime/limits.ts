// What each workload container may use: memory, CPU and pid limits by node_size (presets the agent config can
// override under workloads.limits), turned into the engine's HostConfig fields. Pure: imports node:os only.
import { availableParallelism } from "node:os";

export interface LimitPreset {
  memory_mb: number;
  /** CPUs, fractional allowed; capped at the host's count, which the engine refuses to exceed. */
  cpus: number;
  pids: number;
}

/** The built-in presets; a node_size without one (here or in the config) gets `standard`. */
export const LIMIT_PRESETS: Readonly<Record<string, LimitPreset>> = {
  tiny: { memory_mb: 512, cpus: 1, pids: 256 },
  standard: { memory_mb: 2048, cpus: 2, pids: 1024 },
  llm: { memory_mb: 16_384, cpus: 8, pids: 4096 },
};

/** The engine's view of a preset, applied to every container of every deployment. */
export interface ContainerLimits {
  Memory: number;
  /** Swap equal to memory: no swap on top of the limit. */
  MemorySwap: number;
  NanoCpus: number;
  PidsLimit: number;
}

/** The limits for `nodeSize`: the configured preset, else the built-in one, else `standard`. */
export function limitsFor(nodeSize: string, configured: Record<string, LimitPreset> = {}): ContainerLimits {
  const p = configured[nodeSize] ?? LIMIT_PRESETS[nodeSize] ?? configured.standard ?? LIMIT_PRESETS.standard!;
  const memory = p.memory_mb * 1024 * 1024;
  const cpus = Math.min(p.cpus, availableParallelism());
  return { Memory: memory, MemorySwap: memory, NanoCpus: Math.round(cpus * 1e9), PidsLimit: p.pids };
}
