// X.509 CRLs (RFC 5280 CertificateList) as Intel PCS serves them: the Root CA CRL and the PCK CRL. Node's crypto
// has no CRL API, so this reads the DER just far enough to check the signature, the issuer name, the update
// window and the revoked serials. Also reads a certificate's issuer and subject Name DER, so CRL issuers are
// compared byte for byte rather than through Node's display strings. Malformed input throws SyntaxError;
// callers turn it into their typed error. Imports attestation/der.ts.
import { type KeyObject, verify } from "node:crypto";
import { derRead, derReadOne, TAG, type Tlv } from "./der.ts";

export interface Crl {
  /** The exact DER of tbsCertList: what the signature covers. */
  tbs: Uint8Array;
  /** DER-encoded ECDSA signature. */
  signature: Uint8Array;
  /** Content bytes of the issuer Name SEQUENCE. */
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Revoked serial numbers, lowercase hex without leading zeros. */
  revoked: Set<string>;
}

export function parseCrl(der: Uint8Array): Crl {
  const outer = derReadOne(der, TAG.sequence, "CRL");
  const [tbs, , signatureValue, ...extra] = derRead(outer.value);
  if (tbs?.tag !== TAG.sequence || signatureValue?.tag !== TAG.bitString || extra.length > 0) {
    throw new SyntaxError("CRL is not tbsCertList, signatureAlgorithm, signatureValue");
  }
  const fields = derRead(tbs.value);
  let i = fields[0]?.tag === TAG.integer ? 1 : 0; // version is optional
  i++; // signature AlgorithmIdentifier
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (issuer?.tag !== TAG.sequence || thisUpdate === undefined)
    throw new SyntaxError("CRL lacks issuer/thisUpdate");
  let nextUpdate: Date | null = null;
  const maybeNext = fields[i];
  if (maybeNext !== undefined && isTime(maybeNext)) {
    nextUpdate = derDate(maybeNext);
    i++;
  }
  const revoked = new Set<string>();
  const list = fields[i];
  if (list?.tag === TAG.sequence) {
    for (const entry of derRead(list.value)) {
      const [serial] = entry.tag === TAG.sequence ? derRead(entry.value) : [];
      if (serial?.tag !== TAG.integer) throw new SyntaxError("CRL entry lacks a serial number");
      revoked.add(serialHex(serial.value));
    }
  }
  const tbsLength = tbs.value.byteOffset - outer.value.byteOffset + tbs.value.length;
  return {
    tbs: outer.value.subarray(0, tbsLength),
    // The BIT STRING's first byte counts unused bits, always 0 for a signature.
    signature: signatureValue.value.subarray(1),
    issuer: issuer.value,
    thisUpdate: derDate(thisUpdate),
    nextUpdate,
    revoked,
  };
}

export function crlSignedBy(crl: Crl, key: KeyObject): boolean {
  try {
    return verify("sha256", crl.tbs, { key, dsaEncoding: "der" }, crl.signature);
  } catch {
    return false;
  }
}

/** Lowercase hex without leading zeros, as CRL entries and PckLeafInfo.serial_number spell serials. */
function serialHex(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString("hex");
  return hex === "" ? "0" : BigInt(`0x${hex}`).toString(16);
}

/** Content bytes of a certificate's issuer and subject Names. */
export function certificateNames(certificateDer: Uint8Array): { issuer: Uint8Array; subject: Uint8Array } {
  const [tbs] = derRead(derReadOne(certificateDer, TAG.sequence, "certificate").value);
  if (tbs?.tag !== TAG.sequence) throw new SyntaxError("certificate has no TBSCertificate");
  const fields = derRead(tbs.value);
  const start = fields[0]?.tag === TAG.explicit(0) ? 1 : 0;
  const issuer = fields[start + 2];
  const subject = fields[start + 4];
  if (issuer?.tag !== TAG.sequence || subject?.tag !== TAG.sequence) {
    throw new SyntaxError("certificate lacks issuer/subject");
  }
  return { issuer: issuer.value, subject: subject.value };
}

function isTime(tlv: Tlv): boolean {
  return tlv.tag === TAG.utcTime || tlv.tag === TAG.generalizedTime;
}

function derDate(tlv: Tlv): Date {
  const text = Buffer.from(tlv.value).toString("latin1");
  const m =
    tlv.tag === TAG.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : tlv.tag === TAG.generalizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (m === null)
    throw new SyntaxError(`CRL time ${JSON.stringify(text)} is not UTCTime/GeneralizedTime in Z`);
  const [, y = "", mo = "", d = "", h = "", mi = "", s = ""] = m;
  // RFC 5280: two-digit years 50-99 are 19xx, 00-49 are 20xx.
  const year = y.length === 2 ? (Number(y) >= 50 ? 1900 : 2000) + Number(y) : Number(y);
  return new Date(Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
}
