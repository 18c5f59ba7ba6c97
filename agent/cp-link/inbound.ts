// Where each frame from the control plane goes: a text frame or one that does not decode or validate
// (transport/frame.ts: envelope, version, type, direction, body) is answered with an error frame carrying its
// stable code and goes no further; `attest` goes to the re-attestation machine whatever the link is doing; the
// workload requests to the agent's command handlers (cp-commands.ts); everything else to the connection machine,
// and an accepted `registered` on to the agent. May import transport/frame, spec/ and lib/log (types).
import type { Logger } from "../../lib/log.ts";
import type { RefreshRequest } from "../../machines/attestation-refresh.ts";
import { ProtocolError } from "../../spec/errors.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import { decodeFrame, FrameError } from "../../transport/frame.ts";
import type { CpCommands } from "../cp-commands.ts";
import type { CpSocket } from "./socket.ts";

export type Envelope = ReturnType<typeof decodeFrame>;

export interface InboundRoutes {
  /** A re-attestation request. */
  attest(request: RefreshRequest): void;
  /** The workload request handlers; none: the agent runs nothing. */
  commands?: CpCommands | undefined;
  /** Any other frame, for the connection machine. */
  frame(envelope: Envelope): void;
  /** Whether the connection machine is registered now (after it took a frame). */
  registered(): boolean;
  onRegistered?: ((body: MessageBody<"registered">) => void) | undefined;
}

export function dispatchFrame(
  data: Buffer,
  isBinary: boolean,
  socket: CpSocket,
  log: Logger,
  routes: InboundRoutes,
): void {
  if (!isBinary) {
    log.warn({ code: "EE-PROTO-TEXT-FRAME" }, "text frame from the control plane");
    socket.sendError(
      "EE-PROTO-TEXT-FRAME",
      "text frames are not accepted; send binary msgpack frames",
      undefined,
    );
    return;
  }
  let envelope: Envelope;
  try {
    envelope = decodeFrame(data, "agent");
  } catch (err) {
    const code = err instanceof ProtocolError ? err.code : "EE-PROTO-UNDECODABLE";
    const message = err instanceof ProtocolError ? err.message : "frame could not be decoded";
    log.warn({ code, detail: message }, "bad frame from the control plane");
    socket.sendError(code, message, err instanceof FrameError ? err.re : undefined);
    return;
  }
  // Re-attestation requests are served by their own machine, whatever the connection machine is doing.
  if (envelope.type === "attest") {
    routes.attest({ id: envelope.id, nonce: envelope.body.nonce });
    return;
  }
  if (routes.commands?.handle(envelope, socket.send)) return;
  routes.frame(envelope);
  if (envelope.type === "registered" && routes.registered()) {
    routes.onRegistered?.(envelope.body);
    routes.commands?.announce(socket.send);
  }
}
