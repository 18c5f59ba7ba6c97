// Quote collateral (dcap-qvl QuoteCollateralV3 JSON: CRLs, TCB Info, QE Identity and their issuer chains) and
// its evaluation against a quote that verifyQuote already accepted: collateral signatures back to the quote's
// root, CRLs and revocation, time windows, QE identity policy, FMSPC/PCEID, TDX module identity and the TCB
// level. Every check runs and is recorded, so a caller sees the TCB status even when, say, a CRL has expired;
// the first failing check (in CHECKS order) gives the stable reason code. What depends only on the collateral and
// the PCK chain (signatures, CRLs, revocation) is computed once per collateral object and platform.
// Imports attestation/ modules, lib/bounded-cache and spec/errors.ts.
import { createHash, X509Certificate } from "node:crypto";
import { BoundedCache } from "../lib/bounded-cache.ts";
import { AttestationError, type CodeOf } from "../spec/errors.ts";
import { type Crl, certificateNames, crlSignedBy, parseCrl } from "./crl.ts";
import { p256Verify } from "./p256.ts";
import { type PckChainCertificates, splitPckChain } from "./pck-chain.ts";
import { parsePemCertificates } from "./pem.ts";
import { parseQuote } from "./quote.ts";
import {
  convergeTcbStatus,
  maskedEquals,
  matchTcbLevel,
  moduleIdentityFor,
  moduleIdentityMatches,
  moduleTcbStatus,
  type PckTcb,
  pckTcbOf,
  type QeIdentity,
  qeTcbStatus,
  TCB_LEVEL_NOT_SUPPORTED,
  type TcbStatus,
  type TdxTcbInfo,
} from "./tcb.ts";
import type { VerifiedQuote } from "./verify.ts";

export interface Collateral {
  pckCrl: Crl;
  rootCaCrl: Crl;
  /** The exact signed bytes, as given. */
  tcbInfoJson: string;
  tcbInfo: TdxTcbInfo;
  tcbInfoSignature: Uint8Array;
  /** DER: TCB signing certificate, then root. */
  tcbInfoIssuerChain: Uint8Array[];
  qeIdentityJson: string;
  qeIdentity: QeIdentity;
  qeIdentitySignature: Uint8Array;
  qeIdentityIssuerChain: Uint8Array[];
}

/** The check each failure code reports, in evaluation order. */
const CHECKS = [
  ["tcb_signing_chain", "EE-ATT-COLLATERAL-SIGNATURE"],
  ["tcb_info_signature", "EE-ATT-COLLATERAL-SIGNATURE"],
  ["qe_identity_signature", "EE-ATT-COLLATERAL-SIGNATURE"],
  ["root_ca_crl", "EE-ATT-CRL"],
  ["pck_crl", "EE-ATT-CRL"],
  ["not_revoked", "EE-ATT-REVOKED"],
  ["collateral_time", "EE-ATT-COLLATERAL-EXPIRED"],
  ["qe_identity", "EE-ATT-QE-IDENTITY"],
  ["fmspc_pceid", "EE-ATT-FMSPC-MISMATCH"],
  ["tdx_module", "EE-ATT-TCB-MODULE"],
  ["tcb_level", "EE-ATT-TCB-LEVEL"],
] as const satisfies readonly (readonly [string, CodeOf<"EE-ATT-">])[];

export type CollateralCheck = (typeof CHECKS)[number][0];
export type CollateralChecks = Record<CollateralCheck, boolean>;
type CollateralCode = (typeof CHECKS)[number][1] | "EE-ATT-TCB-REVOKED";

export interface CollateralResult {
  ok: boolean;
  checks: CollateralChecks;
  /** The first failure, when not ok. */
  reason?: CollateralCode;
  message?: string;
  /** Platform, module and QE statuses folded together, or TCBLevelNotSupported. */
  tcb_status: TcbStatus | typeof TCB_LEVEL_NOT_SUPPORTED;
  /** null: no level matched. */
  platform_tcb_status: TcbStatus | null;
  module_tcb_status: TcbStatus | null;
  qe_tcb_status: TcbStatus | null;
  advisory_ids: string[];
  tcb_date: string | null;
}

const REVOKED_MESSAGE = "the platform's TCB is revoked";

function malformed(message: string): AttestationError {
  return new AttestationError("EE-ATT-COLLATERAL-MALFORMED", message);
}

/** Parses QuoteCollateralV3 JSON text. Throws EE-ATT-COLLATERAL-MALFORMED. */
export function parseCollateral(text: string): Collateral {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw malformed(`collateral is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null) throw malformed("collateral is not a JSON object");
  const str = (key: string): string => {
    const value = raw[key];
    if (typeof value !== "string") throw malformed(`collateral lacks string field ${key}`);
    return value;
  };
  const hexField = (key: string): Uint8Array => {
    const value = str(key);
    if (!/^([0-9a-fA-F]{2})*$/.test(value)) throw malformed(`collateral ${key} is not hex`);
    return new Uint8Array(Buffer.from(value, "hex"));
  };
  const crl = (key: string): Crl => {
    try {
      return parseCrl(hexField(key));
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw malformed(`collateral ${key}: ${(err as Error).message}`);
    }
  };
  const chain = (key: string): Uint8Array[] => {
    try {
      const ders = parsePemCertificates(str(key));
      if (ders.length !== 2) throw new SyntaxError(`expected 2 certificates, found ${ders.length}`);
      for (const der of ders) new X509Certificate(der);
      return ders;
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw malformed(`collateral ${key}: ${(err as Error).message}`);
    }
  };
  const signedJson = <T>(key: string, id: (v: Record<string, unknown>) => boolean): [string, T] => {
    const json = str(key);
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw malformed(`collateral ${key} is not JSON`);
    }
    if (typeof value !== "object" || value === null || !id(value as Record<string, unknown>)) {
      throw malformed(`collateral ${key} is not the expected document`);
    }
    return [json, value as T];
  };
  const [tcbInfoJson, tcbInfo] = signedJson<TdxTcbInfo>(
    "tcb_info",
    (v) => v.id === "TDX" && v.version === 3 && Array.isArray(v.tcbLevels) && typeof v.tdxModule === "object",
  );
  const [qeIdentityJson, qeIdentity] = signedJson<QeIdentity>(
    "qe_identity",
    (v) => v.id === "TD_QE" && Array.isArray(v.tcbLevels),
  );
  return {
    pckCrl: crl("pck_crl"),
    rootCaCrl: crl("root_ca_crl"),
    tcbInfoJson,
    tcbInfo,
    tcbInfoSignature: hexField("tcb_info_signature"),
    tcbInfoIssuerChain: chain("tcb_info_issuer_chain"),
    qeIdentityJson,
    qeIdentity,
    qeIdentitySignature: hexField("qe_identity_signature"),
    qeIdentityIssuerChain: chain("qe_identity_issuer_chain"),
  };
}

/** What a collateral finds about one PCK chain, whatever the quote: signatures, CRLs, revocation, the leaf's TCB. */
interface ChainFindings {
  /** In the order the checks ran; the first message of a check is the one reported. */
  failures: [CollateralCheck, string][];
  /** Validity windows of the TCB signing certificates that verified. */
  signerWindows: [string, number, number][];
  pck: PckTcb | undefined;
}

// The chain findings cost six signature verifies (about 2 ms, twenty quote verifies), yet depend only on the
// collateral and the platform's PCK chain. A source hands out one Collateral object per platform until it
// fetches again, so the findings are kept with that object (a collateral must not be edited once evaluated),
// bounded like verify.ts's caches: one entry per platform.
const CHAIN_ENTRIES = 16_384;
const findingsByCollateral = new WeakMap<Collateral, BoundedCache<string, ChainFindings>>();

/**
 * Evaluates `collateral` for a quote that verifyQuote accepted (`bytes` are the same quote) at time `at`.
 * Never throws for a failing check; see requireCollateral.
 */
export function evaluateCollateral(
  bytes: Uint8Array,
  verified: VerifiedQuote,
  collateral: Collateral,
  at: Date,
): CollateralResult {
  const quote = parseQuote(bytes);
  const chain = chainFindingsOf(collateral, quote.qeCertData.pckCertData.data);
  const failures = new Map<CollateralCheck, string>();
  const fail = (check: CollateralCheck, message: string) => {
    if (!failures.has(check)) failures.set(check, message);
  };
  for (const [check, message] of chain.failures) fail(check, message);

  // Time: every piece of collateral must be current at `at`.
  const { rootCaCrl, pckCrl } = collateral;
  const t = at.getTime();
  const windows: [string, number, number][] = [
    ["Root CA CRL", rootCaCrl.thisUpdate.getTime(), rootCaCrl.nextUpdate?.getTime() ?? Number.NaN],
    ["PCK CRL", pckCrl.thisUpdate.getTime(), pckCrl.nextUpdate?.getTime() ?? Number.NaN],
    ["TCB info", Date.parse(collateral.tcbInfo.issueDate), Date.parse(collateral.tcbInfo.nextUpdate)],
    [
      "QE identity",
      Date.parse(collateral.qeIdentity.issueDate),
      Date.parse(collateral.qeIdentity.nextUpdate),
    ],
    ...chain.signerWindows,
  ];
  for (const [what, from, to] of windows) {
    // NaN bounds (no nextUpdate, unreadable date) fail the comparison: such collateral never counts as current.
    if (!(t >= from && t <= to)) {
      fail("collateral_time", `${what} is not current at ${at.toISOString()}`);
    }
  }

  // QE identity policy.
  const qe = quote.qeCertData.qeReportBody;
  const identity = collateral.qeIdentity;
  const isvProdId = le(qe.isvProdId);
  const isvSvn = le(qe.isvSvn);
  // MISCSELECT is a little-endian u32 in the report and a big-endian hex number in the identity.
  const miscSelect = Uint8Array.from(qe.miscSelect).reverse();
  if (identity.mrsigner.toLowerCase() !== hex(qe.mrSigner)) fail("qe_identity", "QE MRSIGNER does not match");
  if (identity.isvprodid !== isvProdId) fail("qe_identity", "QE ISVPRODID does not match");
  if (!maskedEquals(miscSelect, identity.miscselect, identity.miscselectMask)) {
    fail("qe_identity", "QE MISCSELECT does not match under its mask");
  }
  if (!maskedEquals(qe.attributes, identity.attributes, identity.attributesMask)) {
    fail("qe_identity", "QE ATTRIBUTES do not match under their mask");
  }
  const qeStatus = qeTcbStatus(identity, isvSvn);
  if (qeStatus === undefined) fail("qe_identity", `QE ISVSVN ${isvSvn} matches no QE identity TCB level`);

  // Platform identity.
  const info = collateral.tcbInfo;
  if (info.fmspc.toLowerCase() !== verified.pck_leaf.fmspc)
    fail("fmspc_pceid", "FMSPC differs from TCB info");
  if (info.pceId.toLowerCase() !== verified.pck_leaf.pceid)
    fail("fmspc_pceid", "PCEID differs from TCB info");

  // TDX module identity and status.
  const teeTcbSvn = quote.body.teeTcbSvn;
  const module = moduleIdentityFor(info, teeTcbSvn);
  let moduleStatus: TcbStatus | undefined;
  if (module === undefined) {
    fail("tdx_module", `TCB info has no module identity TDX_${hex(teeTcbSvn.subarray(1, 2)).toUpperCase()}`);
  } else {
    if (!moduleIdentityMatches(module, quote.body.mrSignerSeam, quote.body.seamAttributes)) {
      fail("tdx_module", "MRSIGNERSEAM/SEAMATTRIBUTES do not match the TDX module identity");
    }
    moduleStatus = moduleTcbStatus(module, teeTcbSvn);
    if (module.tcbLevels !== undefined && moduleStatus === undefined) {
      fail("tdx_module", `TDX module SVN ${teeTcbSvn[0]} matches no module TCB level`);
    }
  }

  // Platform TCB level.
  const { pck } = chain;
  const level = pck && matchTcbLevel(info, pck, teeTcbSvn);
  if (pck && level === undefined) fail("tcb_level", "no TCB level of the TCB info matches the platform");
  const tcbStatus = level
    ? convergeTcbStatus(level.tcbStatus, moduleStatus, qeStatus)
    : TCB_LEVEL_NOT_SUPPORTED;
  if (tcbStatus === "Revoked") fail("tcb_level", REVOKED_MESSAGE);

  const checks = Object.fromEntries(
    CHECKS.map(([check]) => [check, !failures.has(check)]),
  ) as CollateralChecks;
  const result: CollateralResult = {
    ok: failures.size === 0,
    checks,
    tcb_status: tcbStatus,
    platform_tcb_status: level?.tcbStatus ?? null,
    module_tcb_status: moduleStatus ?? null,
    qe_tcb_status: qeStatus ?? null,
    advisory_ids: level?.advisoryIDs ?? [],
    tcb_date: level?.tcbDate ?? null,
  };
  const first = CHECKS.find(([check]) => failures.has(check));
  if (first) {
    const [check, code] = first;
    result.reason = failures.get(check) === REVOKED_MESSAGE ? "EE-ATT-TCB-REVOKED" : code;
    result.message = failures.get(check);
  }
  return result;
}

function chainFindingsOf(collateral: Collateral, pckChainPem: Uint8Array): ChainFindings {
  let cache = findingsByCollateral.get(collateral);
  if (cache === undefined) {
    cache = new BoundedCache(CHAIN_ENTRIES);
    findingsByCollateral.set(collateral, cache);
  }
  const key = createHash("sha256").update(pckChainPem).digest("hex");
  let findings = cache.get(key);
  if (findings === undefined) {
    findings = findChainFindings(collateral, splitPckChain(pckChainPem));
    cache.set(key, findings);
  }
  return findings;
}

function findChainFindings(collateral: Collateral, certs: PckChainCertificates): ChainFindings {
  const root = new X509Certificate(certs.root);
  const ca = new X509Certificate(certs.ca);
  const leaf = new X509Certificate(certs.leaf);
  const failures: [CollateralCheck, string][] = [];
  const fail = (check: CollateralCheck, message: string) => failures.push([check, message]);

  // Signatures: the TCB signing certificate must chain to the very root the quote's PCK chain ended in.
  const signer = (chain: Uint8Array[], what: string): X509Certificate | undefined => {
    const [signingDer, rootDer] = chain;
    if (signingDer === undefined || rootDer === undefined || !Buffer.from(rootDer).equals(certs.root)) {
      fail("tcb_signing_chain", `${what} issuer chain does not end in the quote's root`);
      return undefined;
    }
    const signing = new X509Certificate(signingDer);
    if (!signing.checkIssued(root) || !signing.verify(root.publicKey)) {
      fail("tcb_signing_chain", `${what} signing certificate is not issued by the root`);
      return undefined;
    }
    return signing;
  };
  const tcbSigner = signer(collateral.tcbInfoIssuerChain, "TCB info");
  const qeSigner = signer(collateral.qeIdentityIssuerChain, "QE identity");
  if (
    tcbSigner &&
    !p256Verify(tcbSigner.publicKey, utf8(collateral.tcbInfoJson), collateral.tcbInfoSignature)
  ) {
    fail("tcb_info_signature", "TCB info signature does not verify");
  }
  if (
    qeSigner &&
    !p256Verify(qeSigner.publicKey, utf8(collateral.qeIdentityJson), collateral.qeIdentitySignature)
  ) {
    fail("qe_identity_signature", "QE identity signature does not verify");
  }
  if (!tcbSigner) fail("tcb_info_signature", "TCB info signer not trusted");
  if (!qeSigner) fail("qe_identity_signature", "QE identity signer not trusted");

  // CRLs: the Root CA CRL covers the PCK CA, the PCK CRL (issued by the quote's PCK CA) covers the leaf.
  const { rootCaCrl, pckCrl } = collateral;
  const rootNames = certificateNames(certs.root);
  const caNames = certificateNames(certs.ca);
  const leafNames = certificateNames(certs.leaf);
  if (!crlSignedBy(rootCaCrl, root.publicKey) || !bytesEqual(rootCaCrl.issuer, rootNames.subject)) {
    fail("root_ca_crl", "Root CA CRL is not issued and signed by the root");
  }
  if (!bytesEqual(pckCrl.issuer, leafNames.issuer) || !bytesEqual(pckCrl.issuer, caNames.subject)) {
    fail("pck_crl", "PCK CRL issuer is not the PCK leaf's issuer");
  } else if (!crlSignedBy(pckCrl, ca.publicKey)) {
    fail("pck_crl", "PCK CRL is not signed by the PCK CA");
  }
  if (rootCaCrl.revoked.has(serial(ca))) fail("not_revoked", "the PCK CA certificate is revoked");
  if (pckCrl.revoked.has(serial(leaf))) fail("not_revoked", "the PCK leaf certificate is revoked");

  let pck: PckTcb | undefined;
  try {
    pck = pckTcbOf(certs.leaf);
  } catch (err) {
    fail("tcb_level", `PCK leaf TCB: ${(err as Error).message}`);
  }
  const signerWindows = [tcbSigner, qeSigner].flatMap((cert): [string, number, number][] =>
    cert ? [["TCB signing certificate", Date.parse(cert.validFrom), Date.parse(cert.validTo)]] : [],
  );
  return { failures, signerWindows, pck };
}

/** The earliest nextUpdate of the TCB info, QE identity and both CRLs (ms); NaN or -Infinity when unknown. */
export function collateralNextUpdate(c: Collateral): number {
  return Math.min(
    Date.parse(c.tcbInfo.nextUpdate),
    Date.parse(c.qeIdentity.nextUpdate),
    c.pckCrl.nextUpdate?.getTime() ?? Number.NEGATIVE_INFINITY,
    c.rootCaCrl.nextUpdate?.getTime() ?? Number.NEGATIVE_INFINITY,
  );
}

/** Throws the first failure of `result` as an AttestationError carrying the result in `details`. */
export function requireCollateral(result: CollateralResult): void {
  if (result.reason !== undefined) {
    throw new AttestationError(result.reason, result.message ?? result.reason, { ...result });
  }
}

function serial(cert: X509Certificate): string {
  return BigInt(`0x${cert.serialNumber}`).toString(16);
}

function le(bytes: Uint8Array): number {
  return bytes.reduceRight((n, byte) => n * 256 + byte, 0);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(b);
}
