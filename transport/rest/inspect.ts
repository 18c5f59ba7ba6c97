// REST routes that stream a live actor's Stately-inspector events as newline-delimited JSON (admin only, like
// all of /api/v2): an agent's session actor and a deployment's actor. The stream starts with where the actor is
// now and ends when the actor does; a client that stops reading is cut off as log follows are (stream.ts).
import { PassThrough } from "node:stream";
import type { Router } from "@koa/router";
import type Koa from "koa";
import { afterQueuedEvents, type StatelyEvent } from "../inspection.ts";
import { adminRoute } from "./guard.ts";
import { dropIfUndrained, slowConsumer } from "./stream.ts";

/** Attaches `emit` to the live actor; `end` when it is gone. Returns the detach function; throws NotFoundError. */
export type Inspect = (
  id: string,
  emit: (event: StatelyEvent) => void,
  end: () => void,
) => Promise<() => void>;

export interface InspectionPort {
  agent: Inspect;
  deployment: Inspect;
}

/**
 * What an inspection stream may hold for its client: a snapshot is a few KiB, a busy agent makes a few a second,
 * so a client that reads is never near this; one that does not is dropped instead of buffered without bound.
 */
export const INSPECT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function mountInspection(
  api: Router,
  port: InspectionPort,
  opts: { slowConsumerDrainMs?: number } = {},
): void {
  const route = (kind: keyof InspectionPort) => async (ctx: Koa.Context) => {
    const stream = new PassThrough();
    let ended = false;
    let detach: (() => void) | null = null;
    const finish = () => {
      if (ended) return;
      ended = true;
      detach?.();
      stream.end();
    };
    const emit = (event: StatelyEvent) => {
      if (ended) return;
      stream.write(`${JSON.stringify(event)}\n`);
      const slow = slowConsumer(stream, ctx.res, INSPECT_MAX_BUFFERED_BYTES, "the inspection stream");
      if (!slow) return;
      stream.write(`${JSON.stringify(slow.toBody())}\n`);
      finish();
      dropIfUndrained(ctx.req.socket, opts.slowConsumerDrainMs);
    };
    ctx.req.on("close", finish);
    stream.on("error", finish);
    // The actor's last events are still queued when it ends: the stream ends after them.
    detach = await port[kind](ctx.params.id!, emit, () => afterQueuedEvents(finish));
    if (ended) detach();
    ctx.req.socket.setTimeout(0);
    ctx.set({ "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache" });
    ctx.status = 200;
    ctx.body = stream;
  };
  // Admin only: machine contexts are the runtime's internals, not a tenant's view.
  api.get("/agents/:id/inspect", adminRoute, route("agent"));
  api.get("/deployments/:id/inspect", adminRoute, route("deployment"));
}
