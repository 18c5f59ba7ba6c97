// Shared fixtures for the attestation tests: temp dev PKIs, the byte offsets of a dev (v4) quote, byte surgery
// and a probe that reports which AttestationError code a verification raised.
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import { devInit, loadDevRootPem } from "../../attestation/dev-pki.ts";
import { createDevQuoteProvider, type DevQuoteProviderOptions } from "../../attestation/providers/dev.ts";
import { createTrustAnchors, type TrustAnchors } from "../../attestation/trust.ts";
import { AttestationError } from "../../spec/errors.ts";
import { tempDir } from "../helpers/temp.ts";

/** The real quote samples; absent outside the EasyEnclave workspace. */
export const SHARED_QUOTES = new URL("../../../shared/tdx-quotes/", import.meta.url);
export const sharedQuotesAvailable = (): boolean => existsSync(SHARED_QUOTES);

/** Absolute offsets in a dev quote: v4, 32 bytes of QE auth data, the PEM chain last. */
export const DEV_QUOTE = {
  version: 0,
  keyType: 2,
  teeType: 4,
  qeSvn: 8,
  qeVendorId: 12,
  userData: 28,
  body: 48,
  mrtd: 48 + 136,
  reportData: 48 + 520,
  signatureDataLength: 632,
  signature: 636,
  attestationKey: 700,
  certDataType: 764,
  certDataSize: 766,
  qeReport: 770,
  qeReportData: 770 + 320,
  qeReportSignature: 1154,
  qeAuthDataLength: 1218,
  qeAuthData: 1220,
  pckCertDataType: 1252,
  pckCertDataSize: 1254,
  pckChain: 1258,
} as const;

export { tempDir };

export interface DevSetup {
  dir: string;
  /** Trusts the Intel root and this dev root. */
  trust: TrustAnchors;
  quote(reportData?: Uint8Array, opts?: Omit<DevQuoteProviderOptions, "dir">): Promise<Uint8Array>;
}

/** A dev PKI in a temp dir that is removed when the test ends. */
export async function devSetup(t: ExecutionContext): Promise<DevSetup> {
  const dir = join(tempDir(t), "dev-attestation");
  await devInit(dir);
  return {
    dir,
    trust: createTrustAnchors({ devRootPem: loadDevRootPem(dir) }),
    quote: (reportData = new Uint8Array(64).fill(0xab), opts = {}) =>
      createDevQuoteProvider({ dir, ...opts }).getQuote(reportData),
  };
}

/** A dev PKI whose leaf (and keys) come from `leafFrom` but whose PCK CA and root come from `caFrom`. */
export function spliceDevPki(t: ExecutionContext, leafFrom: string, caFrom: string): string {
  const dir = join(tempDir(t), "spliced");
  cpSync(leafFrom, dir, { recursive: true });
  for (const name of ["pck-ca.pem", "root-ca.pem"]) cpSync(join(caFrom, name), join(dir, name));
  return dir;
}

/** A copy of `bytes` with the byte at `offset` inverted. */
export function flip(bytes: Uint8Array, offset: number): Uint8Array {
  const out = bytes.slice();
  out[offset] = (out[offset] ?? 0) ^ 0xff;
  return out;
}

/** The AttestationError code `fn` throws, "ok" if it returns, or "not-attestation: …" for any other throw. */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    return err instanceof AttestationError ? err.code : `not-attestation: ${String(err)}`;
  }
}

/** The AttestationError `fn` throws; fails the test if it throws anything else or nothing. */
export function attestationError(t: ExecutionContext, fn: () => unknown): AttestationError {
  const err = t.throws(fn, { instanceOf: AttestationError });
  if (!(err instanceof AttestationError)) throw new Error("expected an AttestationError");
  return err;
}
