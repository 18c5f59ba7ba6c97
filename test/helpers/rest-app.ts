// The REST app (transport/rest/app.ts) in-process over a view the test stands in for, on a loopback port, with a
// raw node:http client: the stream tests need one that can stop reading, which fetch cannot.
import { createServer, get, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ExecutionContext } from "ava";
import { silentLogger } from "../../lib/log.ts";
import { hashToken } from "../../lib/token-digest.ts";
import { createRestApp, type RestOptions } from "../../transport/rest/app.ts";
import type { CpView } from "../../transport/rest/view.ts";

export const REST_TOKEN = "test-admin-token-0123456789";

export interface ServedRest {
  server: Server;
  /** GETs `path` with the admin token; the response is destroyed when the test ends. */
  open(path: string): Promise<IncomingMessage>;
}

export async function serveRest(
  t: ExecutionContext,
  view: CpView,
  opts: Partial<Omit<RestOptions, "view">> = {},
): Promise<ServedRest> {
  const app = createRestApp({
    view,
    adminTokenDigest: hashToken(REST_TOKEN),
    openapi: () => ({}),
    log: silentLogger,
    ...opts,
  });
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const open = (path: string) =>
    new Promise<IncomingMessage>((resolve, reject) =>
      get(`${base}${path}`, { headers: { authorization: `Bearer ${REST_TOKEN}` } }, resolve).on(
        "error",
        reject,
      ),
    ).then((res) => {
      t.teardown(() => res.destroy());
      return res;
    });
  return { server, open };
}
