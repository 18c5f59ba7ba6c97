// X.509 certificates for the development PKI, built with node:crypto and DER by hand: just what a PCK chain needs
// (names, validity, basic constraints, key usage, key identifiers, and extra extensions such as the SGX one),
// signed ECDSA-SHA256. Node can parse certificates but not make them. Imports attestation/der.ts.
import { createHash, type KeyObject, randomBytes, sign } from "node:crypto";
import {
  derBitString,
  derBoolean,
  derOid,
  derRead,
  derReadOne,
  derTime,
  derTlv,
  derUnsigned,
  derUtf8,
  TAG,
} from "./der.ts";

export interface DevName {
  commonName: string;
  organization: string;
}

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** The extension's DER value. */
  value: Uint8Array;
}

export interface CertificateRequest {
  subject: DevName;
  publicKey: KeyObject;
  /** The subject's own name and keys for a self-signed certificate. */
  issuer: DevName;
  issuerPublicKey: KeyObject;
  issuerPrivateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA may sign certificates (keyCertSign, cRLSign); a leaf only data (digitalSignature, nonRepudiation). */
  ca: { pathLength: number } | null;
  extensions?: CertificateExtension[];
}

const OID = {
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
} as const;

// KeyUsage bits, most significant first, with the count of unused trailing bits DER requires.
const KEY_USAGE_CA = { bits: 0x06, unused: 1 }; // keyCertSign, cRLSign
const KEY_USAGE_LEAF = { bits: 0xc0, unused: 6 }; // digitalSignature, nonRepudiation

/** The DER of a new certificate. */
export function issueCertificate(req: CertificateRequest): Uint8Array {
  const usage = req.ca ? KEY_USAGE_CA : KEY_USAGE_LEAF;
  const extensions: CertificateExtension[] = [
    {
      oid: OID.basicConstraints,
      critical: true,
      value: req.ca
        ? derTlv(TAG.sequence, derBoolean(true), derUnsigned(Uint8Array.of(req.ca.pathLength)))
        : derTlv(TAG.sequence),
    },
    { oid: OID.keyUsage, critical: true, value: derBitString(Uint8Array.of(usage.bits), usage.unused) },
    { oid: OID.subjectKeyIdentifier, critical: false, value: derTlv(TAG.octetString, keyId(req.publicKey)) },
    {
      oid: OID.authorityKeyIdentifier,
      critical: false,
      value: derTlv(TAG.sequence, derTlv(TAG.implicit(0), keyId(req.issuerPublicKey))),
    },
    ...(req.extensions ?? []),
  ];
  const signatureAlgorithm = derTlv(TAG.sequence, derOid(OID.ecdsaWithSha256));
  // A positive serial with its top bit clear, so that its minimal encoding is always 16 bytes.
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  const tbs = derTlv(
    TAG.sequence,
    derTlv(TAG.explicit(0), derUnsigned(Uint8Array.of(2))), // v3
    derUnsigned(serial),
    signatureAlgorithm,
    name(req.issuer),
    derTlv(TAG.sequence, derTime(req.notBefore), derTime(req.notAfter)),
    name(req.subject),
    spki(req.publicKey),
    derTlv(TAG.explicit(3), derTlv(TAG.sequence, ...extensions.map(extension))),
  );
  const signature = sign("sha256", tbs, req.issuerPrivateKey);
  return derTlv(TAG.sequence, tbs, signatureAlgorithm, derBitString(signature));
}

function name(n: DevName): Uint8Array {
  const rdn = (oid: string, value: string) =>
    derTlv(TAG.set, derTlv(TAG.sequence, derOid(oid), derUtf8(value)));
  return derTlv(TAG.sequence, rdn(OID.organization, n.organization), rdn(OID.commonName, n.commonName));
}

function extension(e: CertificateExtension): Uint8Array {
  // DER omits a BOOLEAN that equals its DEFAULT (critical FALSE).
  const critical = e.critical ? [derBoolean(true)] : [];
  return derTlv(TAG.sequence, derOid(e.oid), ...critical, derTlv(TAG.octetString, e.value));
}

function spki(publicKey: KeyObject): Uint8Array {
  return new Uint8Array(publicKey.export({ format: "der", type: "spki" }));
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits. */
function keyId(publicKey: KeyObject): Uint8Array {
  const [, bits] = derRead(derReadOne(spki(publicKey), TAG.sequence, "SubjectPublicKeyInfo").value);
  if (bits?.tag !== TAG.bitString) throw new SyntaxError("SubjectPublicKeyInfo has no public key bits");
  return createHash("sha1").update(bits.value.subarray(1)).digest();
}
