// msgpackr framing for the agent channel: one envelope per binary WebSocket frame. Decoding checks, in order,
// size, msgpack, envelope shape, version, type (and which side may send it) and the body schema, so nothing
// unvalidated reaches an actor. Used by both ends (the CP's ws server and the agent's client).
import { Packr } from "msgpackr";
import { ProtocolError } from "../spec/errors.ts";
import {
  type AnyEnvelope,
  envelopeSchema,
  MAX_CP_FRAME_BYTES,
  MAX_FRAME_BYTES,
  type MessageBody,
  type MessageType,
  messageSchemas,
  PROTOCOL_VERSION,
  SENT_BY,
} from "../spec/protocol.ts";

// Plain msgpack (no msgpackr records extension) so agents in other languages can speak the protocol.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export type Side = "cp" | "agent";

export function encodeFrame<T extends MessageType>(
  type: T,
  body: MessageBody<T>,
  ids: { id?: number; re?: number } = {},
): Buffer {
  const env: Record<string, unknown> = { v: PROTOCOL_VERSION, type };
  if (ids.id !== undefined) env.id = ids.id;
  if (ids.re !== undefined) env.re = ids.re;
  env.body = body;
  return packr.pack(env);
}

/** A frame that decoded as an envelope but failed later checks; `re` lets the error frame point at it. */
export class FrameError extends ProtocolError {
  re: number | undefined;
}

function fail(code: ProtocolError["code"], message: string, re?: number): never {
  const err = new FrameError(code, message);
  err.re = re;
  throw err;
}

/**
 * Decodes and validates one inbound frame for the receiving side `at`.
 * Throws FrameError with a stable code; never returns a partially valid envelope.
 */
export function decodeFrame(data: Uint8Array, at: Side): AnyEnvelope {
  // Agents receive deploys with build contexts; the CP's cap stays small because agents are many and untrusted.
  const cap = at === "agent" ? MAX_CP_FRAME_BYTES : MAX_FRAME_BYTES;
  if (data.length > cap) fail("EE-PROTO-TOO-LARGE", `frame of ${data.length} bytes exceeds ${cap}`);
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch {
    fail("EE-PROTO-UNDECODABLE", "frame is not valid msgpack");
  }
  const env = envelopeSchema.safeParse(raw);
  if (!env.success) fail("EE-PROTO-UNDECODABLE", "frame is not an envelope {v, type, id?, re?, body}");
  const { v, type, id, re, body } = env.data;
  if (v !== PROTOCOL_VERSION)
    fail("EE-PROTO-VERSION", `protocol version ${v} is not supported (want ${PROTOCOL_VERSION})`, id);
  if (!Object.hasOwn(messageSchemas, type))
    fail("EE-PROTO-UNKNOWN-TYPE", `unknown message type "${type}"`, id);
  const t = type as MessageType;
  const sender = SENT_BY[t];
  if (sender !== "both" && sender === at)
    fail("EE-PROTO-UNKNOWN-TYPE", `"${t}" is not sent to the ${at}`, id);
  const parsed = messageSchemas[t].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "body";
    fail("EE-PROTO-INVALID-BODY", `${t}: ${where}: ${issue?.message ?? "invalid"}`, id);
  }
  const out = { v: PROTOCOL_VERSION, type: t, body: parsed.data } as AnyEnvelope;
  if (id !== undefined) out.id = id;
  if (re !== undefined) out.re = re;
  return out;
}
