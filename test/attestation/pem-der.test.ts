// The small encoding modules: strict PEM, minimal DER and the SGX extension.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { derRead, derTime, derUnsigned } from "../../attestation/der.ts";
import { parsePemCertificates } from "../../attestation/pem.ts";
import { encodeSgxExtension, sgxExtensionOf } from "../../attestation/sgx-extension.ts";
import { INTEL_SGX_ROOT_CA_PEM } from "../../attestation/trust.ts";
import { devSetup } from "./fixtures.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

test("PEM: blocks separated by any whitespace parse, in order", (t) => {
  const der = parsePemCertificates(INTEL_SGX_ROOT_CA_PEM)[0];
  const two = `\r\n${INTEL_SGX_ROOT_CA_PEM}${INTEL_SGX_ROOT_CA_PEM.replaceAll("\n", "\r\n")}\n\n`;
  t.deepEqual(parsePemCertificates(two), [der, der]);
  t.true(new X509Certificate(der ?? new Uint8Array()).ca);
});

test("PEM: stray text (even a latin1 no-break space), non-canonical base64 and empty input are refused", (t) => {
  const pem = INTEL_SGX_ROOT_CA_PEM;
  // The last base64 digit before "=" carries unused bits; changing only those keeps the bytes but not the text.
  const nonCanonical = pem.replace("I=\n-----END", "J=\n-----END");
  t.not(nonCanonical, pem);
  const nbsp = "\u00a0";
  for (const text of [
    `x${pem}`,
    `${pem}x`,
    `${pem}${nbsp}`,
    pem.replace("MIIC", "MI*C"),
    nonCanonical,
    "",
    "   ",
  ]) {
    t.throws(() => parsePemCertificates(text), { instanceOf: SyntaxError });
  }
});

test("DER: INTEGERs are minimal, times switch to GeneralizedTime in 2050", (t) => {
  t.is(hex(derUnsigned(Uint8Array.of(0, 0, 5))), "020105");
  t.is(hex(derUnsigned(Uint8Array.of(0x80))), "02020080");
  t.is(hex(derUnsigned(new Uint8Array(0))), "020100");
  t.is(Buffer.from(derTime(new Date("2049-12-31T23:59:59Z"))).toString("latin1"), "\x17\x0d491231235959Z");
  t.is(Buffer.from(derTime(new Date("2050-01-01T00:00:00Z"))).toString("latin1"), "\x18\x0f20500101000000Z");
});

test("DER: truncated, overrunning and high-tag input is refused", (t) => {
  for (const bad of ["30", "3003020101ff", "3081", "1f0100", "3084000000010000"]) {
    t.throws(() => derRead(Buffer.from(bad, "hex")), { instanceOf: SyntaxError }, bad);
  }
  t.deepEqual(
    derRead(Buffer.from("0201050400", "hex")).map((tlv) => tlv.tag),
    [0x02, 0x04],
  );
});

test("SGX extension: the dev leaf carries it, the root has none", async (t) => {
  const dev = await devSetup(t);
  const read = (name: string) => new X509Certificate(readFileSync(join(dev.dir, name))).raw;
  t.deepEqual(sgxExtensionOf(read("pck-leaf.pem")), { fmspc: "ee0000000000", pceid: "0000" });
  t.is(sgxExtensionOf(read("root-ca.pem")), null);
});

test("SGX extension: values must be lowercase hex of the right size", (t) => {
  t.throws(() => encodeSgxExtension({ fmspc: "EE0000000000", pceid: "0000" }), { instanceOf: SyntaxError });
  t.throws(() => encodeSgxExtension({ fmspc: "ee00", pceid: "0000" }), { instanceOf: SyntaxError });
});
