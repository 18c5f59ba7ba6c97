// Telling a certificate the client does not trust apart from other connection failures, so eectl and the agent
// can say "not trusted: pass the CA" (EE-TLS-UNTRUSTED) instead of a generic unreachable. Node reports these
// with OpenSSL's verify codes on the error (fetch: on its cause). Imports nothing.

/** OpenSSL verify results and Node's host check: the certificate chain or name is not one the client trusts. */
const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** The verify code and message when `err` (or its cause) is an untrusted server certificate, else null. */
export function untrustedCertificate(err: unknown): { code: string; message: string } | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && UNTRUSTED.has(code)) return { code, message: e.message };
  }
  return null;
}
