// The agent API's write bodies (deploy, undeploy) in JSON, strict, with the CP envelope in hex and base64
// (spec/protocol.md "CP envelope"), and the deploy request they become. May import spec/ and zod.
import { z } from "zod";
import { ComposeError } from "../../spec/errors.ts";
import {
  appNameSchema,
  deploymentIdSchema,
  healthSpecSchema,
  MAX_COMPOSE_BYTES,
  MAX_CONTEXT_BYTES,
} from "../../spec/protocol.ts";
import type { DeployRequest } from "../workload.ts";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const hexBytes = (n: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-f]{${2 * n}}$`), `must be ${n} bytes of lowercase hex`)
    .transform((s) => new Uint8Array(Buffer.from(s, "hex")));
/** The CP envelope in JSON (spec/protocol.md "CP envelope"): hex for keys, nonces and signatures, base64 quote. */
const envelopeJsonSchema = z.strictObject({
  cp_pubkey: hexBytes(32),
  issued_at: z.number().int().nonnegative(),
  nonce: hexBytes(16),
  sig: hexBytes(64),
  quote: z
    .string()
    .refine((s) => s.length % 4 === 0 && BASE64.test(s), { message: "must be padded base64" })
    .transform((s) => new Uint8Array(Buffer.from(s, "base64")))
    .optional(),
});

export const deployBodySchema = z.strictObject({
  deployment_id: deploymentIdSchema,
  app: appNameSchema,
  compose: z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s, "utf8") <= MAX_COMPOSE_BYTES, {
      message: `must be at most ${MAX_COMPOSE_BYTES} bytes of UTF-8`,
    }),
  context_base64: z
    .string()
    .refine((s) => s.length % 4 === 0 && BASE64.test(s), { message: "must be padded base64" })
    .optional(),
  health: healthSpecSchema.optional(),
  envelope: envelopeJsonSchema.optional(),
});
export const undeployBodySchema = z.strictObject({
  deployment_id: deploymentIdSchema,
  envelope: envelopeJsonSchema.optional(),
});

export function deployRequest(body: z.infer<typeof deployBodySchema>): DeployRequest {
  const req: DeployRequest = { deployment_id: body.deployment_id, app: body.app, compose: body.compose };
  if (body.health) req.health = body.health;
  if (body.context_base64 !== undefined) {
    const context = Buffer.from(body.context_base64, "base64");
    if (context.length > MAX_CONTEXT_BYTES)
      throw new ComposeError(
        "EE-COMPOSE-CONTEXT-TOO-LARGE",
        `context_base64: the build context is ${context.length} bytes; at most ${MAX_CONTEXT_BYTES}`,
      );
    req.context = context;
  }
  return req;
}
