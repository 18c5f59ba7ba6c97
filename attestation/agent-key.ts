// Agent identity keys: an Ed25519 key pair per agent data dir. The agent id is derived from the public key, so
// it survives CP restarts and DB loss; the proof of possession (a signature over the CP's nonce) stops anyone
// from registering with another agent's public key. Shared by the agent (sign) and the CP (verify), as is the
// raw-key Ed25519 verify that CP envelopes use too.
import { createHash, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export function agentIdFromPubkey(pubkey: Uint8Array): string {
  return `agt_${createHash("sha256").update(pubkey).digest("hex").slice(0, 24)}`;
}

function popMessage(nonce: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from("easyenclave/v1/pop:"), nonce]);
}

export function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(ED25519_SPKI_PREFIX.length));
}

export function signPop(privateKey: KeyObject, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, popMessage(nonce), privateKey));
}

export function verifyPop(pubkey: Uint8Array, nonce: Uint8Array, signature: Uint8Array): boolean {
  return ed25519Verify(pubkey, popMessage(nonce), signature);
}

/** Verifies an Ed25519 signature under a raw 32-byte public key; false for any malformed key or signature. */
export function ed25519Verify(pubkey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (pubkey.length !== 32 || signature.length !== 64) return false;
  try {
    // A JWK import takes the raw key as it is; the DER (SPKI) import goes through OpenSSL's decoder search,
    // which costs about 15× more and was the largest single cost of a registration storm (test/load).
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(pubkey).toString("base64url") },
      format: "jwk",
    });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
