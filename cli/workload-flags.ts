// The flags that describe a workload, shared by `eectl deploy`, `eectl preflight` and `eectl apps register`:
// the Compose file (or stdin) and the --health-* spec. Imports clipanion, spec/errors and cli/ helpers.
import type { Readable } from "node:stream";
import { Option } from "clipanion";
import { ValidationError } from "../spec/errors.ts";
import { readInputFile } from "./input-file.ts";
import { parsePositiveInt } from "./options.ts";

/**
 * The --health-* flags. Clipanion sees only options declared as class fields, and declares them in field
 * order (which --help shows), so each command declares the three fields itself with these.
 */
export const healthFlags = {
  port: () =>
    Option.String("--health-port", {
      description: "Healthy once HTTP GET on this container port answers 2xx (no host port is published)",
    }),
  path: () => Option.String("--health-path", { description: "Path of the health probe (default /)" }),
  timeout: () =>
    Option.String("--health-timeout", {
      description: "Seconds the workload has to become healthy (default 60)",
    }),
};

/** The Compose text of `--compose FILE` (EE-CLI-FILE when it cannot be read), or of stdin for `-`. */
export async function readCompose(file: string, stdin: Readable): Promise<string> {
  if (file !== "-") return (await readInputFile(file, "--compose")).toString("utf8");
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** The health spec from --health-port/--health-path/--health-timeout; path and timeout need a port. */
export function healthSpec(
  port: string | undefined,
  path: string | undefined,
  timeout: string | undefined,
): { port: number; path?: string; timeout_s?: number } | undefined {
  const p = parsePositiveInt(port, "--health-port");
  const timeoutS = parsePositiveInt(timeout, "--health-timeout");
  if (p === undefined) {
    if (path !== undefined || timeoutS !== undefined)
      throw new ValidationError("EE-CONFIG-INVALID", "--health-path and --health-timeout need --health-port");
    return undefined;
  }
  return {
    port: p,
    ...(path !== undefined ? { path } : {}),
    ...(timeoutS !== undefined ? { timeout_s: timeoutS } : {}),
  };
}
