// Compiles the programs (eectl, `npm start`) to JavaScript in dist/eectl/ with esbuild, so they start without
// compiling TypeScript: `npm run build`, run by `npm ci` (prepare), `npm test` (pretest) and `npm start`.
// Beside the code it writes inputs.json, every source file of ours it was built from with its mtime: bin/eectl.js
// runs the compiled code only while those files are unchanged, else the sources through tsx (ARCHITECTURE.md,
// "How eectl is built"). Imports esbuild and node:fs only.
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CLI_DIST = join(ROOT, "dist/eectl");
/** Read by bin/eectl.js: `{inputs: {PATH_FROM_ROOT: MTIME_MS}}`. */
export const INPUTS_FILE = "inputs.json";
const ENTRY_POINTS = ["cli/main.ts", "cli/start.ts"];
const PKG = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** Every package but clipanion, which every start loads: bundled, it is one file to read instead of dozens. */
const EXTERNAL = Object.keys({ ...PKG.dependencies, ...PKG.devDependencies }).filter(
  (p) => p !== "clipanion",
);

const CLOCK_TICK_MS = 20;

const posix = (path: string) => path.split(sep).join("/");

/**
 * Compiled code must find files the way the source does: `new URL("./x", import.meta.url)` names a file beside
 * the source (the OpenAPI YAML, package.json, the installer's supervisor). So each source's `import.meta.url`
 * becomes its own URL, computed from the chunk's (every chunk sits in `outdir`).
 */
function keepSourceLocations(outdir: string): Plugin {
  const fromOut = (path: string) => posix(relative(outdir, path));
  return {
    name: "keep-source-locations",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const url = `new URL(${JSON.stringify(fromOut(args.path))}, import.meta.url).href`;
        return { contents: text.replaceAll("import.meta.url", url), loader: "ts" };
      });
    },
  };
}

/**
 * Builds into `outdir` (default dist/eectl): a fresh folder swapped in by renames, so a concurrent eectl sees
 * the old build, no build (it then runs the sources) or the new one, never a half-written one.
 */
export async function buildCli(outdir = CLI_DIST): Promise<{ outdir: string; inputs: number }> {
  const started = Date.now();
  const tmp = `${outdir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: tmp,
    bundle: true,
    // Each heavy module a command imports with `await import()` becomes a chunk loaded only when it runs.
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // Packages stay imports (native addons, pino's worker transports and file lookups need their real paths),
    // but for clipanion (see EXTERNAL).
    external: EXTERNAL,
    // Bundled CommonJS (clipanion) calls require() for Node's modules, which ES modules lack.
    banner: {
      js: 'import { createRequire as __eeRequire } from "node:module"; const require = __eeRequire(import.meta.url);',
    },
    metafile: true,
    logLevel: "warning",
    plugins: [keepSourceLocations(outdir)],
  });
  const inputs: Record<string, number> = {};
  // Our own sources only: packages change through npm, whose install runs `prepare`, so the build follows.
  const sources = Object.keys(result.metafile.inputs).filter((f) => !/^\.\.\/|node_modules\//.test(f));
  for (const file of sources) {
    const { mtimeMs } = await stat(join(ROOT, file));
    // A file saved while esbuild ran may have been read before the save: record it as changed. File times come
    // from the kernel's coarse clock, a tick behind Date.now(), hence the margin.
    inputs[posix(file)] = mtimeMs < started - CLOCK_TICK_MS ? mtimeMs : -1;
  }
  await writeFile(join(tmp, INPUTS_FILE), `${JSON.stringify({ inputs }, null, 1)}\n`);
  await mkdir(dirname(outdir), { recursive: true });
  const old = `${outdir}.old-${process.pid}`;
  await rename(outdir, old).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
  await rename(tmp, outdir);
  await rm(old, { recursive: true, force: true });
  return { outdir, inputs: Object.keys(inputs).length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { outdir, inputs } = await buildCli();
  process.stderr.write(`built ${posix(relative(ROOT, outdir))} from ${inputs} sources\n`);
}
