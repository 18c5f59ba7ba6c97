// docs/environment.md must match the code: every environment variable a program or script reads (process.env.X,
// a config chain's env.X, a shell launcher's $EE_…/$EASYENCLAVE_…) has a row, and every row is read somewhere.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { REPO } from "../helpers/cluster.ts";

const READS = [
  /process\.env\.([A-Za-z_][A-Za-z0-9_]*)/g,
  /process\.env\[["']([^"']+)["']\]/g,
  /\benv\.([A-Z][A-Z0-9_]*)\b/g,
  /\$\{?((?:EE|EASYENCLAVE)_[A-Z0-9_]+)/g,
];

/** The sources that run: .ts and .js outside node_modules, dist/ (built from them), dot-folders and the tests. */
function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "dist") continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) sources(path, out);
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const read = new Map<string, string>();
for (const file of sources(REPO)) {
  const text = readFileSync(file, "utf8");
  for (const re of READS)
    for (const m of text.matchAll(re)) if (!read.has(m[1]!)) read.set(m[1]!, file.slice(REPO.length));
}
const doc = readFileSync(join(REPO, "docs/environment.md"), "utf8");
const rows = [...doc.matchAll(/^\| `([A-Z_][A-Z0-9_]*)`/gm)].map((m) => m[1]!);

test("every environment variable the code reads has a row in docs/environment.md", (t) => {
  t.true(read.has("EE_LOG_LEVEL") && read.has("EASYENCLAVE_CONFIG"), "the scan finds reads");
  const missing = [...read]
    .filter(([name]) => !rows.includes(name))
    .map(([name, file]) => `${name} (${file})`);
  t.deepEqual(missing, []);
});

test("every row of docs/environment.md is read by the code", (t) => {
  t.deepEqual(
    rows.filter((name) => !read.has(name)),
    [],
  );
});
