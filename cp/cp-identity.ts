// Bootstrap state the CP reads from its data dir and flags before anything runs: its identity key (an Ed25519 key
// in DATA_DIR/cp-identity.key, never in a database) as the envelope signer, and where collateral comes from.
// Imports attestation/, lib/ and spec/errors.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CollateralSource,
  chainCollateralSources,
  type FileCollateral,
} from "../attestation/collateral-store.ts";
import { createEnvelopeSigner, type EnvelopeSigner, quoteCpKey } from "../attestation/cp-envelope.ts";
import { PccsCollateralSource } from "../attestation/pccs.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import type { Logger } from "../lib/log.ts";
import { ValidationError } from "../spec/errors.ts";

export const CP_IDENTITY_FILE = "cp-identity.key";

/**
 * The CP identity key (loadOrCreateCpKey) as an envelope signer, with this start's quote over its public key when
 * the CP has a quote provider.
 */
export async function envelopeSigner(
  privateKey: KeyObject,
  opts: { log: Logger; quoteProvider?: QuoteProvider },
): Promise<EnvelopeSigner> {
  const unquoted = createEnvelopeSigner({ privateKey });
  const pub = Buffer.from(unquoted.publicKey).toString("hex");
  if (!opts.quoteProvider) {
    opts.log.info({ cp_pubkey: pub }, "CP identity (no quote provider: envelopes are signed, not attested)");
    return unquoted;
  }
  const quote = await quoteCpKey(opts.quoteProvider, unquoted.publicKey);
  opts.log.info({ cp_pubkey: pub, provider: opts.quoteProvider.name }, "CP identity, attested");
  return createEnvelopeSigner({ privateKey, quote });
}

/** The CP identity key, DATA_DIR/cp-identity.key (Ed25519, 0600; bootstrap state, never in the DB). */
export function loadOrCreateCpKey(file: string): KeyObject {
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" });
    try {
      // Exclusive create: a CP racing us on the same data dir keeps its key, and we read it below.
      writeFileSync(file, pem, { mode: 0o600, flag: "wx" });
      return privateKey;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, "utf8"));
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not an Ed25519 key`);
  return key;
}

/** Files first, then the PCCS: a file pins a platform's collateral even when a PCCS is configured. */
export function collateralSource(opts: {
  dataDir: string;
  log: Logger;
  collateral?: FileCollateral;
  collateralUrl?: string;
}): CollateralSource | undefined {
  if (!opts.collateralUrl) return opts.collateral;
  const pccs = new PccsCollateralSource({
    url: opts.collateralUrl,
    cacheDir: join(opts.dataDir, "collateral-cache"),
    warn: (message, err) => opts.log.warn({ err }, message),
  });
  return opts.collateral ? chainCollateralSources([opts.collateral, pccs]) : pccs;
}
