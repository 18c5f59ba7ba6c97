// Agent keys: the agent id derivation and the proof of possession the CP checks before any actor sees a register.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import test from "ava";
import { agentIdFromPubkey, rawPublicKey, signPop, verifyPop } from "../../attestation/agent-key.ts";

function keys() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, raw: rawPublicKey(publicKey) };
}

test("a proof of possession verifies under its own raw public key and nonce only", (t) => {
  const a = keys();
  const b = keys();
  const nonce = new Uint8Array(randomBytes(32));
  const pop = signPop(a.privateKey, nonce);
  t.true(verifyPop(a.raw, nonce, pop));
  t.false(verifyPop(b.raw, nonce, pop), "another agent's public key");
  t.false(verifyPop(a.raw, new Uint8Array(randomBytes(32)), pop), "another nonce");
  const tampered = new Uint8Array(pop);
  tampered[10]! ^= 1;
  t.false(verifyPop(a.raw, nonce, tampered), "a flipped bit");
});

test("malformed keys and signatures are refused, never thrown", (t) => {
  const a = keys();
  const nonce = new Uint8Array(32);
  const pop = signPop(a.privateKey, nonce);
  t.false(verifyPop(a.raw.subarray(0, 31), nonce, pop));
  t.false(verifyPop(a.raw, nonce, pop.subarray(0, 63)));
  t.false(verifyPop(new Uint8Array(32), nonce, pop));
  t.false(verifyPop(new Uint8Array(32).fill(0xff), nonce, pop));
});

test("the agent id is derived from the raw public key", (t) => {
  const a = keys();
  t.regex(agentIdFromPubkey(a.raw), /^agt_[0-9a-f]{24}$/);
  t.is(agentIdFromPubkey(a.raw), agentIdFromPubkey(new Uint8Array(a.raw)));
  t.not(agentIdFromPubkey(a.raw), agentIdFromPubkey(keys().raw));
});
