// GET /api/v2/events?follow=true against a real event log (SQLite in a temp dir) and real HTTP: the catch-up pages
// through a backlog larger than a page, hands over to the live batches without a gap or a repeat, and a follower
// that stops reading is cut off at the cap with an EE-PROTO-SLOW-CONSUMER line; `tail` gives the last N.
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import test, { type ExecutionContext } from "ava";
import { openDatabase } from "../../actors/store/db.ts";
import { EventLog, type EventRecord } from "../../actors/store/event-log.ts";
import type { CpView } from "../../transport/rest/view.ts";
import { waitFor } from "../helpers/cluster.ts";
import { REST_TOKEN, serveRest } from "../helpers/rest-app.ts";
import { tempDir } from "../helpers/temp.ts";

const CAP = 256 * 1024;

async function serve(t: ExecutionContext) {
  const db = openDatabase(tempDir(t));
  const events = new EventLog(db, (err) => t.fail(String(err)));
  t.teardown(() => db.close());
  let followers = 0;
  const view = {
    events: (q) => events.list(q),
    followEvents: (listener) => {
      followers++;
      const off = events.follow(listener);
      return () => {
        followers--;
        off();
      };
    },
  } as Partial<CpView> as CpView;
  const served = await serveRest(t, view, { eventsMaxBufferedBytes: CAP });
  const base = `http://127.0.0.1:${(served.server.address() as AddressInfo).port}/api/v2/events`;
  const open = (query: string) => served.open(`/api/v2/events?${query}`);
  const append = (n: number, kind = "test.event", pad = 0) => {
    for (let i = 0; i < n; i++) events.append({ at: Date.now(), kind, data: { i, pad: "x".repeat(pad) } });
    events.flush();
  };
  return { open, append, base, followers: () => followers };
}

function read(res: IncomingMessage): { lines: () => unknown[]; ended: Promise<void> } {
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (d: string) => {
    text += d;
  });
  return {
    lines: () =>
      text
        .split("\n")
        .slice(0, -1)
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    ended: new Promise((resolve) => res.on("end", resolve)),
  };
}

test("a follow from after=0 sends a backlog of several pages, then new events, each once and in order", async (t) => {
  const { open, append } = await serve(t);
  append(2500);
  const res = await open("follow=true&after=0");
  t.is(res.statusCode, 200);
  t.is(res.headers["content-type"], "application/x-ndjson");
  const got = read(res);
  await waitFor("the backlog", () => got.lines().length >= 2500 || undefined, 20_000);
  append(3, "test.new");
  await waitFor("the new events", () => got.lines().length >= 2503 || undefined, 20_000);
  const ids = (got.lines() as EventRecord[]).map((e) => e.id);
  t.deepEqual(
    ids,
    Array.from({ length: 2503 }, (_, i) => i + 1),
  );
});

test("a follow without after or tail sends only what is written from then on, filtered by kind", async (t) => {
  const { open, append } = await serve(t);
  append(5, "old");
  const res = await open("follow=true&kind=wanted");
  const got = read(res);
  append(2, "other");
  append(2, "wanted");
  await waitFor("two wanted events", () => got.lines().length >= 2 || undefined, 20_000);
  t.deepEqual(
    (got.lines() as EventRecord[]).map((e) => [e.id, e.kind]),
    [
      [8, "wanted"],
      [9, "wanted"],
    ],
  );
});

test("tail gives the last N in order, with follow too", async (t) => {
  const { open, append, base } = await serve(t);
  append(10);
  const page = (await (
    await fetch(`${base}?tail=3`, { headers: { authorization: `Bearer ${REST_TOKEN}` } })
  ).json()) as {
    events: EventRecord[];
  };
  t.deepEqual(
    page.events.map((e) => e.id),
    [8, 9, 10],
  );
  const got = read(await open("follow=true&tail=2"));
  append(1);
  await waitFor("tail and the new one", () => got.lines().length >= 3 || undefined, 20_000);
  t.deepEqual(
    (got.lines() as EventRecord[]).map((e) => e.id),
    [9, 10, 11],
  );
});

test("a follower that stops reading is cut off at the cap with an EE-PROTO-SLOW-CONSUMER line", async (t) => {
  const { open, append, followers } = await serve(t);
  const res = await open("follow=true");
  await waitFor("the follow to go live", () => followers() === 1 || undefined);
  res.pause();
  // About 1 KiB an event, a batch per turn of the loop, up to far more than the cap and the loopback buffers.
  let written = 0;
  while (written < 48 * 1024 && followers() > 0) {
    append(64, "bulk", 1000);
    written += 64;
    await new Promise((r) => setImmediate(r));
  }
  t.is(followers(), 0, "the stream stopped following");
  const got = read(res);
  res.resume();
  await got.ended;
  const lines = got.lines();
  t.like(lines.at(-1), { error: { code: "EE-PROTO-SLOW-CONSUMER" } });
  t.is(lines.length - 1, written, "every event up to the cut-off, then the error");
  t.true(written < 48 * 1024, `cut off after ${written} events of about 1 KiB`);
});
