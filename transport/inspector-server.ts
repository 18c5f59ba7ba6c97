// The serving end of `--serve HOST:PORT` / `eectl agent --inspect HOST:PORT`: on HOST:PORT, `GET /` is a page that
// embeds the Stately inspector (https://stately.ai/inspect) and feeds it from this server's WebSocket, which sends
// every inspection event as one JSON text message. That is the protocol of @statelyai/inspect/server (whose page
// this mirrors), so its createWebSocketReceiver reads it too; unlike that server, this one binds HOST only, reports
// a busy port as an error, and shows late joiners where each actor is now (its `@xstate.actor` and latest
// `@xstate.snapshot`) rather than the last 200 events.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { ValidationError } from "../spec/errors.ts";
import type { StatelyEvent } from "./inspection.ts";

export const STATELY_INSPECTOR_URL = "https://stately.ai/inspect";
/** Actors remembered for late joiners; the oldest are forgotten first (a long-lived agent deploys many times). */
const MAX_ACTORS = 1000;
/** A viewer whose socket holds more than this unsent is dropped instead of buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface InspectorServer {
  /** The page to open in a browser. */
  url: string;
  /** The WebSocket the page (or any receiver) reads events from. */
  wsUrl: string;
  send(event: StatelyEvent): void;
  /** Closes every viewer and the listener. */
  close(): Promise<void>;
}

/** The bridge page: the Stately inspector in an iframe, sent each event once it says it is connected. */
const PAGE = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>EasyEnclave: Stately inspector</title>
<style>html, body, iframe { margin: 0; width: 100%; height: 100%; border: 0; }</style>
</head>
<body>
<iframe id="inspector" src="${STATELY_INSPECTOR_URL}"></iframe>
<script>
  const frame = document.getElementById("inspector");
  const waiting = [];
  let connected = false;
  window.addEventListener("message", (e) => {
    if (!e.data || e.data.type !== "@statelyai.connected") return;
    connected = true;
    for (const event of waiting.splice(0)) frame.contentWindow.postMessage(event, "*");
  });
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host);
  ws.onmessage = (m) => {
    const event = JSON.parse(m.data);
    if (connected) frame.contentWindow.postMessage(event, "*");
    else waiting.push(event);
  };
</script>
</body>
</html>
`;

export async function serveInspector(host: string, port: number): Promise<InspectorServer> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "/").split("?")[0] !== "/") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(PAGE);
  });
  // Made after listening: ws re-emits the server's errors, and a busy port must be an error, not a crash.
  await listen(server, host, port);
  const wss = new WebSocketServer({ server });
  /** Per actor session: its `@xstate.actor` message and its latest `@xstate.snapshot` message. */
  const actors = new Map<string, { actor?: string; snapshot?: string }>();

  wss.on("connection", (ws) => {
    ws.on("error", () => ws.terminate());
    for (const { actor } of actors.values()) if (actor) ws.send(actor);
    for (const { snapshot } of actors.values()) if (snapshot) ws.send(snapshot);
  });
  const bound = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${hostForUrl}:${bound}/`,
    wsUrl: `ws://${hostForUrl}:${bound}`,
    send(event) {
      const message = JSON.stringify(event);
      if (event.type !== "@xstate.event") {
        const entry = actors.get(event.sessionId) ?? {};
        actors.delete(event.sessionId);
        actors.set(event.sessionId, {
          ...entry,
          [event.type === "@xstate.actor" ? "actor" : "snapshot"]: message,
        });
        if (actors.size > MAX_ACTORS) actors.delete(actors.keys().next().value!);
      }
      for (const ws of wss.clients) {
        if (ws.readyState !== WebSocket.OPEN) continue;
        if (ws.bufferedAmount > MAX_BUFFERED_BYTES) ws.terminate();
        else ws.send(message);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new ValidationError("EE-CONFIG-INVALID", `${host}:${port}: cannot listen (${err.code})`)),
    );
    server.listen(port, host, () => resolve());
  });
}
