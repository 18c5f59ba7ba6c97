import { generateKeyPairSync } from "node:crypto";
import test from "ava";
import { rawPublicKey } from "../../attestation/agent-key.ts";
import { open, seal } from "../../attestation/seal.ts";

const agent = () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, pub: rawPublicKey(publicKey) };
};
const secret = Buffer.from('{"127.0.0.1:5000":{"username":"u","password":"p"}}');

test("what is sealed to an agent for a deployment opens with its key, and only then", (t) => {
  const a = agent();
  const sealed = seal(secret, a.pub, "agt_a", "d-1");
  t.deepEqual(open(sealed, a.privateKey, "agt_a", "d-1"), secret);
  t.false(Buffer.from(sealed.ct).includes(Buffer.from("password")));
  // Another agent's key, another agent id or deployment: refused.
  t.throws(() => open(sealed, agent().privateKey, "agt_a", "d-1"));
  t.throws(() => open(sealed, a.privateKey, "agt_b", "d-1"));
  t.throws(() => open(sealed, a.privateKey, "agt_a", "d-2"));
});

test("a tampered seal does not open", (t) => {
  const a = agent();
  const sealed = seal(secret, a.pub, "agt_a", "d-1");
  for (const field of ["epk", "iv", "ct"] as const) {
    const bad = { ...sealed, [field]: Uint8Array.from(sealed[field]) };
    bad[field][0]! ^= 1;
    t.throws(() => open(bad, a.privateKey, "agt_a", "d-1"), undefined, field);
  }
});

test("each seal uses a fresh ephemeral key and nonce", (t) => {
  const a = agent();
  const one = seal(secret, a.pub, "agt_a", "d-1");
  const two = seal(secret, a.pub, "agt_a", "d-1");
  t.notDeepEqual(one.epk, two.epk);
  t.notDeepEqual(one.ct, two.ct);
});
