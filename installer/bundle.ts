// Agent bundles: a self-contained directory holding the program (the runtime folders, package.json and the
// production node_modules, pruned by package-lock's `dev` flags, so no network is needed), a manifest, and the
// launcher bin/easyenclave-agent that runs `eectl agent` with the host's Node 20+ (compiled, when the checkout
// has a current dist/eectl). Builds one from a checkout,
// packs it as .tar.gz, and opens one given as a directory or tarball (the system `tar` does the archive work).
// Imports node:fs, node:child_process, installer/layout and spec/errors.
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import {
  access,
  copyFile,
  cp,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { canAccess } from "../lib/can-access.ts";
import { ValidationError } from "../spec/errors.ts";
import { VERSION_PATTERN } from "./layout.ts";

const run = promisify(execFile);

/** The checkout (or installed bundle) this code runs from. */
export const SOURCE_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const MANIFEST = "easyenclave-bundle.json";
const LAUNCHER = "bin/easyenclave-agent";
const RUNTIME_DIRS = [
  "bin",
  "actors",
  "agent",
  "attestation",
  "billing",
  "cli",
  "compose",
  "contract",
  "cp",
  "identity",
  "installer",
  "lib",
  "machines",
  "spec",
  "transport",
];
const RUNTIME_FILES = ["package.json", "package-lock.json", "tsconfig.json"];
/** The compiled eectl (scripts/build-cli.ts), which bin/eectl.js prefers to the sources while it is current. */
const COMPILED_DIR = "dist/eectl";

export interface BundleManifest {
  name: "easyenclave-agent";
  version: string;
}

export function checkVersion(version: string, flag = "--version"): string {
  if (!VERSION_PATTERN.test(version)) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${flag}: "${version}" is not a version name (${VERSION_PATTERN.source})`,
    );
  }
  return version;
}

/** The version a checkout would build by default: its package.json version. */
export async function sourceVersion(source = SOURCE_ROOT): Promise<string> {
  const pkg = JSON.parse(await readFile(join(source, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

function launcherScript(version: string): string {
  return `#!/bin/sh
# EasyEnclave agent ${version}: runs \`eectl agent\` from this bundle with the host's Node 20+.
# EASYENCLAVE_NODE names the node binary (eectl install writes it to agent.env); else node from PATH.
dir=$(cd -P "$(dirname "$0")/.." && pwd) || exit 1
exec "\${EASYENCLAVE_NODE:-node}" "$dir/bin/eectl.js" agent "$@"
`;
}

/**
 * Paths under node_modules that `npm ci --omit=dev` would not install, from the lockfile's `dev` flags. npm's
 * hidden lockfile (node_modules/.package-lock.json) describes the tree as it is on disk, which can be hoisted
 * differently from package-lock.json; it wins when present.
 */
async function devPackages(source: string): Promise<Set<string>> {
  const text = await readFile(join(source, "node_modules/.package-lock.json"), "utf8").catch(() =>
    readFile(join(source, "package-lock.json"), "utf8"),
  );
  const lock = JSON.parse(text) as { packages?: Record<string, { dev?: boolean }> };
  return new Set(
    Object.entries(lock.packages ?? {})
      .filter(([path, meta]) => path !== "" && meta.dev === true)
      .map(([path]) => path),
  );
}

/**
 * Recreates `source/rel` under `dest`, hard-linking files (a copy across file systems) and keeping symlinks,
 * for the paths `keep` accepts. Only for node_modules: npm replaces package files and never edits them in
 * place, so a link cannot change under an installed version, and linking takes a fraction of a copy's time.
 */
async function linkTree(
  source: string,
  rel: string,
  dest: string,
  keep: (rel: string, name: string) => boolean,
): Promise<void> {
  await mkdir(join(dest, rel));
  const entries = await readdir(join(source, rel), { withFileTypes: true });
  await Promise.all(
    entries.map(async (e) => {
      const sub = `${rel}/${e.name}`;
      if (!keep(sub, e.name)) return;
      const [from, to] = [join(source, sub), join(dest, sub)];
      if (e.isDirectory()) await linkTree(source, sub, dest, keep);
      else if (e.isSymbolicLink()) await symlink(await readlink(from), to);
      else await link(from, to).catch(() => copyFile(from, to));
    }),
  );
}

/**
 * Builds the bundle for `version` from `source` into `dest` (which must not exist). The program's own files
 * are copied (an editor may rewrite a checkout's file in place); node_modules is hard-linked (see linkTree).
 */
export async function buildBundle(opts: { version: string; dest: string; source?: string }): Promise<void> {
  const source = opts.source ?? SOURCE_ROOT;
  const version = checkVersion(opts.version);
  const dev = await devPackages(source);
  await mkdir(opts.dest, { recursive: false });
  // Timestamps kept: the compiled eectl (dist/eectl, when built) runs only while its sources' mtimes match.
  const keep = { recursive: true, preserveTimestamps: true };
  for (const dir of RUNTIME_DIRS) await cp(join(source, dir), join(opts.dest, dir), keep);
  if (await canAccess(join(source, COMPILED_DIR)))
    await cp(join(source, COMPILED_DIR), join(opts.dest, COMPILED_DIR), keep);
  for (const file of RUNTIME_FILES) await cp(join(source, file), join(opts.dest, file));
  await linkTree(source, "node_modules", opts.dest, (rel, name) => {
    // .bin holds links to dev tools; .package-lock.json and caches describe the full dev tree.
    return !dev.has(rel) && name !== ".bin" && !(rel === `node_modules/${name}` && name.startsWith("."));
  });
  // The bundle reports the version it was built as (the agent's AGENT_VERSION reads package.json).
  const pkgPath = join(opts.dest, "package.json");
  const pkg = JSON.parse(await readFile(pkgPath, "utf8")) as Record<string, unknown>;
  await writeFile(pkgPath, `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  const manifest: BundleManifest = { name: "easyenclave-agent", version };
  await writeFile(join(opts.dest, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(opts.dest, LAUNCHER), launcherScript(version), { mode: 0o755 });
}

/** Packs the bundle directory `dir` as `<tarPath>` (gzip), its files under one top folder named like `dir`. */
export async function packBundle(dir: string, tarPath: string): Promise<void> {
  // posix (pax) headers keep mtimes below the second, which bin/eectl.js compares to run the compiled eectl.
  const args = [
    "--format=posix",
    "--warning=no-file-changed",
    "-czf",
    tarPath,
    "-C",
    dirname(dir),
    basename(dir),
  ];
  await run("tar", args).catch((err: { code?: number; stderr?: string }) => {
    // Exit 1 alone means "a file changed as we read it": a hard-linked file's ctime moved when another bundle
    // linked or unlinked the same inode; its contents did not change.
    if (err.code !== 1 || err.stderr) throw err;
  });
}

/** Reads and checks a bundle directory: its manifest, and an executable launcher. */
export async function readBundle(dir: string, what: string): Promise<BundleManifest> {
  const bad = (why: string) =>
    new ValidationError("EE-CONFIG-INVALID", `${what}: not an agent bundle (${why})`);
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as BundleManifest;
  } catch {
    throw bad(`no readable ${MANIFEST}`);
  }
  if (manifest.name !== "easyenclave-agent" || typeof manifest.version !== "string") {
    throw bad(`${MANIFEST} must be {"name": "easyenclave-agent", "version": V}`);
  }
  checkVersion(manifest.version, `${what}: ${MANIFEST} version`);
  await access(join(dir, LAUNCHER), constants.X_OK).catch(() => {
    throw bad(`${LAUNCHER} is missing or not executable`);
  });
  return manifest;
}

/** A bundle copied into a scratch folder: `dir` is renamed into place, then `tmp` (its parent) removed. */
export interface StagedBundle {
  dir: string;
  tmp: string;
  manifest: BundleManifest;
}

/** Runs `fill` on a new folder under `scratch`; it returns the bundle's directory there. Nothing stays on failure. */
async function stage(
  scratch: string,
  what: string,
  fill: (tmp: string) => Promise<string>,
): Promise<StagedBundle> {
  const tmp = await mkdtemp(join(scratch, ".bundle-"));
  try {
    const dir = await fill(tmp);
    return { dir, tmp, manifest: await readBundle(dir, what) };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Copies the bundle at `path` (a directory or a tarball) into a new folder under `scratch`. */
export async function openBundle(path: string, scratch: string): Promise<StagedBundle> {
  const what = `--bundle ${path}`;
  const info = await stat(path).catch(() => {
    throw new ValidationError("EE-CONFIG-INVALID", `${what}: no such file or directory`);
  });
  return stage(scratch, what, async (tmp) => {
    if (info.isDirectory()) {
      await readBundle(path, what);
      const dir = join(tmp, "bundle");
      await cp(path, dir, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      return dir;
    }
    await run("tar", ["-xf", path, "-C", tmp, "--no-same-owner"]).catch((err: Error) => {
      throw new ValidationError("EE-CONFIG-INVALID", `${what}: cannot unpack (${err.message.trim()})`);
    });
    const top = await readdir(tmp);
    if (top.length !== 1) {
      throw new ValidationError("EE-CONFIG-INVALID", `${what}: expected one top-level folder in the tarball`);
    }
    return join(tmp, top[0]!);
  });
}

/** Builds the bundle for `version` from the running checkout into a new folder under `scratch`. */
export function buildStaged(version: string, scratch: string): Promise<StagedBundle> {
  return stage(scratch, "the built bundle", async (tmp) => {
    const dir = join(tmp, "bundle");
    await buildBundle({ version, dest: dir });
    return dir;
  });
}
