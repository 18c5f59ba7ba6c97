// Development attestation PKI: `eectl attest dev-init` creates it, the dev quote provider signs with it, and a CP
// started with `--dev-attestation DIR` trusts its root. Files in DIR (created 0700 if missing):
//   root-ca.pem      self-signed development root CA; the only file a CP needs
//   pck-ca.pem       development PCK CA, issued by the root
//   pck-leaf.pem     development PCK leaf, issued by the PCK CA, with the SGX extension (FMSPC, PCE ID)
//   pck-leaf.key     PKCS#8 PEM, mode 0600: signs QE reports
//   attestation.key  PKCS#8 PEM, mode 0600: the quoting enclave's attestation key, signs quotes
// The root and PCK CA private keys are dropped once they have signed: nothing more is ever issued under a dev
// root, and `force` makes a new one. File I/O happens only inside the functions.
// Imports attestation/ modules and spec/errors.ts.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  X509Certificate,
} from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ValidationError } from "../spec/errors.ts";
import { type DevName, issueCertificate } from "./dev-certificates.ts";
import { encodeSgxExtension, SGX_EXTENSION_OID } from "./sgx-extension.ts";

export const DEV_PKI_FILES = {
  rootCert: "root-ca.pem",
  caCert: "pck-ca.pem",
  leafCert: "pck-leaf.pem",
  leafKey: "pck-leaf.key",
  attestationKey: "attestation.key",
} as const;

/** FMSPC and PCE ID in the dev PCK leaf; no Intel platform has this FMSPC. */
export const DEV_FMSPC = "ee0000000000";
export const DEV_PCEID = "0000";

const ORGANIZATION = "EasyEnclave development";
const ROOT_NAME: DevName = {
  commonName: "EasyEnclave DEVELOPMENT attestation root CA - NOT FOR PRODUCTION",
  organization: ORGANIZATION,
};
const CA_NAME: DevName = {
  commonName: "EasyEnclave DEVELOPMENT PCK CA - NOT FOR PRODUCTION",
  organization: ORGANIZATION,
};
const LEAF_NAME: DevName = {
  commonName: "EasyEnclave DEVELOPMENT PCK certificate - NOT FOR PRODUCTION",
  organization: ORGANIZATION,
};
const YEAR_MS = 365 * 24 * 3600 * 1000;

export interface DevInitResult {
  dir: string;
  /** Absolute paths of the files written. */
  files: string[];
  /** SHA-256 of the root certificate's DER, lowercase hex. */
  rootFingerprint: string;
}

/** The signing material the dev quote provider needs. */
export interface DevPki {
  attestationKey: KeyObject;
  pckLeafKey: KeyObject;
  /** Leaf, PCK CA and root, PEM, in that order: the type 5 certification data of every dev quote. */
  chainPem: string;
}

export async function devInit(dir: string, opts: { force?: boolean } = {}): Promise<DevInitResult> {
  const path = (name: string) => join(dir, name);
  if (existsSync(path(DEV_PKI_FILES.rootCert)) && !opts.force) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${path(DEV_PKI_FILES.rootCert)} exists; pass force (--force) to replace the development root`,
    );
  }
  const newKeyPair = () => promisify(generateKeyPair)("ec", { namedCurve: "P-256" });
  const rootKeys = await newKeyPair();
  const caKeys = await newKeyPair();
  const leafKeys = await newKeyPair();
  const attestationKeys = await newKeyPair();

  // An hour of slack so that a CP whose clock lags the machine that ran dev-init still accepts the chain.
  const notBefore = new Date(Date.now() - 3600 * 1000);
  const until = (years: number) => new Date(notBefore.getTime() + years * YEAR_MS);
  const root = issueCertificate({
    subject: ROOT_NAME,
    publicKey: rootKeys.publicKey,
    issuer: ROOT_NAME,
    issuerPublicKey: rootKeys.publicKey,
    issuerPrivateKey: rootKeys.privateKey,
    notBefore,
    notAfter: until(20),
    ca: { pathLength: 1 },
  });
  const ca = issueCertificate({
    subject: CA_NAME,
    publicKey: caKeys.publicKey,
    issuer: ROOT_NAME,
    issuerPublicKey: rootKeys.publicKey,
    issuerPrivateKey: rootKeys.privateKey,
    notBefore,
    notAfter: until(20),
    ca: { pathLength: 0 },
  });
  const leaf = issueCertificate({
    subject: LEAF_NAME,
    publicKey: leafKeys.publicKey,
    issuer: CA_NAME,
    issuerPublicKey: caKeys.publicKey,
    issuerPrivateKey: caKeys.privateKey,
    notBefore,
    notAfter: until(10),
    ca: null,
    extensions: [
      {
        oid: SGX_EXTENSION_OID,
        critical: false,
        value: encodeSgxExtension({ fmspc: DEV_FMSPC, pceid: DEV_PCEID }),
      },
    ],
  });

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  const write = (name: string, text: string, mode: number) => {
    writeFileSync(path(name), text, { mode });
    // writeFileSync applies the mode only to new files; a forced re-init must tighten existing ones too.
    chmodSync(path(name), mode);
    written.push(path(name));
  };
  write(DEV_PKI_FILES.leafKey, privateKeyPem(leafKeys.privateKey), 0o600);
  write(DEV_PKI_FILES.attestationKey, privateKeyPem(attestationKeys.privateKey), 0o600);
  write(DEV_PKI_FILES.leafCert, certificatePem(leaf), 0o644);
  write(DEV_PKI_FILES.caCert, certificatePem(ca), 0o644);
  // The root goes last: its presence is what marks a directory as initialised.
  write(DEV_PKI_FILES.rootCert, certificatePem(root), 0o644);
  return { dir, files: written, rootFingerprint: createHash("sha256").update(root).digest("hex") };
}

function certificatePem(der: Uint8Array): string {
  return new X509Certificate(der).toString();
}

function privateKeyPem(key: KeyObject): string {
  return key.export({ format: "pem", type: "pkcs8" }).toString();
}

export function loadDevPki(dir: string): DevPki {
  const attestationKey = privateKey(dir, DEV_PKI_FILES.attestationKey);
  const pckLeafKey = privateKey(dir, DEV_PKI_FILES.leafKey);
  const leafPem = readDevFile(dir, DEV_PKI_FILES.leafCert);
  const leaf = parseDevFile(dir, DEV_PKI_FILES.leafCert, () => new X509Certificate(leafPem));
  // A mismatch would only surface at the CP, as QE report signature failures far from the cause.
  if (!leaf.publicKey.equals(createPublicKey(pckLeafKey))) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `${join(dir, DEV_PKI_FILES.leafKey)} does not match the PCK leaf`,
    );
  }
  const chainPem = [leafPem, readDevFile(dir, DEV_PKI_FILES.caCert), loadDevRootPem(dir)].join("");
  return { attestationKey, pckLeafKey, chainPem };
}

/** The development root a CP trusts with `--dev-attestation DIR`. */
export function loadDevRootPem(dir: string): string {
  return readDevFile(dir, DEV_PKI_FILES.rootCert);
}

function privateKey(dir: string, name: string): KeyObject {
  const pem = readDevFile(dir, name);
  const key = parseDevFile(dir, name, () => createPrivateKey(pem));
  if (key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new ValidationError("EE-CONFIG-INVALID", `${join(dir, name)} is not a P-256 private key`);
  }
  return key;
}

function parseDevFile<T>(dir: string, name: string, parse: () => T): T {
  try {
    return parse();
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `${join(dir, name)} does not parse`);
  }
}

function readDevFile(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, name), "utf8");
  } catch (err) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `cannot read ${join(dir, name)} (${(err as NodeJS.ErrnoException).code ?? "error"}); run eectl attest dev-init --dir ${dir}`,
    );
  }
}
