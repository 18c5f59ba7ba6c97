// TCB evaluation against Intel's signed TCB Info (TDX, v3) and QE Identity (TD_QE, v2): reading the platform's
// TCB (CPUSVN components, PCESVN) from the PCK leaf's SGX extension, matching TCB levels, the TDX module identity
// and the QE's ISVSVN, and folding the partial statuses into one status the way Intel's QVL does. Pure functions
// over parsed JSON; collateral.ts checks signatures and decides what a mismatch means.
// Imports attestation/der.ts and attestation/sgx-extension.ts.
import { derRead, derReadOne, isOid, TAG } from "./der.ts";
import { SGX_EXTENSION_OID } from "./sgx-extension.ts";

const TCB_STATUSES = [
  "UpToDate",
  "SWHardeningNeeded",
  "ConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "OutOfDate",
  "OutOfDateConfigurationNeeded",
  "Revoked",
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];
/** No TCB level of the TCB info applies to the platform. */
export const TCB_LEVEL_NOT_SUPPORTED = "TCBLevelNotSupported";

interface Svn {
  svn: number;
}

export interface TdxTcbLevel {
  tcb: { sgxtcbcomponents: Svn[]; pcesvn: number; tdxtcbcomponents: Svn[] };
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIDs?: string[];
}

export interface ModuleIdentity {
  id?: string;
  mrsigner: string;
  attributes: string;
  attributesMask: string;
  tcbLevels?: { tcb: { isvsvn: number }; tcbStatus: TcbStatus; advisoryIDs?: string[] }[];
}

export interface TdxTcbInfo {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  fmspc: string;
  pceId: string;
  tdxModule: ModuleIdentity;
  tdxModuleIdentities?: ModuleIdentity[];
  tcbLevels: TdxTcbLevel[];
}

export interface QeIdentity {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  miscselect: string;
  miscselectMask: string;
  attributes: string;
  attributesMask: string;
  mrsigner: string;
  isvprodid: number;
  tcbLevels: { tcb: { isvsvn: number }; tcbStatus: TcbStatus; advisoryIDs?: string[] }[];
}

export interface PckTcb {
  /** The 16 CPUSVN components. */
  cpusvn: number[];
  pcesvn: number;
}

const TCB_OID = `${SGX_EXTENSION_OID}.2`;

/** CPUSVN components and PCESVN from a PCK leaf's SGX extension (TCB entry, OIDs .2.1 to .2.17). */
export function pckTcbOf(certificateDer: Uint8Array): PckTcb {
  const [tbs] = derRead(derReadOne(certificateDer, TAG.sequence, "certificate").value);
  if (tbs?.tag !== TAG.sequence) throw new SyntaxError("certificate has no TBSCertificate");
  const extensions = derRead(tbs.value).find((f) => f.tag === TAG.explicit(3));
  if (extensions === undefined) throw new SyntaxError("PCK leaf has no extensions");
  for (const extension of derRead(derReadOne(extensions.value, TAG.sequence, "extensions").value)) {
    const parts = extension.tag === TAG.sequence ? derRead(extension.value) : [];
    const value = parts[parts.length - 1];
    if (!isOid(parts[0], SGX_EXTENSION_OID) || value?.tag !== TAG.octetString) continue;
    for (const entry of derRead(derReadOne(value.value, TAG.sequence, "SGX extension").value)) {
      const [id, tcb] = entry.tag === TAG.sequence ? derRead(entry.value) : [];
      if (!isOid(id, TCB_OID) || tcb?.tag !== TAG.sequence) continue;
      const svns = new Map<number, number>();
      for (const component of derRead(tcb.value)) {
        const [cid, cvalue] = component.tag === TAG.sequence ? derRead(component.value) : [];
        for (let n = 1; n <= 17; n++) {
          if (isOid(cid, `${TCB_OID}.${n}`) && cvalue?.tag === TAG.integer) {
            svns.set(n, Number(BigInt(`0x${Buffer.from(cvalue.value).toString("hex") || "0"}`)));
          }
        }
      }
      const cpusvn = Array.from({ length: 16 }, (_, i) => svns.get(i + 1));
      const pcesvn = svns.get(17);
      if (pcesvn === undefined || cpusvn.some((v) => v === undefined)) {
        throw new SyntaxError("SGX extension TCB lacks a CPUSVN component or PCESVN");
      }
      return { cpusvn: cpusvn as number[], pcesvn };
    }
  }
  throw new SyntaxError("PCK leaf has no SGX extension TCB entry");
}

/**
 * The TDX module identity that applies: with TEE_TCB_SVN[1] (the module's minor version) above 0 it is
 * tdxModuleIdentities' "TDX_%02X" entry; otherwise the legacy tdxModule. Undefined when the entry is missing.
 */
export function moduleIdentityFor(info: TdxTcbInfo, teeTcbSvn: Uint8Array): ModuleIdentity | undefined {
  const minor = teeTcbSvn[1] ?? 0;
  if (minor === 0 || info.tdxModuleIdentities === undefined) return info.tdxModule;
  const id = `TDX_${minor.toString(16).toUpperCase().padStart(2, "0")}`;
  return info.tdxModuleIdentities.find((m) => m.id?.toUpperCase() === id);
}

/** MRSIGNERSEAM equals the identity's mrsigner and SEAMATTRIBUTES match under its mask. */
export function moduleIdentityMatches(
  identity: ModuleIdentity,
  mrSignerSeam: Uint8Array,
  seamAttributes: Uint8Array,
): boolean {
  return (
    hexEquals(identity.mrsigner, mrSignerSeam) &&
    maskedEquals(seamAttributes, identity.attributes, identity.attributesMask)
  );
}

/**
 * The TDX module's own TCB status: the first of the identity's levels whose isvsvn the module's SVN
 * (TEE_TCB_SVN[0]) reaches. Undefined when the identity has no levels (legacy tdxModule) or none matches.
 */
export function moduleTcbStatus(identity: ModuleIdentity, teeTcbSvn: Uint8Array): TcbStatus | undefined {
  const svn = teeTcbSvn[0] ?? 0;
  return identity.tcbLevels?.find((level) => svn >= level.tcb.isvsvn)?.tcbStatus;
}

/**
 * The first TCB level (Intel lists them newest first) that every platform SVN reaches: the 16 SGX components
 * against the PCK CPUSVN, PCESVN, and the 16 TDX components against TEE_TCB_SVN. When the module identity is
 * versioned (TEE_TCB_SVN[1] > 0), its first two bytes are the module's SVN and version, judged separately.
 */
export function matchTcbLevel(info: TdxTcbInfo, pck: PckTcb, teeTcbSvn: Uint8Array): TdxTcbLevel | undefined {
  const tdxStart = (teeTcbSvn[1] ?? 0) > 0 && info.tdxModuleIdentities !== undefined ? 2 : 0;
  return info.tcbLevels.find((level) => {
    const { sgxtcbcomponents: sgx, tdxtcbcomponents: tdx, pcesvn } = level.tcb;
    if (sgx.length !== 16 || tdx.length !== 16) return false;
    if (sgx.some((c, i) => (pck.cpusvn[i] ?? 0) < c.svn)) return false;
    if (pck.pcesvn < pcesvn) return false;
    return tdx.every((c, i) => i < tdxStart || (teeTcbSvn[i] ?? 0) >= c.svn);
  });
}

/** The QE's TCB status: the first QE identity level whose isvsvn the QE report's ISVSVN reaches. */
export function qeTcbStatus(identity: QeIdentity, isvSvn: number): TcbStatus | undefined {
  return identity.tcbLevels.find((level) => isvSvn >= level.tcb.isvsvn)?.tcbStatus;
}

/** Folds module and QE statuses into the platform's: an out-of-date or revoked part drags the whole down. */
export function convergeTcbStatus(platform: TcbStatus, ...parts: (TcbStatus | undefined)[]): TcbStatus {
  let status = platform;
  for (const part of parts) {
    if (status === "Revoked" || part === "Revoked") status = "Revoked";
    else if (part === "OutOfDate" || part === "OutOfDateConfigurationNeeded") {
      status =
        status === "ConfigurationNeeded" ||
        status === "ConfigurationAndSWHardeningNeeded" ||
        status === "OutOfDateConfigurationNeeded"
          ? "OutOfDateConfigurationNeeded"
          : "OutOfDate";
    }
  }
  return status;
}

function hexEquals(expected: string, actual: Uint8Array): boolean {
  return expected.toLowerCase() === Buffer.from(actual).toString("hex");
}

/** (actual & mask) == (expected & mask), byte by byte in the order the hex is written. */
export function maskedEquals(actual: Uint8Array, expectedHex: string, maskHex: string): boolean {
  const expected = Buffer.from(expectedHex, "hex");
  const mask = Buffer.from(maskHex, "hex");
  if (expected.length !== actual.length || mask.length !== actual.length) return false;
  return actual.every((byte, i) => (byte & (mask[i] ?? 0)) === ((expected[i] ?? 0) & (mask[i] ?? 0)));
}
