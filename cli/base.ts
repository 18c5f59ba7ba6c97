// Base class of every eectl command: one place that turns typed errors into `eectl: CODE: message` on stderr
// and an exit status, so no command prints a stack trace for an expected failure.
import { Command } from "clipanion";
import { EeError } from "../spec/errors.ts";
import { RestError } from "./rest-client.ts";

export abstract class EeCommand extends Command {
  abstract run(): Promise<number | undefined>;

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0;
    } catch (err) {
      if (err instanceof EeError || err instanceof RestError) {
        this.context.stderr.write(`eectl: ${err.code}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
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
