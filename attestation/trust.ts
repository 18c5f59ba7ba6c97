// Trust anchors for PCK chains: the Intel SGX Root CA, always, and a development root only when the operator
// asks for it (`--dev-attestation DIR`). A chain is trusted only if its root is byte-identical to an anchor.
// Imports attestation/pem.ts and spec/errors.ts.
import { createHash, X509Certificate } from "node:crypto";
import { ValidationError } from "../spec/errors.ts";
import { parsePemCertificates } from "./pem.ts";

/** Intel SGX Root CA (public), valid 2018-05-21 to 2049-12-31, SHA-256 fingerprint 44a0196b…74d3. */
export const INTEL_SGX_ROOT_CA_PEM = `-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----`;

export type TrustAnchorLabel = "intel" | "dev";

export interface TrustAnchor {
  readonly label: TrustAnchorLabel;
  readonly cert: X509Certificate;
  readonly der: Uint8Array;
  /** SHA-256 of the DER, lowercase hex. */
  readonly fingerprint: string;
}

export interface TrustAnchors {
  readonly anchors: readonly TrustAnchor[];
  /** The anchor whose certificate is byte-identical to `der`, if any. */
  match(der: Uint8Array): TrustAnchor | undefined;
}

export function createTrustAnchors(opts: { devRootPem?: string } = {}): TrustAnchors {
  const anchors = [anchorFromPem("intel", INTEL_SGX_ROOT_CA_PEM)];
  if (opts.devRootPem !== undefined) anchors.push(anchorFromPem("dev", opts.devRootPem));
  return anchorSet(anchors);
}

/**
 * Intel's root and `roots` (PEM, e.g. a federation master's development roots, labelled dev; Intel's own root in
 * the list is not added twice). Throws EE-CONFIG-INVALID unless each is one self-signed CA certificate.
 */
export function trustIntelAnd(roots: readonly string[]): TrustAnchors {
  const intel = anchorFromPem("intel", INTEL_SGX_ROOT_CA_PEM);
  const others = roots
    .map((pem) => anchorFromPem("dev", pem))
    .filter((a) => a.fingerprint !== intel.fingerprint);
  return anchorSet([intel, ...others]);
}

/** The anchors besides Intel's, as PEM: what a federation master publishes as its trust roots. */
export function nonIntelRootPems(trust: TrustAnchors): string[] {
  return trust.anchors.filter((a) => a.label !== "intel").map((a) => a.cert.toString());
}

/**
 * Trust only `pem` (e.g. `eectl attest verify --root`): labelled "intel" when it is the Intel root, else "dev".
 * Throws EE-CONFIG-INVALID unless it is one self-signed CA certificate.
 */
export function trustOnly(pem: string): TrustAnchors {
  const intel = anchorFromPem("intel", INTEL_SGX_ROOT_CA_PEM);
  const given = anchorFromPem("dev", pem);
  return anchorSet([given.fingerprint === intel.fingerprint ? intel : given]);
}

function anchorSet(anchors: TrustAnchor[]): TrustAnchors {
  const byFingerprint = new Map(anchors.map((a) => [a.fingerprint, a]));
  return {
    anchors,
    match(der) {
      const anchor = byFingerprint.get(sha256Hex(der));
      return anchor && Buffer.from(anchor.der).equals(der) ? anchor : undefined;
    },
  };
}

function anchorFromPem(label: TrustAnchorLabel, pem: string): TrustAnchor {
  const invalid = (why: string) =>
    new ValidationError("EE-CONFIG-INVALID", `${label} attestation root: ${why}`, { anchor: label });
  let ders: Uint8Array[];
  try {
    ders = parsePemCertificates(pem);
  } catch (err) {
    throw invalid((err as Error).message);
  }
  const [der, ...rest] = ders;
  if (der === undefined || rest.length > 0) throw invalid(`expected one certificate, found ${ders.length}`);
  const cert = new X509Certificate(der);
  // A root vouches for itself: it must be a CA whose self-signature verifies.
  if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    throw invalid("not a self-signed CA certificate");
  }
  return { label, cert, der, fingerprint: sha256Hex(der) };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
