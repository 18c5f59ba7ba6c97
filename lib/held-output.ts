// An output that keeps what is written until release(), then passes everything through: `npm start` holds the
// CP's and the agent's log lines while it starts them, so they follow its banner instead of breaking it up.
import type { LogOutput } from "./log.ts";

export class HeldOutput implements LogOutput {
  readonly isTTY: boolean;
  readonly #target: NodeJS.WritableStream & { isTTY?: boolean };
  #held: string[] | null = [];

  constructor(target: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.#target = target;
    this.isTTY = target.isTTY === true;
    // A start that fails before release() must not swallow the lines that say why.
    process.once("exit", () => this.release());
  }

  write(line: string): void {
    if (this.#held) this.#held.push(line);
    else this.#target.write(line);
  }

  /** Writes what was held, in order, and lets every later line through at once. */
  release(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    if (held.length > 0) this.#target.write(held.join(""));
  }
}
