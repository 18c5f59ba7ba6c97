// The agent's version as reported in register and health: the package version, read from package.json so
// there is one place to bump it. Imports package.json only.
import pkg from "../package.json" with { type: "json" };

export const AGENT_VERSION: string = pkg.version;
