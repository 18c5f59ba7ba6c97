// TLS material read from files: the control plane's certificate and key (checked to be a matching PEM pair that
// Node's TLS accepts, with what identifies the certificate in logs) and the CA bundles clients trust for the CP.
// Every failure is a TlsError EE-TLS-INVALID naming the file and the flag or config key it came from, so a typo
// or a wrong file is an operator's mistake with a code, never a stack. Imports node:crypto, node:fs, node:tls,
// spec/errors and lib/read-problem.
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { TlsError } from "../spec/errors.ts";
import { readProblem } from "./read-problem.ts";

/** A server's certificate and key files, and how the operator names each (`--tls-cert`, `--tls-key`). */
export interface ServerTlsFiles {
  certFile: string;
  keyFile: string;
  certSetting: string;
  keySetting: string;
}

/** A usable certificate/key pair: the PEM texts for the TLS server, and what identifies the certificate. */
export interface ServerTls {
  cert: string;
  key: string;
  /** The leaf certificate's serial number (hex) and SHA-256 fingerprint, for logs and checks after a reload. */
  serial: string;
  fingerprint256: string;
  validTo: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function invalid(setting: string, file: string, why: string): TlsError {
  return new TlsError("EE-TLS-INVALID", `${setting} ${file}: ${why}`, { setting, path: file });
}

function readPem(file: string, setting: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw invalid(setting, file, readProblem(err));
  }
}

/** The certificates of a PEM text, each parsed; EE-TLS-INVALID when there is none or one does not parse. */
function certificates(pem: string, file: string, setting: string): X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0)
    throw invalid(setting, file, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw invalid(setting, file, `certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
}

/**
 * Reads and checks a server's certificate (the leaf first, then any intermediates) and its private key: both PEM,
 * the key the leaf's, and accepted together by Node's TLS. Reads the files anew on every call (SIGHUP reload).
 */
export function loadServerTls(files: ServerTlsFiles): ServerTls {
  const cert = readPem(files.certFile, files.certSetting);
  const key = readPem(files.keyFile, files.keySetting);
  const leaf = certificates(cert, files.certFile, files.certSetting)[0]!;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw invalid(files.keySetting, files.keyFile, "is not a PEM private key (or it is encrypted)");
  }
  if (!leaf.checkPrivateKey(privateKey))
    throw invalid(files.keySetting, files.keyFile, `is not the key of the certificate in ${files.certFile}`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw invalid(files.certSetting, files.certFile, `not usable for TLS (${(err as Error).message})`);
  }
  return { cert, key, serial: leaf.serialNumber, fingerprint256: leaf.fingerprint256, validTo: leaf.validTo };
}

/** A CA bundle (one or more PEM certificates) a client trusts instead of the system's CAs. */
export function readCaBundle(file: string, setting: string): string {
  const pem = readPem(file, setting);
  certificates(pem, file, setting);
  return pem;
}
