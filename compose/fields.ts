// Readers of a parsed YAML document for the Compose subset: each checks one value's shape and refuses it with
// the key path it sits at (EE-COMPOSE-INVALID), and checkKeys refuses keys outside a list by name
// (EE-COMPOSE-UNSUPPORTED, with why for those that would break isolation). Pure: imports spec/errors only.
import { ComposeError } from "../spec/errors.ts";

export type YamlMap = Record<string, unknown>;

/** Keys that would hand a workload the TD's kernel, devices or host namespaces. */
const ISOLATION_KEYS = new Set([
  "privileged",
  "cap_add",
  "network_mode",
  "pid",
  "ipc",
  "devices",
  "security_opt",
  "sysctls",
  "userns_mode",
  "cgroup_parent",
  "cgroup",
  "uts",
]);

export function invalid(path: string, message: string): never {
  throw new ComposeError("EE-COMPOSE-INVALID", `${path}: ${message}`);
}

export function unsupported(path: string, why?: string): never {
  throw new ComposeError("EE-COMPOSE-UNSUPPORTED", `${path} is not supported${why ? `: ${why}` : ""}`);
}

export function isMap(v: unknown): v is YamlMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function asMap(v: unknown, path: string): YamlMap {
  if (!isMap(v)) invalid(path, "must be a mapping");
  return v;
}

export function asString(v: unknown, path: string): string {
  if (typeof v !== "string" || v === "") invalid(path, "must be a non-empty string");
  return v;
}

export function asBoolean(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") invalid(path, "must be a boolean");
  return v;
}

export function asStringList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) invalid(path, "must be a list");
  return v.map((item, i) => {
    if (typeof item !== "string") invalid(`${path}[${i}]`, "must be a string");
    return item;
  });
}

/** `parse` applied to `m[key]` (its path `path.key`), or undefined when the key is absent. */
export function field<T>(
  m: YamlMap,
  key: string,
  path: string,
  parse: (v: unknown, path: string) => T,
): T | undefined {
  return m[key] === undefined ? undefined : parse(m[key], `${path}.${key}`);
}

/** Refuses any key of `map` outside `allowed`; `x-*` extension keys are ignored, as Compose does. */
export function checkKeys(map: YamlMap, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(map)) {
    if (allowed.includes(key) || key.startsWith("x-")) continue;
    if (ISOLATION_KEYS.has(key))
      unsupported(`${path}.${key}`, "it breaks the workload's isolation inside the TD");
    unsupported(`${path}.${key}`);
  }
}
