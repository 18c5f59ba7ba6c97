// Logging for every program: pino JSON lines on stderr (stdout stays for command output and --json).
// Secrets never go into a log call; redact paths below are the last line of defence, not the policy.
import { type Logger, pino } from "pino";
import { ValidationError } from "../spec/errors.ts";

export type { Logger };

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** A logger at `level`, else `EE_LOG_LEVEL`, else info; an unknown level is EE-CONFIG-INVALID, not a crash. */
export function createLogger(name: string, level = process.env.EE_LOG_LEVEL || "info"): Logger {
  if (!LEVELS.includes(level))
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `EE_LOG_LEVEL: expected one of ${LEVELS.join(", ")}, got "${level}"`,
    );
  return pino(
    {
      name,
      level,
      redact: {
        paths: ["*.token", "*.secret", "*.admin_token", "*.authorization", "*.private_key"],
        censor: "[redacted]",
      },
    },
    pino.destination(2),
  );
}

/** A logger that drops everything: the default in tests that do not assert on logs. */
export const silentLogger: Logger = pino({ level: "silent" });
