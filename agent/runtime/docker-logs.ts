// Decoding of the Docker engine's log stream for containers without a TTY: 8-byte frame headers (stream type,
// payload size) interleave stdout and stderr; each line starts with the engine's RFC 3339 timestamp.
// Imports the runtime port's types only.
import type { LogLine } from "./runtime.ts";

const HEADER = 8;
const STREAMS: Record<number, LogLine["stream"]> = { 1: "stdout", 2: "stderr" };

/**
 * The engine trims trailing zeros of RFC3339Nano fractions; padding them to nine digits makes the strings sort
 * in time order.
 */
function normalizeTimestamp(ts: string): string | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(ts);
  return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}Z` : null;
}

/** Turns frame chunks (in any split) into log lines, one partial line per stream carried between chunks. */
export class LogDecoder {
  #pending: Buffer = Buffer.alloc(0);
  #partial: Record<LogLine["stream"], string> = { stdout: "", stderr: "" };
  readonly #service: string;
  readonly #emit: (line: LogLine) => void;

  constructor(service: string, emit: (line: LogLine) => void) {
    this.#service = service;
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= HEADER) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < HEADER + size) break;
      const stream = STREAMS[this.#pending[0]!];
      const text = this.#pending.subarray(HEADER, HEADER + size).toString("utf8");
      this.#pending = this.#pending.subarray(HEADER + size);
      if (stream) this.#text(stream, text);
    }
  }

  /** Flushes lines that ended without a newline. */
  end(): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.#partial[stream] !== "") this.#line(stream, this.#partial[stream]);
      this.#partial[stream] = "";
    }
  }

  #text(stream: LogLine["stream"], text: string): void {
    const parts = (this.#partial[stream] + text).split("\n");
    this.#partial[stream] = parts.pop()!;
    for (const line of parts) this.#line(stream, line);
  }

  #line(stream: LogLine["stream"], raw: string): void {
    const space = raw.indexOf(" ");
    const ts = space > 0 ? normalizeTimestamp(raw.slice(0, space)) : null;
    const text = ts ? raw.slice(space + 1) : raw;
    this.#emit({
      service: this.#service,
      stream,
      ts: ts ?? new Date().toISOString(),
      text: text.replace(/\r$/, ""),
    });
  }
}
