// Logging for every program, on stderr (stdout stays for command output and --json): human-readable lines when
// stderr is a terminal, pino JSON lines otherwise (for journald and log collectors); EE_LOG_FORMAT=pretty|json
// overrides the choice, EE_LOG_LEVEL the level. Secrets never go into a log call; redact paths below are the last
// line of defence, not the policy.
import { createRequire } from "node:module";
import { type Logger, pino } from "pino";
import type { PrettyOptions } from "pino-pretty";
import { ValidationError } from "../spec/errors.ts";

export type { Logger };

export type LogFormat = "pretty" | "json";

/** Where log lines go: stderr by default; npm start holds them until its banner is out (lib/held-output.ts). */
export interface LogOutput {
  write(line: string): unknown;
  isTTY?: boolean;
}

/** Pretty on a terminal, JSON otherwise; EE_LOG_FORMAT wins when it names one. */
export function logFormat(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const forced = env.EE_LOG_FORMAT;
  if (forced === "pretty" || forced === "json") return forced;
  return isTTY ? "pretty" : "json";
}

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** A logger at `level`, else `EE_LOG_LEVEL`, else info; an unknown level is EE-CONFIG-INVALID, not a crash. */
export function createLogger(
  name: string,
  level = process.env.EE_LOG_LEVEL || "info",
  output?: LogOutput,
): Logger {
  if (!LEVELS.includes(level))
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `EE_LOG_LEVEL: expected one of ${LEVELS.join(", ")}, got "${level}"`,
    );
  const options = {
    name,
    level,
    redact: {
      paths: ["*.token", "*.secret", "*.admin_token", "*.authorization", "*.private_key"],
      censor: "[redacted]",
    },
  };
  const out = output ?? process.stderr;
  if (logFormat(out.isTTY === true) === "pretty") return pino(options, prettyOutput(out));
  return pino(options, output ?? pino.destination(2));
}

/**
 * Formats each JSON line as it is written, synchronously (nothing is left in a stream when the process exits).
 * pino-pretty is loaded here, only for a terminal, so programs logging JSON never pay for it.
 */
function prettyOutput(out: LogOutput): LogOutput {
  const { prettyFactory } = createRequire(import.meta.url)("pino-pretty") as {
    prettyFactory(o: PrettyOptions): (line: string) => string;
  };
  const format = prettyFactory({
    colorize: out.isTTY === true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  return { write: (line) => out.write(format(line)) };
}

/** A logger that drops everything: the default in tests that do not assert on logs. */
export const silentLogger: Logger = pino({ level: "silent" });
