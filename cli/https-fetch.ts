// fetch for an https control plane whose certificate chains to a private CA (--cacert / EE_CACERT): Node 20's
// fetch cannot be given CAs without the undici package, so this speaks node:https with `ca` and hands back a
// standard Response (streamed body, status, headers), which is all RestClient uses. Loaded only when a CA is
// set, so other commands never pay for it. Imports node:https and node:stream.
import { request } from "node:https";
import { Readable } from "node:stream";

/** Statuses whose Response must have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

export function fetchTrusting(ca: string): (url: string, init: RequestInit) => Promise<Response> {
  return (url, init) =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: init.method ?? "GET",
          headers: init.headers as Record<string, string>,
          ca,
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 502;
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers))
            for (const one of [value ?? []].flat()) headers.append(name, one);
          if (NULL_BODY.has(status)) res.resume();
          const body = NULL_BODY.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
          resolve(new Response(body, { status, headers }));
        },
      );
      req.once("error", reject);
      req.end(typeof init.body === "string" ? init.body : undefined);
    });
}
