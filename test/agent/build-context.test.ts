// Build contexts are bounded by what they unpack to, streamed: a gzip bomb is refused with a stable code while the
// agent's memory stays flat; too many entries are refused too; a normal context (gzip or not) passes and re-roots.
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import test from "ava";
import { CONTEXT_LIMITS, checkContext, packTar, rerootContext } from "../../agent/runtime/build-context.ts";
import { ComposeError } from "../../spec/errors.ts";
import { MAX_CONTEXT_BYTES } from "../../spec/protocol.ts";
import { gzipBomb } from "../helpers/images.ts";

const MiB = 1024 * 1024;

test("a small gzip of 256 MiB of zeros is refused with EE-COMPOSE-CONTEXT-TOO-LARGE, memory flat", async (t) => {
  const bomb = await gzipBomb(256 * MiB);
  t.true(bomb.length < MAX_CONTEXT_BYTES, `${bomb.length} bytes passes the upload cap`);
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const err = await t.throwsAsync(checkContext(bomb), { instanceOf: ComposeError });
    t.is(err?.code, "EE-COMPOSE-CONTEXT-TOO-LARGE");
    t.regex(err!.message, new RegExp(`more than ${CONTEXT_LIMITS.bytes} bytes`));
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  t.true(peak - before < 64 * MiB, `rss grew ${((peak - before) / MiB).toFixed(1)} MiB`);
});

test("a context with more entries than allowed is refused; one within the limits passes", async (t) => {
  const files = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: "x" }));
  const err = await t.throwsAsync(checkContext(await packTar(files), { bytes: MiB, entries: 10 }), {
    instanceOf: ComposeError,
  });
  t.is(err?.code, "EE-COMPOSE-CONTEXT-TOO-LARGE");
  t.regex(err!.message, /more than 10 entries/);
  await t.notThrowsAsync(checkContext(await packTar(files.slice(0, 10)), { bytes: MiB, entries: 10 }));
  await t.notThrowsAsync(checkContext(gzipSync(await packTar(files))));
});

test("a context that is not gzip or tar is EE-COMPOSE-INVALID", async (t) => {
  const notTar = await t.throwsAsync(checkContext(Buffer.alloc(1024, 7)), { instanceOf: ComposeError });
  t.is(notTar?.code, "EE-COMPOSE-INVALID");
  const brokenGzip = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(64, 1)]);
  const notGzip = await t.throwsAsync(checkContext(brokenGzip), { instanceOf: ComposeError });
  t.is(notGzip?.code, "EE-COMPOSE-INVALID");
});

test("a gzip context re-roots to a service's folder, streamed", async (t) => {
  const context = gzipSync(await packTar([{ name: "app/Dockerfile", data: "FROM scratch\n" }]));
  const rerooted = await rerootContext(context, "app");
  const names: string[] = [];
  const extract = createRequire(import.meta.url)("tar-stream").extract();
  await new Promise<void>((resolve, reject) => {
    extract.on("entry", (h: { name: string }, s: Readable, next: () => void) => {
      names.push(h.name);
      s.on("end", next);
      s.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
    extract.end(rerooted);
  });
  t.deepEqual(names, ["Dockerfile"]);
});
