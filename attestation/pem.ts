// Strict PEM certificate parsing: quotes carry their PCK chain as PEM text, and lenient base64 decoding would let
// different bytes stand for the same chain. Only whitespace may surround the blocks, and the base64 must be
// canonical. Throws SyntaxError; callers turn it into their own typed error. Imports nothing.

const BLOCK = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// ASCII whitespace only: String.prototype.trim and \s also accept Unicode spaces such as latin1 0xA0.
const WHITESPACE = /[\t\n\r ]/g;
const blank = (text: string) => text.replace(WHITESPACE, "") === "";

/** The DER bytes of each certificate in `text`, in order. */
export function parsePemCertificates(text: string): Uint8Array[] {
  const ders: Uint8Array[] = [];
  let end = 0;
  for (const match of text.matchAll(BLOCK)) {
    if (!blank(text.slice(end, match.index))) {
      throw new SyntaxError(`unexpected text before certificate ${ders.length + 1}`);
    }
    const base64 = (match[1] ?? "").replace(WHITESPACE, "");
    const der = Buffer.from(base64, "base64");
    if (!BASE64.test(base64) || der.toString("base64") !== base64) {
      throw new SyntaxError(`certificate ${ders.length + 1} is not canonical base64`);
    }
    ders.push(new Uint8Array(der));
    end = match.index + match[0].length;
  }
  if (!blank(text.slice(end))) throw new SyntaxError("unexpected text after the last certificate");
  if (ders.length === 0) throw new SyntaxError("no PEM certificate found");
  return ders;
}
