// Node-size presets: what a launcher should provision for each node_size (vCPUs, memory, GPUs). Configuration
// with defaults (`--node-sizes tiny,gpu=8:32768:1`), shown by `GET /api/v2/capacity/sizes` and `eectl capacity
// sizes`; a configured size without a preset gets `standard`'s, as the agent's container limits do
// (agent/runtime/limits.ts). Pure: imports spec/errors and contract/ types only, so eectl's flag parsing can use it.
import type { SizePreset } from "../../contract/capacity.ts";
import { ValidationError } from "../../spec/errors.ts";

export type { SizePreset } from "../../contract/capacity.ts";

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

const SIZE_ENTRY = /^([a-z0-9][a-z0-9-]{0,31})(?:=(\d{1,4}):(\d{1,8}):(\d{1,3}))?$/;

/**
 * `--node-sizes`: comma-separated NAME or NAME=VCPUS:MEMORY_MB:GPUS (a preset for that size). EE-CONFIG-INVALID
 * names the entry that does not parse.
 */
export function parseNodeSizes(value: string): { names: string[]; presets: Record<string, SizePreset> } {
  const names: string[] = [];
  const presets: Record<string, SizePreset> = {};
  for (const entry of value.split(",").map((e) => e.trim())) {
    const m = SIZE_ENTRY.exec(entry);
    if (!m)
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--node-sizes: "${entry}" is not NAME or NAME=VCPUS:MEMORY_MB:GPUS (NAME: a-z, 0-9, -)`,
      );
    const name = m[1]!;
    if (names.includes(name))
      throw new ValidationError("EE-CONFIG-INVALID", `--node-sizes: "${name}" is listed twice`);
    names.push(name);
    if (m[2] !== undefined)
      presets[name] = { vcpus: Number(m[2]), memory_mb: Number(m[3]), gpus: Number(m[4]) };
  }
  return { names, presets };
}
