// Streamed responses (ndjson log follows, server-sent events) to clients that may stop reading: a stream that
// holds more than its cap for its client ends with EE-PROTO-SLOW-CONSUMER instead of buffering without bound.
// Imports spec/errors.
import type { ServerResponse } from "node:http";
import type { PassThrough } from "node:stream";
import { ProtocolError } from "../../spec/errors.ts";

/**
 * The error that ends `stream` when it holds more than `cap` bytes for its client (the pipe's buffers and the
 * response's, which include its socket's), else null.
 */
export function slowConsumer(
  stream: PassThrough,
  res: ServerResponse,
  cap: number,
  what: string,
): ProtocolError | null {
  if (stream.readableLength + stream.writableLength + res.writableLength <= cap) return null;
  return new ProtocolError(
    "EE-PROTO-SLOW-CONSUMER",
    `the client did not read ${what}; more than ${cap} bytes waited for it`,
  );
}
