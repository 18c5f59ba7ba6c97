// The agent-channel wire protocol in code: envelope and message schemas (zod), which side may send which type,
// and the size cap. spec/protocol.md is the prose version of this file. Pure: imports no I/O, so machines/,
// agent/ and actors/ can all share it.
import { z } from "zod";
import { imageRefsSchema } from "./images.ts";

export const PROTOCOL_VERSION = 1;
/** Hard cap on one frame from an agent. A register frame (quote ≈ 5 KiB + snapshot) is far below it. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Largest build context a deploy may carry (a tar archive). */
export const MAX_CONTEXT_BYTES = 4 * 1024 * 1024;
/** Largest compose file, in UTF-8 bytes. */
export const MAX_COMPOSE_BYTES = 256 * 1024;
/** Hard cap on one frame from the CP: a deploy with the largest compose and build context fits. */
export const MAX_CP_FRAME_BYTES = MAX_CONTEXT_BYTES + MAX_COMPOSE_BYTES + 64 * 1024;
/** Path of the agent WebSocket on the control plane. */
export const CONNECT_PATH = "/api/v2/agents/connect";

const bytes = (len?: number) => {
  const base = z.custom<Uint8Array>((v) => v instanceof Uint8Array, {
    message: "must be binary (msgpack bin)",
  });
  return len === undefined ? base : base.refine((b) => b.length === len, { message: `must be ${len} bytes` });
};
/** A TDX quote as a frame carries it (the agent's, or the CP's in an envelope). */
const quoteBytes = bytes().refine((b) => b.length > 0 && b.length <= 32 * 1024, "must be 1..32768 bytes");
const msEpoch = z.number().int().nonnegative();
const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** vm_name: a DNS label, so it can name hosts, units and containers. */
export const vmNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be a lowercase DNS label");
/** datacenter: `provider:zone`, e.g. `baremetal:local`, `gcp:us-central1-a`. */
export const datacenterSchema = z
  .string()
  .max(128)
  .regex(/^[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9._-]*$/, "must be provider:zone");
/** An MRTD or RTMR as configs and requests give it: 96 hex digits, either case, kept lowercase. */
export const measurementHexSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{96}$/, "must be 96 hex characters (48 bytes)")
  .transform((s) => s.toLowerCase());
export const nodeSizeSchema = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-z0-9][a-z0-9-]*$/);

/** A launch order's bootstrap token as agents carry it (capacity): `eebt_` and 43 base64url characters. */
export const bootstrapTokenSchema = z
  .string()
  .max(128)
  .regex(/^eebt_[A-Za-z0-9_-]{43}$/, "must be eebt_ and 43 base64url characters");

/** Deployment ids: `d-` and lowercase hex or a DNS-label-like token, so they can name Docker projects. */
export const deploymentIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, "must be lowercase letters, digits and dashes");
/** App names: the same shape, so `app@version` references and container names stay simple. */
export const appNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, "must start with a lowercase letter or digit; then [a-z0-9._-]");

/**
 * How the agent decides a workload is healthy: an HTTP GET on `port`, a container port of the target service
 * (the last in start order), reached on the deployment's network with no host port published, must answer 2xx.
 * The agent's proxy forwards to the same port.
 */
export const healthSpecSchema = z.object({
  port: z.number().int().min(1).max(65535),
  path: z.string().startsWith("/").max(512).default("/"),
  timeout_s: z.number().int().min(1).max(3600).default(60),
});

/** The agent's deploy gate, step by step; `running` is the only healthy end, `failed` carries a code. */
export const workloadStepSchema = z.enum([
  "pulling",
  "preparing",
  "starting",
  "gating",
  "running",
  "failed",
  "stopping",
  "stopped",
]);

/** What the agent runs, as it reports it; the agent is the truth for this (rehydration reads it). */
export const workloadReportSchema = z.object({
  deployment_id: z.string().min(1).max(128),
  app: z.string().min(1).max(128),
  status: z.enum(["deploying", "healthy", "failed", "stopped"]),
  compose_hash: z.string().max(128).optional(),
});

/** The agent's view of itself, sent with registration so a CP can rebuild its runtime state. */
export const agentSnapshotSchema = z.object({
  workload: workloadReportSchema.nullable(),
  heartbeat_seq: seq,
  started_at: msEpoch,
});

/**
 * The CP attestation envelope on deploy/undeploy: an Ed25519 signature by the CP identity key over the command,
 * the agent it is for and a fresh nonce, plus (when the CP runs in a TD) the CP's quote binding that key.
 * Built and checked by attestation/cp-envelope.ts; spec/protocol.md gives the signed bytes.
 */
export const cpEnvelopeSchema = z.object({
  cp_pubkey: bytes(32),
  issued_at: msEpoch,
  nonce: bytes(16),
  sig: bytes(64),
  quote: quoteBytes.optional(),
});

const lowerHex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${2 * bytes}}$`), `must be ${2 * bytes} lowercase hex digits`);

/**
 * Where a deployment came from: the CP envelope its deploy carried, with the SHA-256 of the command it signed, so
 * a CP can check later (after losing its records) that it signed this deployment for this agent. The agent keeps it
 * with the workload and reports it in every deploy_status; hex, as workload.json holds it.
 */
export const deployOriginSchema = z.object({
  cp_pubkey: lowerHex(32),
  issued_at: msEpoch,
  nonce: lowerHex(16),
  sig: lowerHex(64),
  command_sha256: lowerHex(32),
});

export const messageSchemas = {
  /** CP → agent, first frame on every connection. */
  challenge: z.object({ nonce: bytes(32), expires_at: msEpoch, server_time: msEpoch }),
  /** agent → CP: the answer to the challenge. */
  register: z.object({
    vm_name: vmNameSchema,
    // Checked by registration policy (EE-REG-* reason codes), not by the frame schema.
    node_size: z.string().min(1).max(64),
    datacenter: z.string().min(1).max(128),
    agent_pubkey: bytes(32),
    nonce: bytes(32),
    quote: quoteBytes,
    pop: bytes(64),
    agent_version: z.string().max(64).optional(),
    snapshot: agentSnapshotSchema.optional(),
    /** Single-use token from the agent's config: binds the agent to a provider account (EE-REG-ENROLLMENT). */
    enrollment_token: z.string().min(1).max(128).optional(),
    /** A launch order's single-use token (agent config `bootstrap_token`); absent for direct agents. */
    bootstrap_token: bootstrapTokenSchema.optional(),
  }),
  /** CP → agent: registration accepted. */
  registered: z.object({
    agent_id: z.string(),
    session_id: z.string(),
    heartbeat_ms: z.number().int().positive(),
    stale_after_ms: z.number().int().positive(),
    server_time: msEpoch,
    /** Per-agent secret signing requests to the agent's HTTP API (all but health; writes need the envelope too). */
    api_secret: bytes(32).optional(),
    /** The CP identity key (raw Ed25519) that signs its envelopes; the agent pins the first one it sees. */
    cp_pubkey: bytes(32).optional(),
  }),
  /** agent → CP, every heartbeat_ms. */
  heartbeat: z.object({ seq, sent_at: msEpoch, workload: workloadReportSchema.nullable().optional() }),
  /** CP → agent, answers a heartbeat (`re` = the heartbeat's id). */
  heartbeat_ack: z.object({ seq, server_time: msEpoch }),
  /** CP → agent, with an id: re-attest now; the quote must bind `nonce` with purpose `refresh`. */
  attest: z.object({ nonce: bytes(32), purpose: z.literal("refresh") }),
  /** agent → CP, `re` = the attest request's id. */
  attestation: z.object({
    quote: quoteBytes,
    /** `deployed` while a workload runs: the quote then also binds its compose hash. */
    purpose: z.enum(["refresh", "deployed"]).optional(),
    compose_hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
      .optional(),
    /** With `deployed`: what the quote binds, the compose hash and image digests (compose/images.ts workloadHash). */
    workload_hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
      .optional(),
  }),
  /** CP → agent, with an id: run this Compose app; progress comes back as deploy_status frames. */
  deploy: z.object({
    deployment_id: deploymentIdSchema,
    app: appNameSchema,
    compose: z.string().min(1).max(MAX_COMPOSE_BYTES),
    context: bytes()
      .refine((b) => b.length <= MAX_CONTEXT_BYTES, `must be at most ${MAX_CONTEXT_BYTES} bytes`)
      .optional(),
    health: healthSpecSchema.optional(),
    /** Update in place: the running deployment this one starts beside and takes over from once healthy. */
    replaces: deploymentIdSchema.optional(),
    /** Registry credentials sealed to this agent and deployment (attestation/seal.ts); only the agent opens them. */
    registry_auth: z
      .object({ epk: bytes(32), iv: bytes(12), ct: bytes().refine((b) => b.length <= 16 * 1024) })
      .optional(),
    envelope: cpEnvelopeSchema.optional(),
  }),
  /** CP → agent, with an id: stop and remove the deployment. */
  undeploy: z.object({ deployment_id: deploymentIdSchema, envelope: cpEnvelopeSchema.optional() }),
  /** agent → CP: one step of a deploy or undeploy (`re` = the request's id when it answers one). */
  deploy_status: z.object({
    deployment_id: deploymentIdSchema,
    /** So a CP that lost its records can recreate one from the agent's report. */
    app: appNameSchema.optional(),
    step: workloadStepSchema,
    at: msEpoch,
    code: z.string().max(64).optional(),
    message: z.string().max(1024).optional(),
    compose_hash: z.string().max(128).optional(),
    /** Each service's image reference and the digest it resolved to, once prepared. */
    images: imageRefsSchema.optional(),
    /** While pulling: bytes downloaded and expected so far, over the layers the engine reported sizes for. */
    progress: z
      .object({ done_bytes: z.number().int().nonnegative(), total_bytes: z.number().int().nonnegative() })
      .optional(),
    /** The CP envelope the deploy carried; absent: the deployment came without one (not from a CP). */
    origin: deployOriginSchema.optional(),
  }),
  /** CP → agent, with an id: container logs (answered by log_chunk frames; `follow` streams until cancel). */
  logs: z.object({
    tail: z.number().int().min(0).max(100_000).optional(),
    since: msEpoch.optional(),
    follow: z.boolean().optional(),
  }),
  /** agent → CP, `re` = the logs request's id: a batch of lines; `done` ends the answer. */
  log_chunk: z.object({
    lines: z
      .array(
        z.object({
          service: z.string().max(128),
          stream: z.enum(["stdout", "stderr"]),
          ts: z.string().max(40),
          text: z.string().max(16 * 1024),
        }),
      )
      .max(1000),
    done: z.boolean(),
  }),
  /** CP → agent, `re` = a streaming request's id: stop answering it. */
  cancel: z.object({}),
  /** CP → agent, with an id: container and host stats (answered by a `reply`). */
  stats: z.object({}),
  /** CP → agent, with an id: the agent's state snapshot (answered by a `reply`). */
  snapshot: z.object({}),
  /** agent → CP, `re` = the request's id: its answer (the agent HTTP API's JSON for the same request). */
  reply: z.object({ result: z.record(z.string(), z.unknown()) }),
  /** either way: a refused or malformed frame (`re` = the offending frame's id, when it had one). */
  error: z.object({ code: z.string().max(64), message: z.string().max(1024) }),
} as const;

export type MessageType = keyof typeof messageSchemas;
export type MessageBody<T extends MessageType> = z.infer<(typeof messageSchemas)[T]>;
export type AgentSnapshot = z.infer<typeof agentSnapshotSchema>;
export type WorkloadReport = z.infer<typeof workloadReportSchema>;
export type HealthSpec = z.infer<typeof healthSpecSchema>;
export type WorkloadStep = z.infer<typeof workloadStepSchema>;
export type CpEnvelope = z.infer<typeof cpEnvelopeSchema>;
export type DeployOrigin = z.infer<typeof deployOriginSchema>;

/** Which side may send each type; a frame of the wrong direction is EE-PROTO-UNKNOWN-TYPE for the receiver. */
export const SENT_BY: Record<MessageType, "cp" | "agent" | "both"> = {
  challenge: "cp",
  register: "agent",
  registered: "cp",
  heartbeat: "agent",
  heartbeat_ack: "cp",
  attest: "cp",
  attestation: "agent",
  deploy: "cp",
  undeploy: "cp",
  deploy_status: "agent",
  logs: "cp",
  log_chunk: "agent",
  cancel: "cp",
  stats: "cp",
  snapshot: "cp",
  reply: "agent",
  error: "both",
};

export const envelopeSchema = z.object({
  v: z.number().int(),
  type: z.string().max(32),
  id: seq.optional(),
  re: seq.optional(),
  body: z.unknown(),
});

export interface Envelope<T extends MessageType = MessageType> {
  v: typeof PROTOCOL_VERSION;
  type: T;
  id?: number;
  re?: number;
  body: MessageBody<T>;
}

/** A decoded, validated frame: a union over message types so `switch (env.type)` narrows the body. */
export type AnyEnvelope = { [T in MessageType]: Envelope<T> }[MessageType];
