// The file source: a JSON config file. Named by --config it must exist; the chain's first place otherwise
// (EASYENCLAVE_CONFIG, else the default path) may be absent, which only means "no config here". May import node:fs and ./source.
import { dirname, resolve } from "node:path";
import { type ConfigSource, parseConfigJson, readSourceText } from "./source.ts";

export const DEFAULT_CONFIG_FILE = "/etc/easyenclave/config.json";

export function fileSource(path: string, opts: { optional?: boolean } = {}): ConfigSource {
  const abs = resolve(path);
  const name = `file:${abs}`;
  return {
    name,
    async read() {
      const text = await readSourceText(abs, name, "the config file", opts.optional ?? false);
      return text === null ? null : { raw: parseConfigJson(text, name), baseDir: dirname(abs) };
    },
  };
}
