// Builds the agent bundle for a release: `npx tsx scripts/build-agent-bundle.ts [--version V] [--out DIR]`
// writes DIR/easyenclave-agent-V/ and DIR/easyenclave-agent-V.tar.gz (DIR defaults to dist/, V to package.json's
// version) from this checkout after `npm ci`, offline. The same code builds the bundle `eectl install agent`
// uses when given no --bundle. Imports installer/bundle.
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildBundle, checkVersion, packBundle, SOURCE_ROOT, sourceVersion } from "../installer/bundle.ts";
import { buildCli } from "./build-cli.ts";

const { values } = parseArgs({
  options: { version: { type: "string" }, out: { type: "string", default: join(SOURCE_ROOT, "dist") } },
});
const version = checkVersion(values.version ?? (await sourceVersion()));
const out = resolve(values.out);
const dir = join(out, `easyenclave-agent-${version}`);
const tarball = `${dir}.tar.gz`;
await mkdir(out, { recursive: true });
await rm(dir, { recursive: true, force: true });
// The bundle ships the compiled eectl: build it from the sources as they are.
await buildCli();
await buildBundle({ version, dest: dir });
await packBundle(dir, tarball);
process.stdout.write(`${dir}\n${tarball}\n`);
