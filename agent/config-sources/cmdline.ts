// The kernel command line source and its encoding, both ways. `easyenclave.configz=` holds base64 of
// zlib-compressed config JSON (what Python's zlib.compress makes), `easyenclave.config=` base64 of the JSON;
// configz wins when both are given. Decoding forgives what boot loaders and hand-written command lines do to
// base64: stripped padding and the URL-safe alphabet. May import node:fs, node:zlib and ./source.
import { resolve } from "node:path";
import { deflateSync, inflateSync } from "node:zlib";
import { type ConfigSource, decodeConfigJson, readSourceText, sourceError } from "./source.ts";

export const DEFAULT_CMDLINE = "/proc/cmdline";
export const PARAM_CONFIGZ = "easyenclave.configz";
const PARAM_CONFIG = "easyenclave.config";
/** The largest command-line parameter `eectl config cmdline` emits by default (x86 COMMAND_LINE_SIZE). */
export const DEFAULT_CMDLINE_LIMIT = 2048;
// A config is a few kilobytes; this only stops a tiny compressed payload from inflating without bound.
const MAX_INFLATED = 1024 * 1024;

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

/**
 * The kernel parameters as name → value, the way the kernel splits them: on whitespace outside double quotes,
 * `name=value` at the first `=`, the last of repeated names winning, and nothing after a lone `--` (those are
 * init's arguments).
 */
export function kernelParams(cmdline: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [, raw] of cmdline.matchAll(/((?:[^\s"]|"[^"]*"?)+)/g)) {
    if (raw === "--") break;
    const word = raw!.replaceAll('"', "");
    const eq = word.indexOf("=");
    if (eq > 0) params.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return params;
}

/** Base64 in either alphabet, with or without padding, strictly (Buffer.from alone skips bad characters). */
function decodeBase64(value: string): Buffer {
  const bare = value.replace(/=+$/, "");
  if (bare.length % 4 === 1) throw new Error("not base64 (its length cannot be padded)");
  const padded = bare + "=".repeat((4 - (bare.length % 4)) % 4);
  if (STANDARD.test(bare)) return Buffer.from(padded, "base64");
  if (URL_SAFE.test(bare)) return Buffer.from(padded, "base64url");
  throw new Error("not base64 (neither the standard nor the URL-safe alphabet)");
}

/** Decodes one parameter's value into the raw config, or fails naming `origin`. */
export function decodeParam(param: string, value: string, origin: string): unknown {
  let bytes: Buffer;
  try {
    bytes = decodeBase64(value);
  } catch (err) {
    throw sourceError(origin, (err as Error).message);
  }
  if (param === PARAM_CONFIGZ) {
    try {
      bytes = inflateSync(bytes, { maxOutputLength: MAX_INFLATED });
    } catch (err) {
      throw sourceError(origin, `not zlib data (${(err as Error).message})`);
    }
  }
  return decodeConfigJson(bytes, origin);
}

/** The kernel command line at `path` (default /proc/cmdline, which may be absent off Linux). */
export function cmdlineSource(path: string, opts: { optional?: boolean } = {}): ConfigSource {
  const abs = resolve(path);
  const name = `cmdline:${abs}`;
  return {
    name,
    async read() {
      const text = await readSourceText(abs, name, "the kernel command line", opts.optional ?? false);
      if (text === null) return null;
      const params = kernelParams(text);
      for (const param of [PARAM_CONFIGZ, PARAM_CONFIG]) {
        const value = params.get(param);
        if (value === undefined) continue;
        const origin = `${name} ${param}`;
        return { raw: decodeParam(param, value, origin), origin };
      }
      return null;
    },
  };
}

/** The kernel parameter carrying `json`: configz when compression makes it shorter, else config. */
export function encodeParam(json: string): string {
  const bytes = Buffer.from(json, "utf8");
  const configz = `${PARAM_CONFIGZ}=${deflateSync(bytes, { level: 9 }).toString("base64")}`;
  const config = `${PARAM_CONFIG}=${bytes.toString("base64")}`;
  return configz.length < config.length ? configz : config;
}
