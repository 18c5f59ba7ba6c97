// The dev quote provider: real-format v4 TDX quotes, signed by the development PCK chain from
// `eectl attest dev-init`, so that the CP runs the very verifier it runs on hardware quotes. Only a CP that trusts
// the dev root accepts them. Imports attestation/ modules and spec/errors.ts.
import { AttestationError } from "../../spec/errors.ts";
import { loadDevPki } from "../dev-pki.ts";
import { p256RawPublicKey, p256Sign } from "../p256.ts";
import {
  ATT_KEY_TYPE_ECDSA_P256,
  CERT_DATA_PCK_CHAIN,
  emptySgxReportBody,
  emptyTdReportBody,
  encodeQuoteV4,
  encodeQuoteV4SignedRegion,
  encodeSgxReportBody,
  INTEL_QE_VENDOR_ID,
  type QuoteHeader,
  type TdReportBody,
  TEE_TYPE_TDX,
} from "../quote.ts";
import { qeBindingReportData } from "../verify.ts";
import type { QuoteProvider } from "./provider.ts";

/** The MRTD of dev quotes unless configured: a fixed value that no real TD image measures to. */
export const DEV_MRTD = "de7e".repeat(24);

export interface DevQuoteProviderOptions {
  /** A directory made by `eectl attest dev-init`. */
  dir: string;
  /** 96 lowercase hex digits; defaults to DEV_MRTD. */
  mrtd?: string;
  /** RTMR0..3, each 96 lowercase hex digits; default all zero. */
  rtmr?: string[];
}

const MEASUREMENT_HEX = /^[0-9a-f]{96}$/;
const ZERO_MEASUREMENT = "00".repeat(48);
const REPORT_DATA_SIZE = 64;
// Intel's QE uses this same counting pattern as its auth data.
const QE_AUTH_DATA = Uint8Array.from({ length: 32 }, (_, i) => i);

export function createDevQuoteProvider(opts: DevQuoteProviderOptions): QuoteProvider {
  if (opts.rtmr !== undefined && opts.rtmr.length !== 4) {
    throw new AttestationError("EE-ATT-PROVIDER", `rtmr needs 4 values (RTMR0..3), got ${opts.rtmr.length}`);
  }
  const rtmr = (i: number) => measurement(opts.rtmr?.[i] ?? ZERO_MEASUREMENT, `rtmr[${i}]`);
  const body: TdReportBody = {
    ...emptyTdReportBody(),
    mrTd: measurement(opts.mrtd ?? DEV_MRTD, "mrtd"),
    rtmr0: rtmr(0),
    rtmr1: rtmr(1),
    rtmr2: rtmr(2),
    rtmr3: rtmr(3),
  };

  const pki = loadDevPki(opts.dir);
  const attestationKey = p256RawPublicKey(pki.attestationKey);
  // The QE report depends only on the attestation key, so it is built and signed once per provider.
  const qeReport = encodeSgxReportBody({
    ...emptySgxReportBody(),
    reportData: qeBindingReportData(attestationKey, QE_AUTH_DATA),
  });
  const qeCertData = {
    qeReport,
    qeReportSignature: p256Sign(pki.pckLeafKey, qeReport),
    qeAuthData: QE_AUTH_DATA,
    pckCertData: { type: CERT_DATA_PCK_CHAIN, data: new TextEncoder().encode(pki.chainPem) },
  };
  const header: QuoteHeader = {
    version: 4,
    attestationKeyType: ATT_KEY_TYPE_ECDSA_P256,
    teeType: TEE_TYPE_TDX,
    qeSvn: 0,
    pceSvn: 0,
    qeVendorId: Buffer.from(INTEL_QE_VENDOR_ID, "hex"),
    userData: new Uint8Array(20),
  };

  return {
    name: "dev",
    async getQuote(reportData) {
      if (!(reportData instanceof Uint8Array) || reportData.length !== REPORT_DATA_SIZE) {
        const got = reportData instanceof Uint8Array ? `${reportData.length} bytes` : typeof reportData;
        throw new AttestationError(
          "EE-ATT-PROVIDER",
          `reportData must be ${REPORT_DATA_SIZE} bytes, got ${got}`,
        );
      }
      const signedRegion = encodeQuoteV4SignedRegion(header, { ...body, reportData });
      return encodeQuoteV4(signedRegion, {
        signature: p256Sign(pki.attestationKey, signedRegion),
        attestationKey,
        qeCertData,
      });
    },
  };
}

function measurement(value: string, what: string): Uint8Array {
  if (typeof value !== "string" || !MEASUREMENT_HEX.test(value)) {
    throw new AttestationError("EE-ATT-PROVIDER", `${what} must be 96 lowercase hex digits`);
  }
  return Buffer.from(value, "hex");
}
