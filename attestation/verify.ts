// Local verification of a TDX quote: structure and header, certification data, PCK chain to a trust anchor, QE
// report signature and binding, quote signature. Every check is recorded; a failure throws AttestationError with
// the check's stable code and the checks so far in `details`. Verified chains, QE report signatures and imported
// attestation keys are cached per trust-anchor set (bounded, LRU), so a steady-state quote costs one ECDSA verify;
// a cached chain is still checked against `at`. Collateral checks (CRLs, TCB info, QE identity) slot in as further
// steps with their own codes. Imports attestation/ modules, lib/bounded-cache and spec/errors.ts.
import { createHash, type KeyObject } from "node:crypto";
import { BoundedCache } from "../lib/bounded-cache.ts";
import { AttestationError, type CodeOf } from "../spec/errors.ts";
import { p256PublicKeyFromRaw, p256Verify } from "./p256.ts";
import {
  checkPckChainTime,
  type PckLeafInfo,
  splitPckChain,
  type VerifiedPckChain,
  verifyPckChain,
} from "./pck-chain.ts";
import { CERT_DATA_PCK_CHAIN, INTEL_QE_VENDOR_ID, parseQuote, type Quote } from "./quote.ts";
import type { TrustAnchorLabel, TrustAnchors } from "./trust.ts";

/** The check each failure code reports: one code per check, so `details.checks` and the code always agree. */
const CHECK_OF_CODE = {
  "EE-ATT-QUOTE-MALFORMED": "structure",
  "EE-ATT-QUOTE-VERSION": "header_version",
  "EE-ATT-KEY-TYPE": "header_key_type",
  "EE-ATT-TEE-TYPE": "header_tee_type",
  "EE-ATT-QE-VENDOR": "header_qe_vendor",
  "EE-ATT-CERT-DATA": "cert_data_types",
  "EE-ATT-ROOT-UNTRUSTED": "root_trusted",
  "EE-ATT-CHAIN-INVALID": "pck_chain",
  "EE-ATT-QE-REPORT-SIGNATURE": "qe_report_signature",
  "EE-ATT-QE-BINDING": "qe_binding",
  "EE-ATT-QUOTE-SIGNATURE": "quote_signature",
} as const satisfies Partial<Record<CodeOf<"EE-ATT-">, string>>;

type CheckedCode = keyof typeof CHECK_OF_CODE;
export type QuoteCheck = (typeof CHECK_OF_CODE)[CheckedCode];
export type QuoteChecks = Record<QuoteCheck, boolean>;

export interface VerifyOptions {
  trust: TrustAnchors;
  /** The time the PCK chain must be valid at; defaults to now. */
  at?: Date;
}

/** What a verified quote proves. Hex is lowercase without 0x. */
export interface VerifiedQuote {
  version: number;
  body_type: number;
  tee_type: number;
  mrtd: string;
  rtmr: [string, string, string, string];
  mrseam: string;
  mrsignerseam: string;
  seam_attributes: string;
  td_attributes: string;
  xfam: string;
  mr_config_id: string;
  mr_owner: string;
  mr_owner_config: string;
  tee_tcb_svn: string;
  /** TDX 1.5 (v5 body type 3) only. */
  tee_tcb_svn2?: string;
  mr_servicetd?: string;
  report_data: string;
  reportData: Uint8Array;
  root: TrustAnchorLabel;
  pck_leaf: PckLeafInfo;
  checks: QuoteChecks;
}

interface Caches {
  chains: BoundedCache<string, VerifiedPckChain>;
  qeReports: BoundedCache<string, true>;
  attestationKeys: BoundedCache<string, KeyObject>;
}

// Sized for 10k agents spread over as many platforms: one chain, QE report and attestation key per platform.
const CACHE_ENTRIES = 16_384;
// Per anchor set: a cached chain is only as trusted as the anchors that accepted it.
const cachesByTrust = new WeakMap<TrustAnchors, Caches>();

export function verifyQuote(bytes: Uint8Array, opts: VerifyOptions): VerifiedQuote {
  const checks: Partial<QuoteChecks> = {};
  try {
    return runChecks(bytes, opts, checks);
  } catch (err) {
    if (!(err instanceof AttestationError) || !isCheckedCode(err.code)) throw err;
    checks[CHECK_OF_CODE[err.code]] = false;
    throw new AttestationError(err.code, err.message, { checks });
  }
}

function runChecks(bytes: Uint8Array, opts: VerifyOptions, checks: Partial<QuoteChecks>): VerifiedQuote {
  const pass = (...names: QuoteCheck[]) => {
    for (const name of names) checks[name] = true;
  };
  const caches = cachesFor(opts.trust);

  const quote = parseQuote(bytes);
  pass("structure", "header_version", "header_key_type", "header_tee_type");

  const vendor = hex(quote.header.qeVendorId);
  ensure(vendor === INTEL_QE_VENDOR_ID, "EE-ATT-QE-VENDOR", `QE vendor ID ${vendor} is not Intel's`);
  pass("header_qe_vendor");

  const { qeReport, qeReportBody, qeReportSignature, qeAuthData, pckCertData } = quote.qeCertData;
  ensure(
    pckCertData.type === CERT_DATA_PCK_CHAIN,
    "EE-ATT-CERT-DATA",
    `PCK certification data type ${pckCertData.type}, expected ${CERT_DATA_PCK_CHAIN} (PEM chain)`,
  );
  pass("cert_data_types");

  const chainKey = sha256Hex(pckCertData.data);
  let chain = caches.chains.get(chainKey);
  if (chain === undefined) {
    const certs = splitPckChain(pckCertData.data);
    const anchor = opts.trust.match(certs.root);
    ensure(
      anchor !== undefined,
      "EE-ATT-ROOT-UNTRUSTED",
      `PCK chain root ${sha256Hex(certs.root)} is not trusted`,
    );
    pass("root_trusted");
    chain = verifyPckChain(certs, anchor);
    caches.chains.set(chainKey, chain);
  } else {
    // The caches belong to this anchor set, so a cached chain's root is one of its anchors.
    pass("root_trusted");
  }
  checkPckChainTime(chain, opts.at ?? new Date());
  pass("pck_chain");

  const qeKey = `${chainKey}:${sha256Hex(qeReport, qeReportSignature)}`;
  if (caches.qeReports.get(qeKey) === undefined) {
    ensure(
      p256Verify(chain.leafKey, qeReport, qeReportSignature),
      "EE-ATT-QE-REPORT-SIGNATURE",
      "QE report signature does not verify with the PCK leaf key",
    );
    caches.qeReports.set(qeKey, true);
  }
  pass("qe_report_signature");

  ensure(
    Buffer.from(qeBindingReportData(quote.attestationKey, qeAuthData)).equals(qeReportBody.reportData),
    "EE-ATT-QE-BINDING",
    "QE report data is not SHA-256(attestation key ‖ QE auth data) ‖ 0^32",
  );
  pass("qe_binding");

  ensure(
    p256Verify(attestationKey(caches, quote.attestationKey), quote.signedRegion, quote.signature),
    "EE-ATT-QUOTE-SIGNATURE",
    "quote signature does not verify with the attestation key",
  );
  pass("quote_signature");

  return toVerifiedQuote(quote, chain, checks as QuoteChecks);
}

/** What a genuine QE puts in its report data: SHA-256(attestation key ‖ QE auth data) ‖ 0^32. */
export function qeBindingReportData(attestationKey: Uint8Array, qeAuthData: Uint8Array): Uint8Array {
  const digest = createHash("sha256").update(attestationKey).update(qeAuthData).digest();
  return new Uint8Array(Buffer.concat([digest, Buffer.alloc(32)]));
}

function ensure(ok: boolean, code: CheckedCode, message: string): asserts ok {
  if (!ok) throw new AttestationError(code, message);
}

function isCheckedCode(code: string): code is CheckedCode {
  return Object.hasOwn(CHECK_OF_CODE, code);
}

function cachesFor(trust: TrustAnchors): Caches {
  let caches = cachesByTrust.get(trust);
  if (caches === undefined) {
    caches = {
      chains: new BoundedCache(CACHE_ENTRIES),
      qeReports: new BoundedCache(CACHE_ENTRIES),
      attestationKeys: new BoundedCache(CACHE_ENTRIES),
    };
    cachesByTrust.set(trust, caches);
  }
  return caches;
}

// Importing a raw key costs about as much as a verify, and a platform's attestation key signs all its quotes.
function attestationKey(caches: Caches, raw: Uint8Array): KeyObject {
  const id = hex(raw);
  let key = caches.attestationKeys.get(id);
  if (key === undefined) {
    try {
      key = p256PublicKeyFromRaw(raw);
    } catch {
      throw new AttestationError("EE-ATT-QUOTE-SIGNATURE", "attestation key is not a P-256 public key");
    }
    caches.attestationKeys.set(id, key);
  }
  return key;
}

function toVerifiedQuote(quote: Quote, chain: VerifiedPckChain, checks: QuoteChecks): VerifiedQuote {
  const { body } = quote;
  const verified: VerifiedQuote = {
    version: quote.header.version,
    body_type: quote.bodyType,
    tee_type: quote.header.teeType,
    mrtd: hex(body.mrTd),
    rtmr: [hex(body.rtmr0), hex(body.rtmr1), hex(body.rtmr2), hex(body.rtmr3)],
    mrseam: hex(body.mrSeam),
    mrsignerseam: hex(body.mrSignerSeam),
    seam_attributes: hex(body.seamAttributes),
    td_attributes: hex(body.tdAttributes),
    xfam: hex(body.xfam),
    mr_config_id: hex(body.mrConfigId),
    mr_owner: hex(body.mrOwner),
    mr_owner_config: hex(body.mrOwnerConfig),
    tee_tcb_svn: hex(body.teeTcbSvn),
    report_data: hex(body.reportData),
    reportData: body.reportData.slice(),
    root: chain.root,
    pck_leaf: { ...chain.leaf },
    checks,
  };
  if (body.teeTcbSvn2 !== undefined) verified.tee_tcb_svn2 = hex(body.teeTcbSvn2);
  if (body.mrServiceTd !== undefined) verified.mr_servicetd = hex(body.mrServiceTd);
  return verified;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function sha256Hex(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}
