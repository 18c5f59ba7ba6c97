// What crosses NATS for a relayed agent read (spec/federation.md, "Relayed reads"): the master's request and its
// control messages (keep-alive with the bytes it received, cancel) to a dc, and the dc's answers on the read's
// reply subject (alive, result, log chunks, end, error). Both sides decode with these zod schemas and drop what
// does not validate (decodeRelay returns null), so a bad message is a log line, never a crash.
// Imports zod, spec/protocol (the agent frames' own body schemas).
import { z } from "zod";
import { messageSchemas } from "../../spec/protocol.ts";

/** A relayed read's id: also the last token of its reply subject. */
export const relayIdSchema = z.string().regex(/^[0-9a-f]{24}$/);
const agentId = z.string().regex(/^agt_[0-9a-f]{24}$/);

export const RELAY_OPS = ["machine", "stats", "snapshot", "logs"] as const;
export type RelayOp = (typeof RELAY_OPS)[number];

/** master → dc on `ee.relay.<dc>.read`, reply subject `ee.reply.<dc>.<id>`. */
export const relayRequestSchema = z.strictObject({
  id: relayIdSchema,
  agent_id: agentId,
  op: z.enum(RELAY_OPS),
  /** With op logs: the agent's `logs` body (tail, since, follow). */
  logs: messageSchemas.logs.optional(),
  /** How often each side says it is still there; either side gives up after RELAY_SILENCE_FACTOR of them. */
  keepalive_ms: z.number().int().min(50).max(30_000),
});
export type RelayRequest = z.infer<typeof relayRequestSchema>;

/** master → dc on `ee.relay.<dc>.ctl`: still listening (with the answer bytes received so far), or stop. */
export const relayControlSchema = z.strictObject({
  id: relayIdSchema,
  action: z.enum(["alive", "cancel"]),
  received: z.number().int().nonnegative(),
});
export type RelayControl = z.infer<typeof relayControlSchema>;

/** dc → master on the read's reply subject. */
export const relayAnswerSchema = z.discriminatedUnion("t", [
  /** Sent at once on a request and every keep-alive while the read is open. */
  z.strictObject({ t: z.literal("alive") }),
  /** machine, stats, snapshot: the answer. */
  z.strictObject({ t: z.literal("result"), result: z.record(z.string(), z.unknown()) }),
  /** logs: one agent `log_chunk`'s lines (an agent frame is at most 64 KiB, far under NATS's payload limit). */
  z.strictObject({ t: z.literal("chunk"), lines: messageSchemas.log_chunk.shape.lines }),
  /** logs: the agent said done. */
  z.strictObject({ t: z.literal("end") }),
  /** The read failed on the dc with this coded error (the local path's code). */
  z.strictObject({
    t: z.literal("error"),
    code: z
      .string()
      .max(64)
      .regex(/^EE-[A-Z0-9-]+$/),
    message: z.string().max(4096),
  }),
]);
export type RelayAnswer = z.infer<typeof relayAnswerSchema>;

/** Either side gives up on the other after this many keep-alive intervals without a word. */
export const RELAY_SILENCE_FACTOR = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const encodeRelay = (v: RelayRequest | RelayControl | RelayAnswer): Uint8Array =>
  encoder.encode(JSON.stringify(v));

/** The message as `schema` describes it, or null (not JSON, or not that shape). */
export function decodeRelay<S extends z.ZodType>(schema: S, data: Uint8Array): z.infer<S> | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
