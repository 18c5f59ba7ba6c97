// Sealing a small secret (registry credentials) to one agent: X25519 ECDH with an ephemeral key against the
// agent's attested Ed25519 identity key converted to its X25519 form (as libsodium and age's ssh-ed25519
// recipients do), HKDF-SHA256 to an AES-256-GCM key, the agent id and deployment id as associated data. Only the
// agent holding the private key opens it, and only for that deployment. Imports node:crypto only.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";

/** What travels: the ephemeral X25519 public key, the GCM nonce and the ciphertext with its 16-byte tag. */
export interface Sealed {
  epk: Uint8Array;
  iv: Uint8Array;
  ct: Uint8Array;
}

const P = 2n ** 255n - 19n;
const INFO = "easyenclave/v1/seal";

function modPow(b: bigint, e: bigint): bigint {
  let r = 1n;
  let x = b % P;
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) r = (r * x) % P;
    x = (x * x) % P;
  }
  return r;
}

const toBig = (le: Uint8Array): bigint => BigInt(`0x${Buffer.from(le).reverse().toString("hex") || "0"}`);
const toLe = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, "0"), "hex").reverse();

/** The X25519 public key of an Ed25519 public key: u = (1 + y) / (1 − y) mod p (RFC 7748 §4.1). */
export function x25519PublicOf(ed25519Pub: Uint8Array): KeyObject {
  if (ed25519Pub.length !== 32) throw new TypeError("an Ed25519 public key is 32 bytes");
  const yb = Buffer.from(ed25519Pub);
  yb[31]! &= 0x7f;
  const y = toBig(yb);
  if (y >= P || y === 1n) throw new TypeError("not an Ed25519 public key");
  const u = ((1n + y) * modPow((1n - y + P) % P, P - 2n)) % P;
  return createPublicKey({
    key: { kty: "OKP", crv: "X25519", x: toLe(u).toString("base64url") },
    format: "jwk",
  });
}

/** The X25519 private key of an Ed25519 private key: the clamped first half of SHA-512(seed) (RFC 8032 §5.1.5). */
export function x25519PrivateOf(ed25519Key: KeyObject): KeyObject {
  const jwk = ed25519Key.export({ format: "jwk" });
  if (jwk.crv !== "Ed25519" || !jwk.d) throw new TypeError("not an Ed25519 private key");
  const h = createHash("sha512").update(Buffer.from(jwk.d, "base64url")).digest().subarray(0, 32);
  const pub = x25519PublicOf(Buffer.from(jwk.x!, "base64url")).export({ format: "jwk" }).x;
  return createPrivateKey({
    key: { kty: "OKP", crv: "X25519", d: h.toString("base64url"), x: pub },
    format: "jwk",
  });
}

const aad = (agentId: string, deploymentId: string) => Buffer.from(`${agentId}\n${deploymentId}`);

function keyFor(shared: Buffer, epk: Uint8Array, recipient: KeyObject): Buffer {
  const rpk = Buffer.from(recipient.export({ format: "jwk" }).x!, "base64url");
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([epk, rpk]), INFO, 32));
}

/** Seals `plaintext` to the agent with Ed25519 public key `agentPubkey`, for one agent id and deployment. */
export function seal(
  plaintext: Uint8Array,
  agentPubkey: Uint8Array,
  agentId: string,
  deploymentId: string,
): Sealed {
  const recipient = x25519PublicOf(agentPubkey);
  const eph = generateKeyPairSync("x25519");
  const epk = Buffer.from(eph.publicKey.export({ format: "jwk" }).x!, "base64url");
  const key = keyFor(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }), epk, recipient);
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv).setAAD(aad(agentId, deploymentId));
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return { epk: new Uint8Array(epk), iv: new Uint8Array(iv), ct: new Uint8Array(ct) };
}

/** Opens what seal() sealed to this agent for this deployment; throws when anything differs or was altered. */
export function open(sealed: Sealed, agentKey: KeyObject, agentId: string, deploymentId: string): Buffer {
  const mine = x25519PrivateOf(agentKey);
  const recipient = createPublicKey(mine);
  const epk = createPublicKey({
    key: { kty: "OKP", crv: "X25519", x: Buffer.from(sealed.epk).toString("base64url") },
    format: "jwk",
  });
  const key = keyFor(diffieHellman({ privateKey: mine, publicKey: epk }), sealed.epk, recipient);
  if (sealed.ct.length < 16) throw new Error("sealed data is too short");
  const d = createDecipheriv("aes-256-gcm", key, sealed.iv).setAAD(aad(agentId, deploymentId));
  d.setAuthTag(sealed.ct.subarray(sealed.ct.length - 16));
  return Buffer.concat([d.update(sealed.ct.subarray(0, sealed.ct.length - 16)), d.final()]);
}
