// Helpers for command flags: the --json flag every operator command spells the same way, and parsing HOST:PORT,
// fractions and positive integers, each failing with EE-CONFIG-INVALID naming the flag.
import { Option } from "clipanion";
import { parseHostPort } from "../lib/host-port.ts";
import { ValidationError } from "../spec/errors.ts";

/** A `--json` flag, off by default; the description says what gets printed (EeCommand.print prints it). */
export function jsonFlag(description = "Print the REST response as JSON") {
  return Option.Boolean("--json", false, { description });
}

/** A HOST:PORT flag, or EE-CONFIG-INVALID naming the flag. */
export function hostPortFlag(value: string, flag: string): { host: string; port: number } {
  const hp = parseHostPort(value);
  if (!hp) throw new ValidationError("EE-CONFIG-INVALID", `${flag}: expected HOST:PORT, got "${value}"`);
  return hp;
}

/** A fraction in [0, 1], or EE-CONFIG-INVALID naming the flag. */
export function parseFraction(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^(0|1|0?\.\d{1,6}|1\.0*)$/.test(value) || !(n >= 0 && n <= 1)) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${flag}: expected a fraction from 0 to 1, got "${value}"`,
    );
  }
  return n;
}

export function parsePositiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,12}$/.test(value) || Number(value) === 0) {
    throw new ValidationError("EE-CONFIG-INVALID", `${flag}: expected a positive integer, got "${value}"`);
  }
  return Number(value);
}
