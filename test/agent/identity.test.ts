// Agent identity: the Ed25519 key is created once under data_dir (0700 dir, 0600 file) and reused.
import { chmod, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import { AGENT_KEY_FILE, loadOrCreateIdentity } from "../../agent/identity.ts";
import { agentIdFromPubkey, signPop, verifyPop } from "../../attestation/agent-key.ts";
import { ValidationError } from "../../spec/errors.ts";
import { tempDir } from "../helpers/temp.ts";

test("the first start creates the key; later starts reuse it and keep the agent_id", async (t) => {
  const dataDir = join(tempDir(t, "ee-agent-id-"), "data", "agent");
  const first = await loadOrCreateIdentity(dataDir);
  t.true(first.created);
  t.is(first.publicKey.length, 32);
  t.regex(first.agentId, /^agt_[0-9a-f]{24}$/);
  t.is(first.agentId, agentIdFromPubkey(first.publicKey));
  t.is(first.keyPath, join(dataDir, AGENT_KEY_FILE));

  const second = await loadOrCreateIdentity(dataDir);
  t.false(second.created);
  t.is(second.agentId, first.agentId);
  t.deepEqual(second.publicKey, first.publicKey);
  // The reloaded private key is the same key: its proof of possession verifies under the first public key.
  const nonce = new Uint8Array(32).fill(1);
  t.true(verifyPop(first.publicKey, nonce, signPop(second.privateKey, nonce)));
});

test("data_dir is created 0700 and the key file 0600", async (t) => {
  const dataDir = join(tempDir(t, "ee-agent-id-"), "d");
  const id = await loadOrCreateIdentity(dataDir);
  t.is((await stat(dataDir)).mode & 0o777, 0o700);
  t.is((await stat(id.keyPath)).mode & 0o777, 0o600);
});

test("an existing data_dir is used as it is", async (t) => {
  const dataDir = tempDir(t, "ee-agent-id-");
  await chmod(dataDir, 0o750);
  await loadOrCreateIdentity(dataDir);
  t.is((await stat(dataDir)).mode & 0o777, 0o750);
});

test("a key others can read is refused", async (t) => {
  const dataDir = tempDir(t, "ee-agent-id-");
  const id = await loadOrCreateIdentity(dataDir);
  await chmod(id.keyPath, 0o644);
  const err = await t.throwsAsync(loadOrCreateIdentity(dataDir), { instanceOf: ValidationError });
  t.is(err.code, "EE-CONFIG-INVALID");
  t.regex(err.message, /accessible by others \(mode 644\)/);
});

test("a corrupt or non-Ed25519 key file is refused, never overwritten", async (t) => {
  const dataDir = tempDir(t, "ee-agent-id-");
  const keyPath = join(dataDir, AGENT_KEY_FILE);
  await writeFile(keyPath, "garbage", { mode: 0o600 });
  const err = await t.throwsAsync(loadOrCreateIdentity(dataDir), { instanceOf: ValidationError });
  t.regex(err.message, /not a PEM private key/);

  const { generateKeyPairSync } = await import("node:crypto");
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    format: "pem",
    type: "pkcs8",
  });
  await writeFile(keyPath, ec, { mode: 0o600 });
  const err2 = await t.throwsAsync(loadOrCreateIdentity(dataDir), { instanceOf: ValidationError });
  t.regex(err2.message, /not an Ed25519 key/);
});
