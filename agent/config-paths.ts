// Relative paths in an agent config: the keys that hold file-system paths, and resolving them against the folder
// of the file the config came from, whoever starts the agent (a shell, the installer's supervisor with cwd /,
// systemd). A config drive or a kernel command line has no folder, so a relative path there is refused rather
// than read against whatever directory the agent happens to start in. Works on the raw JSON value, before the
// schema, so the installer can write the resolved config where it installs it. Imports node:path only.
import { isAbsolute, resolve } from "node:path";

/** Every key whose value is a file-system path (dotted paths into the config). */
export const PATH_KEYS: readonly (readonly string[])[] = [
  ["data_dir"],
  ["control_plane_ca"],
  ["attestation", "dir"],
  ["docker_socket"],
];

export interface PathIssue {
  key: string;
  message: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * `raw` with each relative path made absolute against `baseDir`, or, with no folder (`null`), an issue for each.
 * Values that are not non-empty strings are left for the schema to refuse; `raw` itself is not changed.
 */
export function resolveConfigPaths(
  raw: unknown,
  baseDir: string | null,
): { raw: unknown; issues: PathIssue[] } {
  if (!isObject(raw)) return { raw, issues: [] };
  const out: Record<string, unknown> = structuredClone(raw);
  const issues: PathIssue[] = [];
  for (const key of PATH_KEYS) {
    let holder: unknown = out;
    for (const part of key.slice(0, -1)) holder = isObject(holder) ? holder[part] : undefined;
    if (!isObject(holder)) continue;
    const last = key[key.length - 1]!;
    const value = holder[last];
    if (typeof value !== "string" || value === "" || isAbsolute(value)) continue;
    if (baseDir === null) {
      issues.push({
        key: key.join("."),
        message: "must be an absolute path (this source has no folder to resolve a relative one against)",
      });
    } else {
      holder[last] = resolve(baseDir, value);
    }
  }
  return { raw: out, issues };
}
