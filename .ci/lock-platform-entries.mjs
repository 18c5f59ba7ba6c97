#!/usr/bin/env node
// Run after any `npm install` that changes package-lock.json. The registry mirror these machines reach lacks
// some other-platform builds of optional native packages (e.g. @biomejs/cli-darwin-arm64), so npm leaves them
// out of the lock and `npm ci` then refuses the lock as out of sync. This adds an entry for each such package
// with its os/cpu/libc constraints: npm ci skips them on a non-matching platform and never fetches them.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2] ?? "package-lock.json";
const lock = JSON.parse(readFileSync(file, "utf8"));
const pk = lock.packages;
const added = [];
for (const meta of Object.values(pk)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    const m = /-(android|darwin|linux|win32|freebsd)-(arm64|x64|arm|ia32)(-musl)?$/.exec(name);
    if (pk[key] || !m) continue;
    const entry = { version, cpu: [m[2]], os: [m[1]], optional: true };
    if (m[3]) entry.libc = ["musl"];
    else if (m[1] === "linux") entry.libc = ["glibc"];
    if (meta.dev) entry.dev = true;
    pk[key] = entry;
    added.push(`${name}@${version}`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(pk).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added.length} platform entries${added.length ? `: ${added.join(" ")}` : ""}`);
