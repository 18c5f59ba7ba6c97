// Node-size presets: what a launcher should provision for each node_size (vCPUs, memory, GPUs). Configuration
// with defaults, shown by `GET /api/v2/capacity/sizes` and `eectl capacity sizes`; a configured size without a
// preset gets `standard`'s, as the agent's container limits do (agent/runtime/limits.ts). Pure.

export interface SizePreset {
  vcpus: number;
  memory_mb: number;
  gpus: number;
}

export const DEFAULT_SIZE_PRESETS: Readonly<Record<string, SizePreset>> = {
  tiny: { vcpus: 1, memory_mb: 2048, gpus: 0 },
  standard: { vcpus: 4, memory_mb: 8192, gpus: 0 },
  llm: { vcpus: 16, memory_mb: 65_536, gpus: 1 },
};

/** The CP's node sizes, each with its preset (configured, else default, else `standard`'s). */
export function sizePresets(
  nodeSizes: Iterable<string>,
  configured: Readonly<Record<string, SizePreset>> = {},
): ({ node_size: string } & SizePreset)[] {
  const fallback = configured.standard ?? DEFAULT_SIZE_PRESETS.standard!;
  return [...nodeSizes].map((node_size) => ({
    node_size,
    ...(configured[node_size] ?? DEFAULT_SIZE_PRESETS[node_size] ?? fallback),
  }));
}
