// The agent's identity: an Ed25519 key pair kept in <data_dir>/agent-key.pem. Created on the first start and
// reused afterwards, so the agent_id (derived from the public key) survives restarts and CP database loss.
// May import attestation/agent-key.ts, spec/ and node: modules only.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { link, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { agentIdFromPubkey, rawPublicKey } from "../attestation/agent-key.ts";
import { ensureDataDir } from "../lib/data-dir.ts";
import { ValidationError } from "../spec/errors.ts";

export const AGENT_KEY_FILE = "agent-key.pem";

export interface AgentIdentity {
  agentId: string;
  /** Raw 32-byte Ed25519 public key: `agent_pubkey` in register. */
  publicKey: Uint8Array;
  privateKey: KeyObject;
  keyPath: string;
  /** True when this start generated the key. */
  created: boolean;
}

function identityOf(privateKey: KeyObject, keyPath: string, created: boolean): AgentIdentity {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { agentId: agentIdFromPubkey(publicKey), publicKey, privateKey, keyPath, created };
}

function invalid(keyPath: string, why: string): ValidationError {
  return new ValidationError("EE-CONFIG-INVALID", `${keyPath}: ${why}`, { key: "data_dir", path: keyPath });
}

async function readKey(keyPath: string): Promise<KeyObject | null> {
  let pem: string;
  try {
    const st = await stat(keyPath);
    // Like ssh: a private key others can read is not trusted to be private any more.
    if ((st.mode & 0o077) !== 0) {
      throw invalid(
        keyPath,
        `agent key is accessible by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    pem = await readFile(keyPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw invalid(keyPath, "agent key is not a PEM private key");
  }
  if (key.asymmetricKeyType !== "ed25519") throw invalid(keyPath, "agent key is not an Ed25519 key");
  return key;
}

/**
 * Writes the key without ever exposing a partial or clobbering an existing file: written 0600 to a temporary
 * name, then hard-linked into place (link fails if another process won the race, and then its key is used).
 */
async function writeKey(keyPath: string, key: KeyObject): Promise<boolean> {
  const tmp = `${keyPath}.${process.pid}.tmp`;
  await writeFile(tmp, key.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
  try {
    await link(tmp, keyPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    await unlink(tmp);
  }
}

/** The agent_id of the key in `dataDir`, without creating anything; null before the agent's first start. */
export async function readAgentId(dataDir: string): Promise<string | null> {
  const keyPath = join(dataDir, AGENT_KEY_FILE);
  const key = await readKey(keyPath);
  return key && identityOf(key, keyPath, false).agentId;
}

/** Loads the agent key from `dataDir`, creating the directory (0700) and the key (0600) on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<AgentIdentity> {
  ensureDataDir(dataDir, "data_dir in the agent config");
  const keyPath = join(dataDir, AGENT_KEY_FILE);
  const existing = await readKey(keyPath);
  if (existing) return identityOf(existing, keyPath, false);
  const { privateKey } = generateKeyPairSync("ed25519");
  if (await writeKey(keyPath, privateKey)) return identityOf(privateKey, keyPath, true);
  const winner = await readKey(keyPath);
  if (!winner) throw invalid(keyPath, "agent key vanished while being created");
  return identityOf(winner, keyPath, false);
}
