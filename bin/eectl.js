#!/usr/bin/env node
// eectl entry point. Runs the compiled program in dist/eectl/ (scripts/build-cli.ts; `npm ci`, `npm test` and
// `npm start` build it) when every source it was built from is unchanged, else the TypeScript sources through
// tsx: slower, never stale. Checking costs one stat per source, well under a millisecond.
import { readFileSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);
const dist = new URL("dist/eectl/", root);

/** Whether dist/eectl was built from the sources as they are now (same mtimes as its inputs.json records). */
function built() {
  try {
    const { inputs } = JSON.parse(readFileSync(new URL("inputs.json", dist), "utf8"));
    // Within 2 ms: a copy that keeps timestamps (an agent bundle's) keeps them to the millisecond only.
    return Object.entries(inputs).every(
      ([file, mtime]) => Math.abs(statSync(new URL(file, root)).mtimeMs - mtime) < 2,
    );
  } catch {
    return false;
  }
}

if (built()) {
  await import(new URL("main.js", dist).href);
} else {
  if (process.stderr.isTTY)
    process.stderr.write("eectl: running from the sources (slower); `npm run build` compiles them\n");
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
}
