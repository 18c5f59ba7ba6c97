// GET /api/v2/events: the event log in pages (`after`, `limit`), its last N (`tail`), or followed as
// newline-delimited JSON (`follow=true`): what was asked for of the past, then every new event as it is written.
// A follower that stops reading is cut off like the other streams (stream.ts).
import { PassThrough } from "node:stream";
import type { Router } from "@koa/router";
import type Koa from "koa";
import type { EventQuery, EventRecord } from "../../contract/events.ts";
import { toEeError } from "../../spec/errors.ts";
import { eventJson } from "./json.ts";
import { boolParam, intParam, single } from "./query.ts";
import { dropIfUndrained, slowConsumer } from "./stream.ts";
import type { CpView } from "./view.ts";

/** A follower is an operator's terminal or a script: far less than this waits for it unless it stopped reading. */
export const EVENTS_FOLLOW_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** One page of the catch-up (the log's own page cap). */
const PAGE = 1000;

export interface EventsRouteOptions {
  maxBufferedBytes?: number;
  slowConsumerDrainMs?: number | undefined;
  /** Interval of keep-alive blank lines on a follow. */
  keepAliveMs?: number | undefined;
}

/**
 * The part of the log an account sees: the events of its own deployments (a tenant) or its own agents (a
 * provider). `refresh` re-reads what it owns, for a follow that meets a deployment created after it started.
 */
export interface EventScope {
  sees(r: EventRecord): boolean;
  refresh(): Promise<void>;
}

/** A principal's scope of the log: null for the admin (everything). */
export type EventScopeOf = (ctx: Koa.Context) => Promise<EventScope | null>;

/** How many pages an account's listing scans for its own events before it answers with what it found. */
const ACCOUNT_SCAN_PAGES = 20;

export function mountEvents(
  api: Router,
  view: CpView,
  opts: EventsRouteOptions = {},
  scopeOf: EventScopeOf = async () => null,
): void {
  api.get("/events", async (ctx) => {
    const after = intParam(ctx, "after", 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(ctx, "limit", 1, PAGE);
    const tail = intParam(ctx, "tail", 1, PAGE);
    const agentId = single(ctx, "agent_id");
    const kind = single(ctx, "kind");
    const filter = { ...(agentId ? { agentId } : {}), ...(kind ? { kind } : {}) };
    const scope = await scopeOf(ctx);
    if (!boolParam(ctx, "follow")) {
      ctx.body = {
        events: (scope
          ? scopedList(view, scope, { after, limit, tail, filter })
          : view.events({ after, limit, tail, ...filter })
        ).map(eventJson),
      };
      return;
    }
    follow(ctx, view, { after, tail, filter }, opts, scope);
  });
}

/** An account's listing: its own events among the next pages of the log (bounded), first `limit` or last `tail`. */
function scopedList(
  view: CpView,
  scope: EventScope,
  q: { after: number | undefined; limit: number | undefined; tail: number | undefined; filter: EventQuery },
): EventRecord[] {
  const want = q.tail ?? q.limit ?? 100;
  const out: EventRecord[] = [];
  let after = q.after ?? 0;
  for (let i = 0; i < ACCOUNT_SCAN_PAGES; i++) {
    const page = view.events({ ...q.filter, after, limit: PAGE });
    for (const r of page) if (scope.sees(r)) out.push(r);
    if (page.length < PAGE || (q.tail === undefined && out.length >= want)) break;
    after = page.at(-1)!.id;
  }
  return q.tail === undefined ? out.slice(0, want) : out.slice(-want);
}

/**
 * The follow stream. `last` is the highest id the stream has passed (sent, or skipped by the filter), so an event
 * is never sent twice or missed: the catch-up pages the log after it, then, in the same turn of the loop as its
 * last page, hands over to the log's follower, which gets every batch committed after that.
 */
function follow(
  ctx: Koa.Context,
  view: CpView,
  q: { after: number | undefined; tail: number | undefined; filter: { agentId?: string; kind?: string } },
  opts: EventsRouteOptions,
  scope: EventScope | null,
): void {
  const stream = new PassThrough();
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.set({ "Content-Type": "application/x-ndjson", "Cache-Control": "no-cache" });
  ctx.status = 200;
  ctx.body = stream;

  const cap = opts.maxBufferedBytes ?? EVENTS_FOLLOW_MAX_BUFFERED_BYTES;
  const matches = (r: EventRecord) =>
    (!q.filter.agentId || r.agent_id === q.filter.agentId) && (!q.filter.kind || r.kind === q.filter.kind);
  let last = 0;
  const send = (r: EventRecord) => {
    if (r.id <= last) return;
    last = r.id;
    if (matches(r) && (!scope || scope.sees(r))) stream.write(`${JSON.stringify(eventJson(r))}\n`);
  };

  let live = false;
  let ended = false;
  let endedNow!: () => void;
  const endedP = new Promise<void>((r) => {
    endedNow = r;
  });
  const deliver = (records: readonly EventRecord[]) => {
    if (ended) return;
    for (const r of records) send(r);
    const slow = slowConsumer(stream, ctx.res, cap, "the event stream");
    if (!slow) return;
    stream.write(`${JSON.stringify(slow.toBody())}\n`);
    done();
    dropIfUndrained(ctx.req.socket, opts.slowConsumerDrainMs);
  };
  // An account's batches go in order through one chain: a batch naming a deployment it does not know (yet) waits
  // for its owners to be read again, since the deployment may have been created after the follow started.
  let chain = Promise.resolve();
  const off = view.followEvents((records) => {
    if (!live || ended) return; // the catch-up reads these from the log
    if (!scope) return deliver(records);
    const unknown = records.some((r) => typeof r.data.deployment_id === "string" && !scope.sees(r));
    chain = chain
      .then(() => (unknown ? scope.refresh() : undefined))
      .then(() => deliver(records))
      .catch(() => done());
  });
  // Blank lines, which ndjson readers skip: one now, so the status and headers leave before the first event, then
  // one now and then, so that idle proxies and NATs keep a quiet follow open.
  stream.write("\n");
  const keepAlive = setInterval(() => stream.write("\n"), opts.keepAliveMs ?? 15_000);
  const done = () => {
    if (ended) return;
    ended = true;
    off();
    clearInterval(keepAlive);
    stream.end();
    endedNow();
  };
  ctx.req.on("close", done);
  stream.on("error", done);

  const catchUp = async () => {
    if (q.tail !== undefined)
      for (const r of view.events({ ...q.filter, after: q.after, tail: q.tail })) send(r);
    // Without `after` or `tail`, only what happens from now on: start at the newest event.
    else last = q.after ?? view.events({ tail: 1 }).at(-1)?.id ?? 0;
    for (;;) {
      const page = view.events({ ...q.filter, after: last, limit: PAGE });
      for (const r of page) send(r);
      if (page.length < PAGE) break;
      // Paced by the client: the next page once this one has left, so a long backlog is not held in memory.
      if (stream.writableNeedDrain) await Promise.race([new Promise((r) => stream.once("drain", r)), endedP]);
      if (ended) return;
    }
    live = true;
  };
  catchUp().catch((err: unknown) => {
    stream.write(`${JSON.stringify(toEeError(err).toBody())}\n`);
    done();
  });
}
