// The Intel SGX extension of PCK leaf certificates (OID 1.2.840.113741.1.13.1): the platform's FMSPC and PCE ID,
// which select its TCB info in collateral. The dev PKI writes it; the verifier reads it back from a PCK leaf.
// Malformed input throws SyntaxError; callers turn it into their typed error. Imports attestation/der.ts.
import { derOid, derRead, derReadOne, derTlv, isOid, TAG } from "./der.ts";

export const SGX_EXTENSION_OID = "1.2.840.113741.1.13.1";
const PCEID_OID = `${SGX_EXTENSION_OID}.3`;
const FMSPC_OID = `${SGX_EXTENSION_OID}.4`;

export interface SgxExtensionValues {
  /** 6 bytes, lowercase hex. */
  fmspc: string;
  /** 2 bytes, lowercase hex. */
  pceid: string;
}

/** The extension's DER value (what goes inside the certificate extension's OCTET STRING). */
export function encodeSgxExtension(values: SgxExtensionValues): Uint8Array {
  const entry = (oid: string, hex: string, size: number) => {
    const value = Buffer.from(hex, "hex");
    if (value.length !== size || value.toString("hex") !== hex) {
      throw new SyntaxError(`${oid} needs ${size} bytes of lowercase hex`);
    }
    return derTlv(TAG.sequence, derOid(oid), derTlv(TAG.octetString, value));
  };
  return derTlv(TAG.sequence, entry(PCEID_OID, values.pceid, 2), entry(FMSPC_OID, values.fmspc, 6));
}

/** FMSPC and PCE ID from a certificate's SGX extension, or null when it has none. */
export function sgxExtensionOf(certificateDer: Uint8Array): SgxExtensionValues | null {
  const certificate = derReadOne(certificateDer, TAG.sequence, "certificate");
  const [tbs] = derRead(certificate.value);
  if (tbs?.tag !== TAG.sequence) throw new SyntaxError("certificate has no TBSCertificate");
  const extensions = derRead(tbs.value).find((field) => field.tag === TAG.explicit(3));
  if (extensions === undefined) return null;
  for (const extension of derRead(derReadOne(extensions.value, TAG.sequence, "extensions").value)) {
    const parts = extension.tag === TAG.sequence ? derRead(extension.value) : [];
    if (!isOid(parts[0], SGX_EXTENSION_OID)) continue;
    const value = parts[parts.length - 1];
    if (value?.tag !== TAG.octetString) throw new SyntaxError("SGX extension has no OCTET STRING value");
    return decodeSgxExtension(value.value);
  }
  return null;
}

function decodeSgxExtension(der: Uint8Array): SgxExtensionValues {
  const entries = derRead(derReadOne(der, TAG.sequence, "SGX extension").value).map((entry) => {
    const [id, value] = entry.tag === TAG.sequence ? derRead(entry.value) : [];
    if (id === undefined || value === undefined) throw new SyntaxError("SGX extension entry malformed");
    return { id, value };
  });
  const octets = (oid: string, size: number) => {
    const found = entries.find((e) => isOid(e.id, oid))?.value;
    if (found?.tag !== TAG.octetString || found.value.length !== size) {
      throw new SyntaxError(`SGX extension lacks a ${size}-byte ${oid}`);
    }
    return Buffer.from(found.value).toString("hex");
  };
  return { fmspc: octets(FMSPC_OID, 6), pceid: octets(PCEID_OID, 2) };
}
