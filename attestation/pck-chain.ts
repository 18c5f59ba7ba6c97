// PCK certificate chain checks: the PEM chain from a quote's type 5 certification data must be exactly
// leaf → PCK CA → root, the root byte-identical to a trust anchor (the caller matches it: that costs no signature
// check, so unknown roots are refused cheaply), names and key identifiers linking, each signature verifying under
// its issuer's key, and CA flags where they belong. The result carries the chain's validity window, so that a
// cached chain is still checked against the time of each quote.
// Imports attestation/ modules and spec/errors.ts.
import { createHash, type KeyObject, X509Certificate } from "node:crypto";
import { AttestationError } from "../spec/errors.ts";
import { parsePemCertificates } from "./pem.ts";
import { sgxExtensionOf } from "./sgx-extension.ts";
import type { TrustAnchor, TrustAnchorLabel } from "./trust.ts";

export interface PckLeafInfo {
  subject: string;
  issuer: string;
  /** Lowercase hex without leading zeros. */
  serial_number: string;
  /** ISO 8601. */
  not_before: string;
  not_after: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint_sha256: string;
  /** From the SGX extension; null when the leaf has none. */
  fmspc: string | null;
  pceid: string | null;
}

export interface VerifiedPckChain {
  leafKey: KeyObject;
  leaf: PckLeafInfo;
  root: TrustAnchorLabel;
  /** The intersection of the three certificates' validity windows, in ms since the epoch. */
  notBefore: number;
  notAfter: number;
}

function invalid(message: string): AttestationError {
  return new AttestationError("EE-ATT-CHAIN-INVALID", message);
}

/** The three certificates of a type 5 PEM chain, as DER. */
export interface PckChainCertificates {
  leaf: Uint8Array;
  ca: Uint8Array;
  root: Uint8Array;
}

export function splitPckChain(pemBytes: Uint8Array): PckChainCertificates {
  // Intel terminates the PEM text with one NUL, C-string style.
  const text = Buffer.from(pemBytes).toString("latin1").replace(/\0$/, "");
  let ders: Uint8Array[];
  try {
    ders = parsePemCertificates(text);
  } catch (err) {
    throw invalid(`PCK chain: ${(err as Error).message}`);
  }
  const [leaf, ca, root, ...extra] = ders;
  if (leaf === undefined || ca === undefined || root === undefined || extra.length > 0) {
    throw invalid(`PCK chain has ${ders.length} certificates, expected 3 (leaf, PCK CA, root)`);
  }
  return { leaf, ca, root };
}

/** Checks the chain under `anchor`, which the caller has matched to `certs.root` byte for byte. */
export function verifyPckChain(certs: PckChainCertificates, anchor: TrustAnchor): VerifiedPckChain {
  const leaf = certificate(certs.leaf, "PCK leaf");
  const ca = certificate(certs.ca, "PCK CA");
  const root = anchor.cert;

  if (!ca.ca) throw invalid("PCK CA certificate is not a CA");
  if (leaf.ca) throw invalid("PCK leaf certificate is a CA");
  if (!ca.checkIssued(root) || !ca.verify(root.publicKey)) throw invalid("PCK CA is not issued by the root");
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey))
    throw invalid("PCK leaf is not issued by the PCK CA");
  if (leaf.publicKey.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    throw invalid("PCK leaf key is not P-256");

  const all = [leaf, ca, root];
  const notBefore = Math.max(...all.map((c) => Date.parse(c.validFrom)));
  const notAfter = Math.min(...all.map((c) => Date.parse(c.validTo)));
  return {
    leafKey: leaf.publicKey,
    leaf: leafInfo(leaf, certs.leaf),
    root: anchor.label,
    notBefore,
    notAfter,
  };
}

/** Throws unless `at` lies inside the chain's validity window. */
export function checkPckChainTime(chain: VerifiedPckChain, at: Date): void {
  const t = at.getTime();
  if (!(t >= chain.notBefore && t <= chain.notAfter)) {
    const window = `${new Date(chain.notBefore).toISOString()} to ${new Date(chain.notAfter).toISOString()}`;
    throw invalid(`PCK chain is valid from ${window}, not at ${at.toISOString()}`);
  }
}

function certificate(der: Uint8Array, what: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw invalid(`${what} certificate does not parse`);
  }
  // OpenSSL ignores bytes after the certificate; refusing them keeps one chain to one encoding.
  if (!Buffer.from(cert.raw).equals(der)) throw invalid(`${what} certificate has trailing bytes`);
  return cert;
}

function leafInfo(leaf: X509Certificate, der: Uint8Array): PckLeafInfo {
  // Anything odd here (a malformed SGX extension, a negative serial, an unreadable date) is a bad certificate.
  try {
    const sgx = sgxExtensionOf(der);
    return {
      // Node lists name attributes one per line.
      subject: leaf.subject.split("\n").join(", "),
      issuer: leaf.issuer.split("\n").join(", "),
      serial_number: BigInt(`0x${leaf.serialNumber}`).toString(16),
      not_before: new Date(leaf.validFrom).toISOString(),
      not_after: new Date(leaf.validTo).toISOString(),
      fingerprint_sha256: createHash("sha256").update(der).digest("hex"),
      fmspc: sgx?.fmspc ?? null,
      pceid: sgx?.pceid ?? null,
    };
  } catch (err) {
    throw invalid(`PCK leaf: ${(err as Error).message}`);
  }
}
