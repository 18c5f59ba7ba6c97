// The CP's one HTTP(S) server: the REST app's callback, the agent channel's upgrades, the request deadlines, the
// listen backlog and TLS reloading. Imports lib/ (listen, TLS files) and the transport types it serves.
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { listenOn } from "../lib/listen.ts";
import { loadServerTls, type ServerTls, type ServerTlsFiles } from "../lib/tls-files.ts";
import type { AgentChannel } from "../transport/ws-server.ts";

/**
 * Pending connections the kernel queues for accept (capped by net.core.somaxconn, 4096 by default on Linux).
 * Node's default of 511 overflowed in every registration storm: at 10,000 agents reconnecting at once, tens of
 * thousands of SYNs were dropped and retried a second or more later (test/load, `nstat` ListenOverflows).
 */
const LISTEN_BACKLOG = 4096;

export interface HttpServerOptions {
  host: string;
  port: number;
  /** How the operator names the listen address, for EE-LISTEN-* messages. */
  setting: string;
  timeouts: { headersTimeoutMs: number; requestTimeoutMs: number; checkIntervalMs: number };
  /** The pair loaded at start, and the files reloadTls reads again. */
  tls: { loaded: ServerTls; files: ServerTlsFiles } | null;
}

export interface HttpServer {
  server: Server;
  port: number;
  reloadTls: (() => ServerTls) | null;
  /** Closes the agent channel (1001 to every agent) first, then every other connection and the server. */
  close(): Promise<void>;
}

/** Serves `app` and the agent channel's upgrades on one port; throws a StartupError when it cannot listen. */
export async function serveHttp(
  o: HttpServerOptions,
  app: RequestListener,
  channel: AgentChannel,
): Promise<HttpServer> {
  // The same request deadlines over https: a slow client must be cut there too.
  const serverOptions = {
    headersTimeout: o.timeouts.headersTimeoutMs,
    requestTimeout: o.timeouts.requestTimeoutMs,
    connectionsCheckingInterval: o.timeouts.checkIntervalMs,
  };
  const { tls } = o;
  const httpsServer = tls
    ? createHttpsServer({ ...serverOptions, cert: tls.loaded.cert, key: tls.loaded.key }, app)
    : null;
  const server = httpsServer ?? createServer(serverOptions, app);
  channel.attach(server);
  await listenOn(server, { host: o.host, port: o.port, setting: o.setting, backlog: LISTEN_BACKLOG });
  // setSecureContext changes what new handshakes get; an open TLS connection keeps the context it was made with.
  const reloadTls =
    httpsServer && tls
      ? () => {
          const next = loadServerTls(tls.files);
          httpsServer.setSecureContext({ cert: next.cert, key: next.key });
          return next;
        }
      : null;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    reloadTls,
    close: async () => {
      await channel.shutdown();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
