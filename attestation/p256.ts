// Raw P-256 ECDSA as TDX quotes carry it: public keys as 64-byte x‖y, signatures as 64-byte r‖s, always over
// SHA-256. Shared by the verifier and the dev provider. Imports node:crypto only.
import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";

const COORD = 32;

/** Imports a raw x‖y public key. Throws if the point is not on the curve. */
export function p256PublicKeyFromRaw(xy: Uint8Array): KeyObject {
  if (xy.length !== 2 * COORD)
    throw new RangeError(`a raw P-256 key is ${2 * COORD} bytes, got ${xy.length}`);
  // JWK import measured cheaper than SPKI DER import in Node 20, and it needs no hand-built ASN.1 prefix.
  const x = Buffer.from(xy.subarray(0, COORD)).toString("base64url");
  const y = Buffer.from(xy.subarray(COORD)).toString("base64url");
  return createPublicKey({ key: { kty: "EC", crv: "P-256", x, y }, format: "jwk" });
}

/** The raw x‖y form of a P-256 key (public, or the public half of a private key). */
export function p256RawPublicKey(key: KeyObject): Uint8Array {
  const jwk = (key.type === "private" ? createPublicKey(key) : key).export({ format: "jwk" });
  if (jwk.crv !== "P-256" || jwk.x === undefined || jwk.y === undefined) {
    throw new RangeError("not a P-256 key");
  }
  return new Uint8Array(Buffer.concat([Buffer.from(jwk.x, "base64url"), Buffer.from(jwk.y, "base64url")]));
}

export function p256Sign(privateKey: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" }));
}

export function p256Verify(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return verify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature);
}
