// TDX DCAP quote layout: a bounds-checked parser for v4 and v5 quotes (v5 body type 2 = TDX 1.0, 3 = TDX 1.5)
// with an ECDSA-256 attestation key and QE-report certification data, and a v4 encoder for the dev provider.
// Byte layout only, no cryptography: verify.ts decides what the fields prove. Parsed byte fields are views into
// the input, not copies. Imports spec/errors.ts only.
import { AttestationError } from "../spec/errors.ts";

export const ATT_KEY_TYPE_ECDSA_P256 = 2;
export const TEE_TYPE_TDX = 0x81;
/** Certification data holding the QE report, its signature, the QE auth data and inner certification data. */
const CERT_DATA_QE_REPORT = 6;
/** Certification data holding the PEM chain PCK leaf, PCK CA, root. */
export const CERT_DATA_PCK_CHAIN = 5;
export const INTEL_QE_VENDOR_ID = "939a7233f79c4ca9940a0db3957f0607";
const SGX_REPORT_BODY_SIZE = 384;
const ECDSA_SIZE = 64;

// A layout is a list of [field, size in bytes | little-endian integer kind]; the field "" is reserved: skipped on
// read, zero on write. Parser and encoder share the tables so the two can never disagree.
type FieldKind = number | "u16" | "u32";
type Layout = readonly (readonly [name: string, kind: FieldKind])[];
type LayoutFields<L extends Layout> = {
  [F in L[number] as F[0] extends "" ? never : F[0]]: F[1] extends number ? Uint8Array : number;
};

const HEADER = [
  ["version", "u16"],
  ["attestationKeyType", "u16"],
  ["teeType", "u32"],
  ["qeSvn", "u16"],
  ["pceSvn", "u16"],
  ["qeVendorId", 16],
  ["userData", 20],
] as const;

const TD_REPORT_10 = [
  ["teeTcbSvn", 16],
  ["mrSeam", 48],
  ["mrSignerSeam", 48],
  ["seamAttributes", 8],
  ["tdAttributes", 8],
  ["xfam", 8],
  ["mrTd", 48],
  ["mrConfigId", 48],
  ["mrOwner", 48],
  ["mrOwnerConfig", 48],
  ["rtmr0", 48],
  ["rtmr1", 48],
  ["rtmr2", 48],
  ["rtmr3", 48],
  ["reportData", 64],
] as const;

const TD_REPORT_15_EXTRA = [
  ["teeTcbSvn2", 16],
  ["mrServiceTd", 48],
] as const;

const SGX_REPORT_BODY = [
  ["cpuSvn", 16],
  ["miscSelect", 4],
  ["", 28],
  ["attributes", 16],
  ["mrEnclave", 32],
  ["", 32],
  ["mrSigner", 32],
  ["", 96],
  ["isvProdId", 2],
  ["isvSvn", 2],
  ["", 60],
  ["reportData", 64],
] as const;

export type QuoteHeader = LayoutFields<typeof HEADER>;
/** The TD report; the TDX 1.5 fields are present only in v5 body type 3. */
export type TdReportBody = LayoutFields<typeof TD_REPORT_10> &
  Partial<LayoutFields<typeof TD_REPORT_15_EXTRA>>;
/** The SGX report body of the quoting enclave; integers stay little-endian bytes, as collateral compares them. */
export type SgxReportBody = LayoutFields<typeof SGX_REPORT_BODY>;
export type TdReportBodyType = 2 | 3;

export interface CertificationData {
  type: number;
  data: Uint8Array;
}

export interface QeReportCertData {
  /** The 384 bytes the PCK leaf key signs. */
  qeReport: Uint8Array;
  qeReportBody: SgxReportBody;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** Type 5 (PEM PCK chain) on every genuine quote; verify.ts checks it. */
  pckCertData: CertificationData;
}

export interface Quote {
  header: QuoteHeader;
  bodyType: TdReportBodyType;
  body: TdReportBody;
  /** What the attestation key signs: header and body (v4: bytes [0, 632); v5: [0, 54 + body size)). */
  signedRegion: Uint8Array;
  signature: Uint8Array;
  /** Raw P-256 public key x‖y. */
  attestationKey: Uint8Array;
  qeCertData: QeReportCertData;
}

function layoutSize(layout: Layout): number {
  return layout.reduce((sum, [, kind]) => sum + (kind === "u16" ? 2 : kind === "u32" ? 4 : kind), 0);
}

const TD_REPORT_SIZE: Record<TdReportBodyType, number> = {
  2: layoutSize(TD_REPORT_10),
  3: layoutSize(TD_REPORT_10) + layoutSize(TD_REPORT_15_EXTRA),
};
const V4_SIGNED_SIZE = layoutSize(HEADER) + TD_REPORT_SIZE[2];

function zeroFields<L extends Layout>(layout: L): LayoutFields<L> {
  const out: Record<string, Uint8Array | number> = {};
  for (const [name, kind] of layout) {
    if (name) out[name] = typeof kind === "number" ? new Uint8Array(kind) : 0;
  }
  // Same shape argument as Reader.fields: every named field, with the kind LayoutFields<L> maps it to.
  return out as LayoutFields<L>;
}

/** An all-zero TDX 1.0 TD report body, for the encoder's callers to fill in. */
export function emptyTdReportBody(): TdReportBody {
  return zeroFields(TD_REPORT_10);
}

/** An all-zero QE report body, for the encoder's callers to fill in. */
export function emptySgxReportBody(): SgxReportBody {
  return zeroFields(SGX_REPORT_BODY);
}

function malformed(message: string): AttestationError {
  return new AttestationError("EE-ATT-QUOTE-MALFORMED", message);
}

/** Sequential little-endian reads within [start, end) of the quote; offsets in messages are absolute. */
class Reader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  #pos: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#pos;
  }

  bytes(n: number, field: string): Uint8Array {
    this.#need(n, field);
    this.#pos += n;
    return this.#bytes.subarray(this.#pos - n, this.#pos);
  }

  u16(field: string): number {
    this.#need(2, field);
    this.#pos += 2;
    return this.#view.getUint16(this.#pos - 2, true);
  }

  u32(field: string): number {
    this.#need(4, field);
    this.#pos += 4;
    return this.#view.getUint32(this.#pos - 4, true);
  }

  /** A reader confined to the next n bytes, which this reader skips. */
  sub(n: number, field: string): Reader {
    this.#need(n, field);
    this.#pos += n;
    return new Reader(this.#bytes, this.#pos - n, this.#pos);
  }

  fields<L extends Layout>(layout: L, what: string): LayoutFields<L> {
    const out: Record<string, Uint8Array | number> = {};
    for (const [name, kind] of layout) {
      const field = `${what} ${name || "reserved"}`;
      const value =
        kind === "u16" ? this.u16(field) : kind === "u32" ? this.u32(field) : this.bytes(kind, field);
      if (name) out[name] = value;
    }
    // The loop above assigns exactly the layout's named fields with the kinds LayoutFields<L> maps them to.
    return out as LayoutFields<L>;
  }

  #need(n: number, field: string): void {
    const left = this.#end - this.#pos;
    if (n > left) throw malformed(`${field}: needs ${n} bytes at offset ${this.#pos}, only ${left} left`);
  }
}

/** Parses a quote. Bytes after the signature data are ignored and never read. */
export function parseQuote(bytes: Uint8Array): Quote {
  const r = new Reader(bytes);
  const header = r.fields(HEADER, "header");
  // Each of these fields selects a layout; past an unknown value the remaining bytes have no defined meaning.
  if (header.version !== 4 && header.version !== 5) {
    throw new AttestationError("EE-ATT-QUOTE-VERSION", `quote version ${header.version}, expected 4 or 5`);
  }
  if (header.attestationKeyType !== ATT_KEY_TYPE_ECDSA_P256) {
    throw new AttestationError(
      "EE-ATT-KEY-TYPE",
      `attestation key type ${header.attestationKeyType}, expected ${ATT_KEY_TYPE_ECDSA_P256} (ECDSA-256 with P-256)`,
    );
  }
  if (header.teeType !== TEE_TYPE_TDX) {
    throw new AttestationError(
      "EE-ATT-TEE-TYPE",
      `TEE type 0x${header.teeType.toString(16)}, expected 0x81 (TDX)`,
    );
  }

  const bodyType = header.version === 4 ? 2 : readV5BodyType(r);
  const body: TdReportBody = r.fields(TD_REPORT_10, "TD report");
  if (bodyType === 3) Object.assign(body, r.fields(TD_REPORT_15_EXTRA, "TD report"));
  const signedRegion = bytes.subarray(0, r.offset);

  const sig = r.sub(r.u32("signature data length"), "signature data");
  const signature = sig.bytes(ECDSA_SIZE, "quote signature");
  const attestationKey = sig.bytes(ECDSA_SIZE, "attestation key");
  const certType = sig.u16("certification data type");
  const cert = sig.sub(sig.u32("certification data size"), "certification data");
  if (certType !== CERT_DATA_QE_REPORT) {
    throw new AttestationError(
      "EE-ATT-CERT-DATA",
      `certification data type ${certType}, expected ${CERT_DATA_QE_REPORT} (QE report)`,
    );
  }
  return {
    header,
    bodyType,
    body,
    signedRegion,
    signature,
    attestationKey,
    qeCertData: readQeCertData(cert),
  };
}

function readV5BodyType(r: Reader): TdReportBodyType {
  const type = r.u16("v5 body type");
  const size = r.u32("v5 body size");
  if (type !== 2 && type !== 3) throw malformed(`v5 body type ${type}, expected 2 (TDX 1.0) or 3 (TDX 1.5)`);
  if (size !== TD_REPORT_SIZE[type]) {
    throw malformed(`v5 body size ${size} does not match body type ${type} (${TD_REPORT_SIZE[type]} bytes)`);
  }
  return type;
}

function readQeCertData(r: Reader): QeReportCertData {
  const qeReport = r.bytes(SGX_REPORT_BODY_SIZE, "QE report");
  const qeReportBody = new Reader(qeReport).fields(SGX_REPORT_BODY, "QE report");
  const qeReportSignature = r.bytes(ECDSA_SIZE, "QE report signature");
  const qeAuthData = r.bytes(r.u16("QE auth data length"), "QE auth data");
  const type = r.u16("PCK certification data type");
  const data = r.bytes(r.u32("PCK certification data size"), "PCK certification data");
  return { qeReport, qeReportBody, qeReportSignature, qeAuthData, pckCertData: { type, data } };
}

/** Collects little-endian fields; the dev provider is its only user, so bad input is a provider failure. */
class Writer {
  readonly #chunks: Uint8Array[] = [];

  bytes(value: Uint8Array, size: number, field: string): this {
    if (value.length !== size) {
      throw new AttestationError("EE-ATT-PROVIDER", `${field} must be ${size} bytes, got ${value.length}`);
    }
    this.#chunks.push(value);
    return this;
  }

  /** Bytes preceded by their length as a u16 or u32. */
  prefixed(value: Uint8Array, kind: "u16" | "u32", field: string): this {
    return this.int(value.length, kind, `${field} length`).bytes(value, value.length, field);
  }

  int(value: number, kind: "u16" | "u32", field: string): this {
    const size = kind === "u16" ? 2 : 4;
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size)) {
      throw new AttestationError("EE-ATT-PROVIDER", `${field} ${value} does not fit a ${kind}`);
    }
    const out = new DataView(new ArrayBuffer(size));
    if (size === 2) out.setUint16(0, value, true);
    else out.setUint32(0, value, true);
    this.#chunks.push(new Uint8Array(out.buffer));
    return this;
  }

  fields<L extends Layout>(layout: L, values: LayoutFields<L>, what: string): this {
    const byName: Record<string, Uint8Array | number | undefined> = values;
    for (const [name, kind] of layout) {
      const field = `${what} ${name || "reserved"}`;
      const value = name ? byName[name] : typeof kind === "number" ? new Uint8Array(kind) : 0;
      if (typeof kind === "number" && value instanceof Uint8Array) this.bytes(value, kind, field);
      else if (typeof kind === "string" && typeof value === "number") this.int(value, kind, field);
      else throw new AttestationError("EE-ATT-PROVIDER", `${field} is missing or of the wrong kind`);
    }
    return this;
  }

  finish(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.#chunks));
  }
}

/** The signed region of a v4 quote: header ‖ TD report (TDX 1.0 fields only). */
export function encodeQuoteV4SignedRegion(header: QuoteHeader, body: TdReportBody): Uint8Array {
  if (header.version !== 4) {
    throw new AttestationError(
      "EE-ATT-PROVIDER",
      `the encoder writes v4 quotes, got version ${header.version}`,
    );
  }
  return new Writer().fields(HEADER, header, "header").fields(TD_REPORT_10, body, "TD report").finish();
}

export function encodeSgxReportBody(body: SgxReportBody): Uint8Array {
  return new Writer().fields(SGX_REPORT_BODY, body, "QE report").finish();
}

export interface QuoteV4SignatureData {
  signature: Uint8Array;
  attestationKey: Uint8Array;
  qeCertData: Omit<QeReportCertData, "qeReportBody">;
}

/** A complete v4 quote: the signed region followed by signature data with type 6 certification data. */
export function encodeQuoteV4(signedRegion: Uint8Array, sig: QuoteV4SignatureData): Uint8Array {
  const { qeReport, qeReportSignature, qeAuthData, pckCertData } = sig.qeCertData;
  const cert = new Writer()
    .bytes(qeReport, SGX_REPORT_BODY_SIZE, "QE report")
    .bytes(qeReportSignature, ECDSA_SIZE, "QE report signature")
    .prefixed(qeAuthData, "u16", "QE auth data")
    .int(pckCertData.type, "u16", "PCK certification data type")
    .prefixed(pckCertData.data, "u32", "PCK certification data")
    .finish();
  const sigData = new Writer()
    .bytes(sig.signature, ECDSA_SIZE, "quote signature")
    .bytes(sig.attestationKey, ECDSA_SIZE, "attestation key")
    .int(CERT_DATA_QE_REPORT, "u16", "certification data type")
    .prefixed(cert, "u32", "certification data")
    .finish();
  return new Writer()
    .bytes(signedRegion, V4_SIGNED_SIZE, "signed region")
    .prefixed(sigData, "u32", "signature data")
    .finish();
}
