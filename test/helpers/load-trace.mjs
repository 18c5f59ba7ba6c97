// `node --import ./test/helpers/load-trace.mjs PROGRAM`: appends the URL of every module PROGRAM resolves, one a
// line, to the file named by $EE_LOAD_TRACE. Plain JavaScript, so that tracing does not itself load tsx.
// The module registers itself as the loader hooks, which Node runs off the main thread.
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.EE_LOAD_TRACE, `${resolved.url}\n`);
  return resolved;
}
