// Parsing helpers shared by commands: host:port, positive integers, (the operator connection is cli/operator-command.ts).
import { ValidationError } from "../spec/errors.ts";

export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new ValidationError("EE-CONFIG-INVALID", `${flag}: expected HOST:PORT, got "${value}"`);
  return { host: (m[1] ?? m[2])!, port };
}

export function parsePositiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,12}$/.test(value) || Number(value) === 0) {
    throw new ValidationError("EE-CONFIG-INVALID", `${flag}: expected a positive integer, got "${value}"`);
  }
  return Number(value);
}
