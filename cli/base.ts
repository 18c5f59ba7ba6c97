// Base class of every eectl command, and the one place that turns a failure into output: with `--json` the
// contract's error object `{"error": {code, message, details?}}` as one line on stdout, else
// `eectl: CODE: message` on stderr; exit 1 either way, and no stack trace. A failure without a code of ours is a
// bug, not an operator's mistake: it is reported as EE-INTERNAL with its message (the stack with EE_DEBUG=1).
import type { Writable } from "node:stream";
import { Command } from "clipanion";
import { EeError, type ErrorBody } from "../spec/errors.ts";
import { RestError } from "./rest-client.ts";

/** The contract's error object for anything thrown. */
export function errorBody(err: unknown): ErrorBody {
  if (err instanceof EeError) return err.toBody();
  if (err instanceof RestError) {
    const body = { code: err.code, message: err.message } as ErrorBody["error"];
    if (err.details !== undefined) body.details = err.details;
    return { error: body };
  }
  return { error: { code: "EE-INTERNAL", message: err instanceof Error ? err.message : String(err) } };
}

/** Prints a failure the way every eectl command does (see the top of this file) and returns the exit status. */
export function reportFailure(
  err: unknown,
  asJson: boolean,
  out: { stdout: Writable; stderr: Writable },
): number {
  const body = errorBody(err);
  if (asJson) out.stdout.write(`${JSON.stringify(body)}\n`);
  else out.stderr.write(`eectl: ${body.error.code}: ${body.error.message}\n`);
  if (process.env.EE_DEBUG === "1" && err instanceof Error && err.stack) out.stderr.write(`${err.stack}\n`);
  return 1;
}

export abstract class EeCommand extends Command {
  abstract run(): Promise<number | undefined>;

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0;
    } catch (err) {
      return reportFailure(err, this.jsonOutput(), this.context);
    }
  }

  /** Whether the command was asked for JSON: the `asJson` field every command with `--json` declares (jsonFlag). */
  jsonOutput(): boolean {
    return (this as { asJson?: unknown }).asJson === true;
  }

  /** Writes a value as one JSON document on stdout (for --json). */
  json(value: unknown): void {
    this.context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** With --json the value as JSON, else the text `render` makes of it for people (a table, `key: value` lines). */
  print<T>(asJson: boolean, value: T, render: (value: T) => string): void {
    if (asJson) this.json(value);
    else this.context.stdout.write(render(value));
  }
}
