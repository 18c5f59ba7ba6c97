// Desired state, master → dc (spec/federation.md "Desired state"): the whole of it as one snapshot (apps as
// name@version with their compose hash, the trusted measurements, drains, the master's measurement policy and its
// non-Intel trust roots) under one key of the hub's KV bucket, signed by
// the master's CP identity key (Ed25519) with a snapshot sequence. NATS authenticates links, not payloads: a dc
// trusts a value only when it verifies against the master's key it was configured with (--master-key), and only
// when its sequence is above the one it applied (a rollback, even of a genuine older value, is refused). Pure: no
// I/O; node:crypto for the signature. Imports zod, attestation/policy, spec/errors, node:crypto.
import { createHash, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { z } from "zod";
import { policySchema } from "../../attestation/policy.ts";
import { ValidationError } from "../../spec/errors.ts";

/** Domain separation: a signature over a desired-state payload can never pass for an envelope or anything else. */
const SIGNING_CONTEXT = "easyenclave federation desired-state v1\n";

const rtmr = z.string().min(1).max(256);

export const desiredMeasurementSchema = z.strictObject({
  node_size: z.string().min(1).max(64),
  mrtd: z.string().min(1).max(256),
  rtmr: z.tuple([rtmr, rtmr, rtmr, rtmr]).nullable(),
  note: z.string().max(500).nullable(),
});
export type DesiredMeasurement = z.infer<typeof desiredMeasurementSchema>;

/**
 * Strict at every level: a field this dc does not know (a newer master's) refuses the whole snapshot
 * (EE-FED-DESIRED-SCHEMA) rather than applying part of what the master meant; dcs are upgraded before their
 * master. The fields added after the first version default to "nothing from the master" so a dc still applies an
 * older master's snapshots.
 */
export const desiredPayloadSchema = z.strictObject({
  /** Strictly increasing across the master's publishes: a dc refuses any value at or below what it applied. */
  seq: z.number().int().positive(),
  issued_at: z.number().int().nonnegative(),
  apps: z.array(
    z.strictObject({ name: z.string().min(1), version: z.string().min(1), compose_hash: z.string() }),
  ),
  measurements: z.array(desiredMeasurementSchema),
  /** Agent ids the master drained (its own agents and dcs' agents alike): no placement on them anywhere. */
  drains: z.array(z.string().min(1).max(128)).default([]),
  /** The master's --policy, or null (it has none): the dc's own policy applies. */
  policy: policySchema.nullable().default(null),
  /** The master's non-Intel trust anchors (PEM); the dc trusts Intel's root and these. Absent: the dc's own. */
  trust_roots: z.array(z.string().min(1).max(16_384)).max(16).optional(),
});
export type DesiredPayload = z.infer<typeof desiredPayloadSchema>;

/** The KV value: the payload's exact JSON text (what is signed, so no canonical form is needed) and its signature. */
const signedValueSchema = z.object({
  payload: z.string().min(2),
  sig: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});

/** What a dc keeps of the newest snapshot it applied: enough to refuse a rollback and to skip a replay. */
export interface AppliedDesired {
  seq: number;
  digest: string;
}

const encoder = new TextEncoder();

export function signDesired(payload: DesiredPayload, key: KeyObject): Uint8Array {
  const text = JSON.stringify(payload);
  const sig = sign(null, encoder.encode(SIGNING_CONTEXT + text), key);
  return encoder.encode(JSON.stringify({ payload: text, sig: sig.toString("base64") }));
}

/** The raw 32-byte Ed25519 public key as a KeyObject (what --master-key gives, in hex). */
export function masterPublicKey(hexKey: string, flag = "--master-key"): KeyObject {
  if (!/^[0-9a-f]{64}$/.test(hexKey))
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${flag}: expected the master's CP identity public key, 64 hex digits (its "CP identity" log line, cp_pubkey)`,
    );
  // SPKI DER of an Ed25519 key: a fixed 12-byte prefix, then the raw key.
  const der = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(hexKey, "hex")]);
  return createPublicKey({ key: der, format: "der", type: "spki" });
}

export type DesiredVerdict =
  | { ok: true; payload: DesiredPayload; applied: AppliedDesired }
  | { ok: true; payload: null; applied: AppliedDesired }
  | {
      ok: false;
      code: "EE-FED-DESIRED-SIGNATURE" | "EE-FED-DESIRED-ROLLBACK" | "EE-FED-DESIRED-SCHEMA";
      message: string;
      seq: number | null;
    };

/**
 * Checks one value read from the bucket against the master's key and what was applied. `payload: null` means the
 * very snapshot already applied (a replay after a restart): nothing to do, nothing to report.
 */
export function verifyDesired(
  value: Uint8Array,
  key: KeyObject,
  applied: AppliedDesired | null,
): DesiredVerdict {
  const bad = (message: string) => ({
    ok: false as const,
    code: "EE-FED-DESIRED-SIGNATURE" as const,
    message,
    seq: null,
  });
  let outer: z.infer<typeof signedValueSchema>;
  try {
    const parsed = signedValueSchema.safeParse(JSON.parse(new TextDecoder().decode(value)));
    if (!parsed.success) return bad("the value is not a signed desired-state snapshot");
    outer = parsed.data;
  } catch {
    return bad("the value is not JSON");
  }
  const signed = encoder.encode(SIGNING_CONTEXT + outer.payload);
  if (!verify(null, signed, key, Buffer.from(outer.sig, "base64")))
    return bad("the signature does not verify against the master's key");
  // Signed by the master, so not tampered with: a payload this dc cannot read is a version mismatch.
  const parsed = desiredPayloadSchema.safeParse(JSON.parse(outer.payload));
  if (!parsed.success)
    return {
      ok: false,
      code: "EE-FED-DESIRED-SCHEMA",
      message: `the signed snapshot does not match this dc's schema (a newer master? upgrade the dc): ${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join(".") || "payload"}: ${i.message}`)
        .join("; ")}`,
      seq: null,
    };
  const payload = parsed.data;
  const digest = createHash("sha256").update(outer.payload).digest("hex");
  if (applied !== null && payload.seq <= applied.seq) {
    if (payload.seq === applied.seq && digest === applied.digest) return { ok: true, payload: null, applied };
    return {
      ok: false,
      code: "EE-FED-DESIRED-ROLLBACK",
      message: `snapshot ${payload.seq} is not newer than the applied snapshot ${applied.seq}`,
      seq: payload.seq,
    };
  }
  return { ok: true, payload, applied: { seq: payload.seq, digest } };
}

/** The key a trusted measurement is matched by across master and dc (the ids differ per CP). */
export const measurementKey = (m: { node_size: string; mrtd: string; rtmr: readonly string[] | null }) =>
  `${m.node_size}|${m.mrtd}|${m.rtmr?.join(",") ?? "*"}`;
