// The CP client's connection: one `ws` WebSocket at a time to `${control_plane_url}${CONNECT_PATH}`, frames
// encoded out of it (dropped while it is not open), its events handed on only while it is the current socket (a
// socket the machine already dropped says nothing more), an untrusted TLS certificate turned into the close
// reason `EE-TLS-UNTRUSTED: …`, and closes that wait for the handshake a bounded time. May import ws,
// transport/frame, spec/ and lib/.
import { type RawData, WebSocket } from "ws";
import type { Logger } from "../../lib/log.ts";
import { untrustedCertificate } from "../../lib/tls-failure.ts";
import { CONNECT_TIMEOUT_MS } from "../../machines/agent-connection.ts";
import { CONNECT_PATH, MAX_CP_FRAME_BYTES, type MessageBody, type MessageType } from "../../spec/protocol.ts";
import { encodeFrame } from "../../transport/frame.ts";

/** How long a closing socket gets to finish the close handshake before it is torn down. */
const CLOSE_GRACE_MS = 2000;
/** The error body's message field is capped by the protocol schema. */
const MAX_ERROR_MESSAGE = 1024;

/** Sends one frame on the current socket; nothing when there is none or it is not open. */
export type SendFrame = <T extends MessageType>(
  type: T,
  body: MessageBody<T>,
  ids?: { id?: number; re?: number },
) => void;

/** What the current socket tells its client. */
export interface SocketEvents {
  opened(): void;
  message(data: Buffer, isBinary: boolean): void;
  closed(code: number, reason: string): void;
}

export class CpSocket {
  readonly #endpoint: string;
  readonly #ca: string | undefined;
  readonly #log: Logger;
  #socket: WebSocket | null = null;
  readonly #closing = new Set<WebSocket>();
  #nextFrameId = 1;

  constructor(url: string, ca: string | undefined, log: Logger) {
    this.#endpoint = `${url}${CONNECT_PATH}`;
    this.#ca = ca;
    this.#log = log;
  }

  /** The id of the next frame this client originates. */
  nextId(): number {
    return this.#nextFrameId++;
  }

  readonly send: SendFrame = (type, body, ids = {}) => {
    const ws = this.#socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const log = this.#log;
    try {
      ws.send(encodeFrame(type, body, ids), { binary: true }, (err) => {
        if (err) log.warn({ type, err: err.message }, "sending a frame failed");
      });
    } catch (err) {
      log.warn({ type, err: (err as Error).message }, "sending a frame failed");
    }
  };

  sendError(code: string, message: string, re: number | undefined): void {
    this.send(
      "error",
      { code, message: message.slice(0, MAX_ERROR_MESSAGE) },
      re === undefined ? {} : { re },
    );
  }

  /** Opens a new socket, which becomes the current one. */
  open(events: SocketEvents): void {
    const log = this.#log;
    const endpoint = this.#endpoint;
    const ca = this.#ca;
    const ws = new WebSocket(endpoint, {
      maxPayload: MAX_CP_FRAME_BYTES,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      ...(ca ? { ca } : {}),
    });
    ws.binaryType = "nodebuffer";
    this.#socket = ws;
    /** Set when the CP's certificate was not trusted: the close that follows carries it as the reason. */
    let refusedTls: string | null = null;
    log.debug({ url: endpoint }, "connecting to the control plane");
    ws.on("open", () => {
      if (this.#socket === ws) events.opened();
    });
    ws.on("message", (data, isBinary) => {
      if (this.#socket === ws) events.message(toBuffer(data), isBinary);
    });
    ws.on("close", (code, reason) => {
      this.#closing.delete(ws);
      if (this.#socket !== ws) return;
      this.#socket = null;
      events.closed(code, refusedTls ?? reason.toString("utf8"));
    });
    // ws always follows an error with a close, which is what the machine reacts to; this only keeps it logged.
    ws.on("error", (err) => {
      const untrusted = untrustedCertificate(err);
      if (!untrusted) {
        log.debug({ err: err.message }, "control plane socket error");
        return;
      }
      // A code first, so the connection machine keeps it as lastError (health, give-up message).
      refusedTls = `EE-TLS-UNTRUSTED: ${untrusted.code}`;
      log.warn(
        {
          code: "EE-TLS-UNTRUSTED",
          verify: untrusted.code,
          url: endpoint,
          ca: ca ? "control_plane_ca" : "system",
        },
        `the control plane's TLS certificate is not trusted (${untrusted.message}); ` +
          "set control_plane_ca to the CA that signed it; retrying with backoff",
      );
    });
  }

  /** Closes the current socket; it says nothing more to the client. */
  close(code: number, reason: string): void {
    const ws = this.#socket;
    this.#socket = null;
    if (!ws) return;
    this.#closing.add(ws);
    ws.close(code, reason);
    void waitClosed(ws);
  }

  /** Resolves once every socket being closed is closed. */
  async closed(): Promise<void> {
    await Promise.all([...this.#closing].map(waitClosed));
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function waitClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    // A CP that never answers the close handshake must not hold the agent's shutdown hostage.
    const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
