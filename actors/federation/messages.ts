// What a dc publishes into its EE_UP stream and what the master sends down its EE_DOWN stream, as zod schemas:
// the master validates every message from a dc (and a dc every command) before applying it. JSON on the wire,
// times in ms since the epoch. Imports zod, actors/ types, spec/protocol (shared field schemas).
import { z } from "zod";
import { appNameSchema, healthSpecSchema } from "../../spec/protocol.ts";
import type { AgentRecord } from "../agent-index.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";

const ms = z.number().int().nonnegative();
const agentId = z.string().regex(/^agt_[0-9a-f]{24}$/);
const deploymentId = z.string().min(1).max(128);

/** An agent record as the dc's read model holds it; checked for the fields the master keys and places on. */
const agentRecord = z
  .looseObject({
    agent_id: agentId,
    state: z.string().max(32),
    connected: z.boolean(),
    deployment_id: z.string().max(128).nullable(),
    attestation_status: z.enum(["ok", "failed"]),
    attested_at: ms.nullable(),
  })
  .transform((r) => r as unknown as AgentRecord);

const deploymentRow = z
  .looseObject({
    deployment_id: deploymentId,
    agent_id: agentId,
    status: z.enum(["pending", "deploying", "healthy", "failed", "undeploying", "undeployed"]),
    created_at: ms,
    updated_at: ms,
  })
  .transform((r) => r as unknown as Omit<DeploymentRow, "compose">);

/** One event of the dc's outbox (its event log), with the current state of what it is about. */
export const upEventSchema = z.object({
  type: z.literal("event"),
  /** The event's id in the dc's log: the dedupe key with the dc id (Nats-Msg-Id `<dc>:<seq>`). */
  seq: z.number().int().positive(),
  at: ms,
  kind: z.string().min(1).max(64),
  agent_id: agentId.nullable(),
  /** The agent as the dc sees it now; null when the dc no longer knows it (forgotten). */
  agent: agentRecord.nullable(),
  /** For deployment events: the deployment as the dc sees it now (without its compose text). */
  deployment: deploymentRow.nullable(),
  data: z.record(z.string(), z.unknown()),
});

/** Every few seconds: keeps the mirror active and tells the master how current its view is. */
export const upHealthSchema = z.object({
  type: z.literal("health"),
  at: ms,
  /** The newest outbox event published before this summary. */
  outbox_seq: z.number().int().nonnegative(),
  agents: z.object({
    total: z.number().int().nonnegative(),
    connected: z.number().int().nonnegative(),
    by_state: z.record(z.string(), z.number().int().nonnegative()),
  }),
});

export const upMessageSchema = z.discriminatedUnion("type", [upEventSchema, upHealthSchema]);
export type UpEvent = z.infer<typeof upEventSchema>;
export type UpHealth = z.infer<typeof upHealthSchema>;
export type UpMessage = z.infer<typeof upMessageSchema>;

/** master → dc: run this deployment on this agent under this id (the master's), or undeploy it. */
export const deployCommandSchema = z.object({
  deployment_id: deploymentId,
  agent_id: agentId,
  app: appNameSchema,
  compose: z.string().min(1),
  health: healthSpecSchema.optional(),
  issued_at: ms,
});
export const undeployCommandSchema = z.object({ deployment_id: deploymentId, issued_at: ms });
export type DeployCommand = z.infer<typeof deployCommandSchema>;

/** The dc's event when it could not carry out a deploy command (the agent left, is busy...). */
export const COMMAND_REFUSED = "federation.command_refused";

export const helloSchema = z.object({ dc_id: z.string(), at: ms });

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const encodeJson = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
export const decodeJson = (b: Uint8Array): unknown => JSON.parse(decoder.decode(b));
