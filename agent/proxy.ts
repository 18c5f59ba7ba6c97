// The agent's reverse proxy to its workload: plain HTTP requests are piped to the target with node:http, and
// upgrades (WebSocket and any other Upgrade) become a TCP tunnel after the target's 101. Hop-by-hop headers are
// stripped both ways; X-Forwarded-For/-Proto/-Host say what the agent saw. Refusals are the API's JSON errors.
// May import node:http, node:net, spec/errors.ts and lib/log.ts (types).
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "../lib/log.ts";
import { type EeError, GatewayError } from "../spec/errors.ts";

export interface ProxyTarget {
  host: string;
  port: number;
  /** Counts a forwarded request against this target; the proxy calls the release when it has finished. */
  hold?: () => () => void;
}

export interface WorkloadProxy {
  /** Answers the request with the workload's response, or with a GatewayError. */
  forward(req: IncomingMessage, res: ServerResponse): void;
  /** For the server's `upgrade` event: tunnels the connection to the workload, or refuses it. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Destroys every open tunnel: the HTTP server stops tracking a socket once it is upgraded. */
  closeTunnels(): void;
}

// RFC 9110 §7.6.1, plus the non-standard ones still seen in the wild.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** The end-to-end headers: without hop-by-hop ones, including those the Connection header names. */
function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    (headers.connection ?? "")
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) out[name] = value;
  return out;
}

/**
 * X-Forwarded-For is appended to (the last entry is the peer the agent saw); -Proto and -Host are replaced,
 * because the agent serves plain HTTP and a client could claim anything there.
 */
function requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
  const headers = endToEnd(req.headers);
  const peer = req.socket.remoteAddress;
  const prior = req.headers["x-forwarded-for"];
  if (peer) headers["x-forwarded-for"] = prior ? `${prior}, ${peer}` : peer;
  headers["x-forwarded-proto"] = "http";
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  else delete headers["x-forwarded-host"];
  return headers;
}

function errorJson(err: EeError): string {
  return JSON.stringify(err.toBody());
}

function sendError(res: ServerResponse, err: EeError): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorJson(err);
  res.writeHead(err.httpStatus, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

/** Answers an upgrade request on its raw socket (no ServerResponse exists for it) and closes it. */
export function refuseUpgrade(socket: Duplex, err: EeError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = errorJson(err);
  socket.end(
    `HTTP/1.1 ${err.httpStatus} ${STATUS_CODES[err.httpStatus] ?? ""}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Connection: close\r\n\r\n" +
      body,
  );
}

function headBlock(status: number, message: string | undefined, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${message ?? STATUS_CODES[status] ?? ""}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

function rawPairs(headers: OutgoingHttpHeaders): string[] {
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push(name, String(v));
  }
  return pairs;
}

export function createWorkloadProxy(opts: { target: () => ProxyTarget | null; log: Logger }): WorkloadProxy {
  const tunnels = new Set<Duplex>();
  const none = () => new GatewayError("EE-WORKLOAD-NONE", "no workload is running to proxy to");
  const unreachable = (err: NodeJS.ErrnoException, target: ProxyTarget) => {
    // The target's address is the TD's business: logged, not told to the caller.
    opts.log.warn({ code: err.code, port: target.port }, "workload did not answer the proxy");
    return new GatewayError("EE-WORKLOAD-UNREACHABLE", "the workload did not answer");
  };

  function track(socket: Duplex): void {
    tunnels.add(socket);
    socket.once("close", () => tunnels.delete(socket));
  }

  return {
    forward(req, res) {
      const target = opts.target();
      if (!target) return sendError(res, none());
      const release = target.hold?.();
      if (release) res.once("close", release);
      const upstream = request({
        host: target.host,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: requestHeaders(req),
      });
      upstream.on("response", (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.headers));
        upRes.on("error", () => res.destroy());
        upRes.pipe(res);
      });
      // Before the response it is the workload not answering; after, a broken stream the client sees as such.
      upstream.on("error", (err) => {
        if (res.headersSent) res.destroy();
        else sendError(res, unreachable(err, target));
      });
      req.on("error", () => upstream.destroy());
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.pipe(upstream);
    },

    upgrade(req, socket, head) {
      socket.on("error", () => socket.destroy());
      const target = opts.target();
      if (!target) return refuseUpgrade(socket, none());
      const headers = requestHeaders(req);
      headers.connection = "Upgrade";
      if (req.headers.upgrade) headers.upgrade = req.headers.upgrade;
      const upstream = request({
        host: target.host,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
      });
      socket.once("close", () => upstream.destroy());
      let answered = false;

      upstream.on("upgrade", (upRes, upSocket, upHead) => {
        answered = true;
        upSocket.on("error", () => upSocket.destroy());
        if (!socket.writable) {
          upSocket.destroy();
          return;
        }
        // The 101 goes out as the workload wrote it: Connection, Upgrade and Sec-WebSocket-Accept belong to it.
        socket.write(headBlock(upRes.statusCode ?? 101, upRes.statusMessage, upRes.rawHeaders));
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        track(socket);
        track(upSocket);
        socket.once("close", () => upSocket.destroy());
        upSocket.once("close", () => socket.destroy());
        upSocket.pipe(socket);
        socket.pipe(upSocket);
      });
      // The workload declined to upgrade: relay its ordinary answer and close.
      upstream.on("response", (upRes) => {
        answered = true;
        const headers = endToEnd(upRes.headers);
        headers.connection = "close";
        socket.write(headBlock(upRes.statusCode ?? 502, upRes.statusMessage, rawPairs(headers)));
        upRes.on("error", () => socket.destroy());
        upRes.pipe(socket);
      });
      upstream.on("error", (err) => {
        if (answered) socket.destroy();
        else refuseUpgrade(socket, unreachable(err, target));
      });
      upstream.end();
    },

    closeTunnels() {
      for (const socket of tunnels) socket.destroy();
    },
  };
}
