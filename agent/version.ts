// The agent's version as reported in register and health: the package version, read from package.json so
// there is one place to bump it. Read at run time (not an import the compiled eectl would inline), since an
// agent bundle rewrites its package.json's version. Imports package.json only.
import { createRequire } from "node:module";

export const AGENT_VERSION: string = (
  createRequire(import.meta.url)("../package.json") as { version: string }
).version;
