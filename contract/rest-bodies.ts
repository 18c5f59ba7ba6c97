// The contract for REST request bodies: the zod schema of every JSON body the control plane's REST API reads,
// one per operation (spec/control-plane.yaml documents the same shapes; test/spec/openapi-bodies.test.ts holds the
// two to each other). Handlers in transport/rest parse with these and nothing else. Imports zod, spec/ and the
// OIDC token bound (identity/oidc-verifier.ts).
import { z } from "zod";
import { MAX_TOKEN_LENGTH } from "../identity/oidc-verifier.ts";
import { registryAuthSchema } from "../spec/images.ts";
import {
  appNameSchema,
  datacenterSchema,
  healthSpecSchema,
  MAX_COMPOSE_BYTES,
  MAX_CONTEXT_BYTES,
  measurementHexSchema,
  nodeSizeSchema,
} from "../spec/protocol.ts";
import { ACCOUNT_KINDS, SCOPES } from "../spec/scopes.ts";

// Deployments and apps (transport/rest/deployments.ts).
const appRef = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9][a-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9._+-]*)?$/, "must be name or name@version");
const base64 = z
  .string()
  .max(Math.ceil(MAX_CONTEXT_BYTES / 3) * 4 + 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "must be base64");

/** POST /api/v2/deployments and POST /api/v2/preflight. */
export const deploymentBody = z.strictObject({
  app: appRef,
  compose: z.string().min(1).max(MAX_COMPOSE_BYTES).optional(),
  /** Build context: a tar archive, base64. */
  context: base64.optional(),
  node_size: nodeSizeSchema.optional(),
  datacenter: datacenterSchema.optional(),
  agent_id: z
    .string()
    .regex(/^agt_[0-9a-f]{24}$/, "must be an agent id (agt_…)")
    .optional(),
  health: healthSpecSchema.optional(),
  /** Update in place: the healthy deployment of the same app this one takes over from. */
  replaces: z.string().min(1).max(128).optional(),
  /** Credentials by registry host; sealed to the chosen agent, never echoed, logged or stored. */
  registry_auth: registryAuthSchema.optional(),
});

/** POST /api/v2/apps. */
export const appBody = z.strictObject({
  name: appNameSchema,
  version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, "must be a version like 1.2.0"),
  compose: z.string().min(1).max(MAX_COMPOSE_BYTES),
  health: healthSpecSchema.optional(),
});

// Accounts, keys and enrollment tokens (transport/rest/accounts.ts).
/** POST /api/v2/accounts. */
export const accountBody = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "must be 1..64 of a-z, 0-9, . _ - (a letter or digit first)"),
  kind: z.enum(ACCOUNT_KINDS),
});

/** POST /api/v2/accounts/{account_id}/keys. */
export const keyBody = z.strictObject({
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
  /** Up to ten years. */
  expires_in_s: z
    .number()
    .int()
    .min(60)
    .max(10 * 366 * 86_400)
    .optional(),
});

/** POST /api/v2/accounts/{account_id}/enrollment-tokens. */
export const enrollmentBody = z.strictObject({
  expires_in_s: z
    .number()
    .int()
    .min(60)
    .max(366 * 86_400)
    .optional(),
  /** The tenant account the enrolled agent takes deployments from, alone. */
  dedicated_to: z
    .string()
    .regex(/^acc_[0-9a-f]{24}$/, "must be an account id (acc_…)")
    .optional(),
});

// Billing (transport/rest/billing.ts).
const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,128}$/, "must be 1..128 visible ASCII characters");

/** PUT /api/v2/billing/rates. */
export const ratesBody = z.strictObject({
  rates: z.record(z.string(), z.number().int()),
  platform_fee_bps: z.number().int(),
});

/** POST /api/v2/accounts/{account_id}/deposits. */
export const depositBody = z.strictObject({
  amount_micros: z.number().int(),
  idempotency_key: idempotencyKey,
});

/** POST /api/v2/billing/webhook. */
export const paymentBody = z.strictObject({
  account_id: z.string().min(1).max(80),
  amount_micros: z.number().int(),
  idempotency_key: idempotencyKey,
});

// Capacity (transport/rest/capacity.ts).
/** PUT /api/v2/capacity/targets. */
export const targetBody = z.strictObject({
  datacenter: datacenterSchema,
  node_size: nodeSizeSchema,
  min_warm: z.number().int().min(0).max(10_000),
});

/** POST /api/v2/capacity/orders/claim. */
export const claimBody = z.strictObject({
  datacenter: datacenterSchema,
  node_size: nodeSizeSchema.optional(),
});

/** POST /api/v2/capacity/orders/{id}/progress. */
export const progressBody = z
  .strictObject({
    status: z.enum(["provisioning", "failed"]),
    reason: z.string().min(1).max(2048).optional(),
  })
  .refine((b) => b.status !== "failed" || b.reason !== undefined, {
    message: "a failed order needs a reason",
    path: ["reason"],
  });

// Trusted measurements (transport/rest/measurements.ts).
/** POST /api/v2/measurements. */
export const measurementBody = z.strictObject({
  node_size: z.string().min(1).max(64),
  mrtd: measurementHexSchema,
  rtmr: z
    .tuple([measurementHexSchema, measurementHexSchema, measurementHexSchema, measurementHexSchema])
    .optional(),
  note: z.string().max(512).optional(),
});

// OIDC (transport/rest/oidc-bindings.ts, oidc-exchange.ts).
/** POST /api/v2/oidc/bindings. */
export const bindingBody = z.strictObject({
  account_id: z.string().regex(/^acc_[0-9a-f]{24}$/, "must be an account id (acc_…)"),
  /** GitHub's numeric repository id (the `repository_id` claim), never the repository's name. */
  repository_id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** The owner's numeric id (`repository_owner_id`): pins the organisation too, across transfers. */
  repository_owner_id: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  ref: z
    .string()
    .regex(/^refs\/[A-Za-z0-9._/-]{1,250}$/, "must be a git ref like refs/heads/main")
    .optional(),
  /** The job's deployment environment (`environment` claim), e.g. production. */
  environment: z
    .string()
    .regex(/^[A-Za-z0-9._ -]{1,255}$/, "must be a GitHub environment name")
    .optional(),
  scopes: z.array(z.enum(SCOPES)).min(1).max(SCOPES.length),
});

/** POST /api/v2/auth/oidc. */
export const exchangeBody = z.strictObject({ token: z.string().min(1).max(MAX_TOKEN_LENGTH) });
