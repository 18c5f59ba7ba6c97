// How the CP's actors reach an agent: one frame to an agent, by agent id. The transport encodes and frames it and
// finds the agent's current connection (transport/ws-server.ts implements this port, cp/ wires it in), so actors
// never see bytes or sockets. It is also where a federated CP could route a command to a datacenter instead.
// Imports spec/protocol types only.
import type { MessageBody, MessageType } from "../spec/protocol.ts";

/** The envelope ids of one frame, and the connection it must go on when it answers a frame from that connection. */
export interface FrameIds {
  /** The frame's id, for requests the agent answers with `re` (from nextFrameId). */
  id?: number;
  /** The id of the agent's frame this one answers. */
  re?: number;
  /** Send only while the agent is still on this connection (an answer must not reach a newer one). */
  conn?: number;
}

export interface AgentLink {
  /** Sends one frame to the agent's current connection; false when it has none (or not `ids.conn`). */
  send<T extends MessageType>(agentId: string, type: T, body: MessageBody<T>, ids?: FrameIds): boolean;
  /** A frame id unique on this CP, for requests the agent answers with `re` (one counter, so no two overlap). */
  nextFrameId(): number;
  /** Closes one connection (superseded, refused, crashed) with a close code and reason. */
  close(connId: number, code: number, reason: string): void;
}
