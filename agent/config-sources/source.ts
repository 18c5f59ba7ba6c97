// What every place an agent config may come from has in common: the ConfigSource port the chain in
// agent/config.ts walks, the one error every source raises, and reading a source's text file. May import
// spec/errors and node:fs.
import { readFile } from "node:fs/promises";
import { ValidationError } from "../../spec/errors.ts";

/** What a source found: the raw config value and, when finer than the source's name, where exactly it was. */
export interface FoundConfig {
  raw: unknown;
  /** e.g. `cmdline:/proc/cmdline easyenclave.configz`; the source's name when absent. */
  origin?: string;
  /** The folder relative paths in the config resolve against: a file's own; none for drives and cmdlines. */
  baseDir?: string;
}

/** A place a config may come from. */
export interface ConfigSource {
  /** Shown in logs and errors, e.g. `file:/etc/easyenclave/config.json`. */
  readonly name: string;
  /** The raw config value, or null when this source holds none (the chain moves on). */
  read(): Promise<FoundConfig | null>;
}

/** EE-CONFIG-INVALID for a source that holds a config it cannot deliver; the message starts with the origin. */
export function sourceError(origin: string, problem: string): ValidationError {
  return new ValidationError("EE-CONFIG-INVALID", `${origin}: ${problem}`, { source: origin });
}

/** Parses config JSON text, or fails naming the origin. */
export function parseConfigJson(text: string, origin: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw sourceError(origin, `not valid JSON (${(err as Error).message})`);
  }
}

/** Decodes config JSON bytes (UTF-8), or fails naming the origin. */
export function decodeConfigJson(bytes: Uint8Array, origin: string): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw sourceError(origin, "not UTF-8 text");
  }
  return parseConfigJson(text, origin);
}

/**
 * The text of a source's file, or null when an optional one is absent (ENOENT: "no config here"); any other
 * failure, or a required file missing, fails naming the source and `what` it is.
 */
export async function readSourceText(
  path: string,
  name: string,
  what: string,
  optional: boolean,
): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "read failed";
    if (optional && code === "ENOENT") return null;
    throw sourceError(name, `cannot read ${what} (${code})`);
  }
}
