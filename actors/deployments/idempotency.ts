// Idempotent creates: a retried create with the same Idempotency-Key and the same body replays the first result;
// another body under a used key is EE-CONFLICT-IDEMPOTENCY. The body is hashed in canonical JSON with its build
// context, never its registry credentials. Imports lib/canonical-json, spec/errors and the store's type.
import { createHash } from "node:crypto";
import { canonicalJson } from "../../lib/canonical-json.ts";
import { ConflictError } from "../../spec/errors.ts";
import type { DeploymentStore } from "../store/deployment-store.ts";

// Registry credentials are left out: an idempotency record must not hold even a hash a password could be
// guessed from, so a retry that only changes them is the same request.
export function hashRequest(req: { context?: Uint8Array; registry_auth?: unknown }): string {
  const h = createHash("sha256");
  const { context, registry_auth: _auth, ...rest } = req;
  h.update(canonicalJson(rest));
  if (context) h.update(context);
  return h.digest("hex");
}

/**
 * The deployment a key was first used for, when this is a retry of that same request; null for a new key.
 * Throws EE-CONFLICT-IDEMPOTENCY when the key was used with another body.
 */
export function replayOf(
  store: Pick<DeploymentStore, "idempotencyKey">,
  key: string,
  requestHash: string,
): string | null {
  const seen = store.idempotencyKey(key);
  if (!seen) return null;
  if (seen.request_hash !== requestHash)
    throw new ConflictError(
      "EE-CONFLICT-IDEMPOTENCY",
      "this Idempotency-Key was used with a different request body",
    );
  return seen.deployment_id;
}
