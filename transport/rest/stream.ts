// Streamed responses (ndjson log follows, server-sent events) to clients that may stop reading: a stream that
// holds more than its cap for its client ends with EE-PROTO-SLOW-CONSUMER instead of buffering without bound, and
// its connection is dropped if the client does not read the rest soon. Imports spec/errors.
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
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

/** How long a slow consumer's ended stream may sit unread before its connection is dropped. */
export const SLOW_CONSUMER_DRAIN_MS = 30_000;

/**
 * Drops the connection unless the client reads (or the socket otherwise moves) within `ms`: streams turn the
 * socket timeout off, so without this an ended stream's backlog is held until the client goes away.
 */
export function dropIfUndrained(socket: Socket, ms: number = SLOW_CONSUMER_DRAIN_MS): void {
  socket.setTimeout(ms, () => socket.destroy());
}
