// The agent's environment file (agent.env): KEY="VALUE" lines that systemd's EnvironmentFile= and the
// --no-systemd supervisor read the same way. Values are double-quoted with `\` and `"` escaped (systemd undoes
// exactly those inside double quotes); newlines and NUL are refused. Imports spec/errors only.
import { ValidationError } from "../spec/errors.ts";

const KEY = /^[A-Z_][A-Z0-9_]*$/;

/** Parses --env K=V flags; EE-CONFIG-INVALID names the bad pair. Later pairs win over earlier ones. */
export function parseEnvPairs(pairs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !KEY.test(key)) {
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--env ${JSON.stringify(pair)}: expected KEY=VALUE with KEY matching ${KEY.source}`,
      );
    }
    const value = pair.slice(eq + 1);
    if (/[\n\r\0]/.test(value)) {
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        `--env ${key}: the value must not contain a newline or NUL`,
      );
    }
    out.set(key, value);
  }
  return out;
}

export function renderEnvFile(vars: ReadonlyMap<string, string>): string {
  const lines = ["# Written by eectl install; edits are replaced by the next `eectl install agent`."];
  for (const [key, value] of vars) lines.push(`${key}="${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  return `${lines.join("\n")}\n`;
}

/** Reads what renderEnvFile wrote (and plain unquoted KEY=VALUE lines); comments and blank lines are skipped. */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    const raw = m[2]!.trim();
    const quoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"');
    out.set(m[1]!, quoted ? raw.slice(1, -1).replace(/\\([\\"`$])/g, "$1") : raw);
  }
  return out;
}
