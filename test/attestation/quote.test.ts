// The quote layout module on its own: v5 layouts (built from a dev v4 quote), version and length checks, views
// at non-zero offsets, and the encoder's refusals.
import test from "ava";
import {
  emptyTdReportBody,
  encodeQuoteV4SignedRegion,
  parseQuote,
  type QuoteHeader,
} from "../../attestation/quote.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { AttestationError } from "../../spec/errors.ts";
import { devSetup, outcome } from "./fixtures.ts";

/** A v5 quote with the v4 quote's header, body, `extra` body bytes and signature data (no longer valid). */
function toV5(v4: Uint8Array, bodyType: number, bodySize: number, extra = new Uint8Array(0)): Uint8Array {
  const header = v4.slice(0, 48);
  header[0] = 5;
  const descriptor = new DataView(new ArrayBuffer(6));
  descriptor.setUint16(0, bodyType, true);
  descriptor.setUint32(2, bodySize, true);
  return new Uint8Array(
    Buffer.concat([header, new Uint8Array(descriptor.buffer), v4.subarray(48, 632), extra, v4.subarray(632)]),
  );
}

test("v5 body type 2 (TDX 1.0): the signed region covers the body descriptor", async (t) => {
  const dev = await devSetup(t);
  const v4 = await dev.quote();
  const v5 = parseQuote(toV5(v4, 2, 584));
  t.is(v5.header.version, 5);
  t.is(v5.bodyType, 2);
  t.is(v5.signedRegion.length, 54 + 584);
  t.deepEqual(v5.body, parseQuote(v4).body);
  t.deepEqual(v5.qeCertData.qeReport, parseQuote(v4).qeCertData.qeReport);
  t.is(
    outcome(() => verifyQuote(toV5(v4, 2, 584), { trust: dev.trust })),
    "EE-ATT-QUOTE-SIGNATURE",
  );
});

test("v5 body type 3 (TDX 1.5) carries TEE_TCB_SVN2 and MRSERVICETD", async (t) => {
  const dev = await devSetup(t);
  const extra = Buffer.concat([Buffer.alloc(16, 0x11), Buffer.alloc(48, 0x22)]);
  const q = parseQuote(toV5(await dev.quote(), 3, 648, extra));
  t.is(q.bodyType, 3);
  t.is(q.signedRegion.length, 702);
  t.deepEqual(q.body.teeTcbSvn2, new Uint8Array(16).fill(0x11));
  t.deepEqual(q.body.mrServiceTd, new Uint8Array(48).fill(0x22));
});

test("v5 with an unknown body type or a size that does not match it is malformed", async (t) => {
  const v4 = await (await devSetup(t)).quote();
  t.is(
    outcome(() => parseQuote(toV5(v4, 1, 384))),
    "EE-ATT-QUOTE-MALFORMED",
  );
  t.is(
    outcome(() => parseQuote(toV5(v4, 3, 584))),
    "EE-ATT-QUOTE-MALFORMED",
  );
  t.is(
    outcome(() => parseQuote(toV5(v4, 2, 648))),
    "EE-ATT-QUOTE-MALFORMED",
  );
});

test("versions other than 4 and 5 are refused as QUOTE-VERSION", async (t) => {
  const quote = await (await devSetup(t)).quote();
  for (const version of [0, 3, 6, 0x104]) {
    const bytes = quote.slice();
    new DataView(bytes.buffer).setUint16(0, version, true);
    t.is(
      outcome(() => parseQuote(bytes)),
      "EE-ATT-QUOTE-VERSION",
      `version ${version}`,
    );
  }
});

test("a quote inside a larger buffer, at an odd offset, parses from its own bytes", async (t) => {
  const quote = await (await devSetup(t)).quote();
  const buffer = new Uint8Array(quote.length + 100).fill(0xee);
  buffer.set(quote, 7);
  const q = parseQuote(buffer.subarray(7, 7 + quote.length));
  t.deepEqual(q.body, parseQuote(quote).body);
  t.is(q.signedRegion.byteOffset, 7);
});

test("the error message says which field is short and where", (t) => {
  const err = t.throws(() => parseQuote(new Uint8Array(40)), { instanceOf: AttestationError });
  t.is(err?.code, "EE-ATT-QUOTE-MALFORMED");
  t.regex(err?.message ?? "", /header .* needs \d+ bytes at offset \d+, only \d+ left/);
});

const header: QuoteHeader = {
  version: 4,
  attestationKeyType: 2,
  teeType: 0x81,
  qeSvn: 0,
  pceSvn: 0,
  qeVendorId: new Uint8Array(16),
  userData: new Uint8Array(20),
};

test("the encoder writes only v4 and only fields of the right size", (t) => {
  t.is(encodeQuoteV4SignedRegion(header, emptyTdReportBody()).length, 632);
  t.is(
    outcome(() => encodeQuoteV4SignedRegion({ ...header, version: 5 }, emptyTdReportBody())),
    "EE-ATT-PROVIDER",
  );
  const short = { ...emptyTdReportBody(), mrTd: new Uint8Array(47) };
  t.is(
    outcome(() => encodeQuoteV4SignedRegion(header, short)),
    "EE-ATT-PROVIDER",
  );
  t.is(
    outcome(() => encodeQuoteV4SignedRegion({ ...header, qeSvn: 0x10000 }, emptyTdReportBody())),
    "EE-ATT-PROVIDER",
  );
});
