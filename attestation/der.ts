// Minimal DER: the TLV writing that the dev PKI's certificates need and the reading that finds the SGX extension
// in a PCK certificate, nothing more (single-byte tags; lengths below 2^24 read, below 2^16 written). Malformed
// input throws SyntaxError; callers turn it into their own typed error. Imports nothing.

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  /** Context-specific, constructed: [n] EXPLICIT. */
  explicit: (n: number) => 0xa0 | n,
  /** Context-specific, primitive: [n] IMPLICIT over a primitive type. */
  implicit: (n: number) => 0x80 | n,
} as const;

export interface Tlv {
  tag: number;
  value: Uint8Array;
}

export function derTlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((sum, p) => sum + p.length, 0);
  if (length > 0xffff) throw new SyntaxError("DER value too long for this writer");
  const header =
    length < 0x80
      ? [tag, length]
      : length < 0x100
        ? [tag, 0x81, length]
        : [tag, 0x82, length >> 8, length & 0xff];
  const out = new Uint8Array(header.length + length);
  out.set(header);
  let pos = header.length;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

export function derOid(dotted: string): Uint8Array {
  return derTlv(TAG.oid, oidContent(dotted));
}

export function isOid(tlv: Tlv | undefined, dotted: string): boolean {
  return tlv?.tag === TAG.oid && Buffer.from(tlv.value).equals(oidContent(dotted));
}

/** An INTEGER from unsigned big-endian bytes, minimally encoded. */
export function derUnsigned(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const digits = bytes.subarray(start);
  const first = digits[0] ?? 0;
  return derTlv(TAG.integer, ...(first & 0x80 || digits.length === 0 ? [Uint8Array.of(0)] : []), digits);
}

export function derBoolean(value: boolean): Uint8Array {
  return derTlv(TAG.boolean, Uint8Array.of(value ? 0xff : 0));
}

export function derUtf8(text: string): Uint8Array {
  return derTlv(TAG.utf8String, new TextEncoder().encode(text));
}

export function derBitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return derTlv(TAG.bitString, Uint8Array.of(unusedBits), bytes);
}

/** RFC 5280 validity time: UTCTime through 2049, GeneralizedTime from 2050. */
export function derTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const utc = date.getUTCFullYear() < 2050;
  return derTlv(
    utc ? TAG.utcTime : TAG.generalizedTime,
    new TextEncoder().encode(utc ? digits.slice(2) : digits),
  );
}

/** Every TLV in `bytes`, which they must fill exactly. */
export function derRead(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  const next = (): number => {
    const byte = bytes[pos++];
    if (byte === undefined) throw new SyntaxError("DER truncated");
    return byte;
  };
  while (pos < bytes.length) {
    const tag = next();
    if ((tag & 0x1f) === 0x1f) throw new SyntaxError("DER high tag numbers are not supported");
    let length = next();
    if (length & 0x80) {
      const octets = length & 0x7f;
      if (octets === 0 || octets > 3) throw new SyntaxError("DER length form not supported");
      length = 0;
      for (let i = 0; i < octets; i++) length = length * 256 + next();
    }
    if (length > bytes.length - pos) throw new SyntaxError("DER value overruns its container");
    out.push({ tag, value: bytes.subarray(pos, pos + length) });
    pos += length;
  }
  return out;
}

/** The single TLV that `bytes` holds, which must carry `tag`. */
export function derReadOne(bytes: Uint8Array, tag: number, what: string): Tlv {
  const [tlv, ...rest] = derRead(bytes);
  if (tlv?.tag !== tag || rest.length > 0)
    throw new SyntaxError(`${what}: expected one DER value of tag ${tag}`);
  return tlv;
}

function oidContent(dotted: string): Uint8Array {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80);
    out.push(...base128);
  }
  return Uint8Array.from(out);
}
