// The file source: a JSON config file. Named explicitly (--config, EASYENCLAVE_CONFIG) it must exist; the
// default path may be absent, which only means "no config here". May import node:fs and ./source.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { type ConfigSource, parseConfigJson, sourceError } from "./source.ts";

export const DEFAULT_CONFIG_FILE = "/etc/easyenclave/config.json";

export function fileSource(path: string, opts: { optional?: boolean } = {}): ConfigSource {
  const abs = resolve(path);
  const name = `file:${abs}`;
  return {
    name,
    async read() {
      let text: string;
      try {
        text = await readFile(abs, "utf8");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "read failed";
        if (opts.optional && code === "ENOENT") return null;
        throw sourceError(name, `cannot read the config file (${code})`);
      }
      return { raw: parseConfigJson(text, name) };
    },
  };
}
