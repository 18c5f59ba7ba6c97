// The 16 genuine Intel-signed quotes in shared/tdx-quotes: each parses and verifies against the embedded Intel
// root, and the parsed fields equal the ones recorded in its NAME.json. Skipped, with a notice, where the
// samples are absent.
import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { parseQuote } from "../../attestation/quote.ts";
import { createTrustAnchors, INTEL_SGX_ROOT_CA_PEM } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { attestationError, flip, SHARED_QUOTES, sharedQuotesAvailable } from "./fixtures.ts";

interface SampleJson {
  quote_version: number;
  body_type: number;
  header: {
    version: number;
    att_key_type: number;
    tee_type: number;
    qe_vendor_id: string;
    user_data: string;
  };
  td_report_body: {
    [K in
      | "tee_tcb_svn"
      | "mr_seam"
      | "mr_signer_seam"
      | "seam_attributes"
      | "td_attributes"
      | "xfam"
      | "mr_td"
      | "mr_config_id"
      | "mr_owner"
      | "mr_owner_config"
      | "rtmr0"
      | "rtmr1"
      | "rtmr2"
      | "rtmr3"
      | "report_data"]: string;
  } & { tee_tcb_svn2?: string; mr_servicetd?: string };
  signed_region: { length: number };
  quote_signature_rs: string;
  attestation_public_key_xy: string;
  qe_report: {
    [K in
      | "cpu_svn"
      | "misc_select"
      | "attributes"
      | "mr_enclave"
      | "mr_signer"
      | "isv_prod_id"
      | "isv_svn"
      | "report_data"]: string;
  };
  qe_report_signature_rs: string;
  qe_auth_data: string;
  inner_certification_data_type: number;
  inner_certification_data_size: number;
  pck_info: {
    pck_leaf_serial: string;
    pck_leaf_validity: [string, string];
    pck_sgx_extension: { fmspc: string; pceid: string };
  };
}

const available = sharedQuotesAvailable();
if (!available)
  console.log(`real TDX quote samples not found at ${SHARED_QUOTES.pathname}; skipping those tests`);
const names = available
  ? readdirSync(SHARED_QUOTES)
      .filter((f) => f.endsWith(".bin"))
      .map((f) => f.slice(0, -4))
      .sort()
  : [];
const sample = (name: string) => ({
  bytes: new Uint8Array(readFileSync(new URL(`${name}.bin`, SHARED_QUOTES))),
  json: JSON.parse(readFileSync(new URL(`${name}.json`, SHARED_QUOTES), "utf8")) as SampleJson,
});
// A day into the PCK leaf's validity: inside every certificate's window in these chains.
const atFor = (json: SampleJson) =>
  new Date(Date.parse(json.pck_info.pck_leaf_validity[0]) + 24 * 3600 * 1000);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const intel = createTrustAnchors();
const maybe = available ? test : test.skip;

maybe("all 16 samples are present", (t) => {
  t.is(names.length, 16);
});

maybe("the embedded Intel SGX Root CA equals the shared PEM byte for byte", (t) => {
  t.is(INTEL_SGX_ROOT_CA_PEM, readFileSync(new URL("intel-sgx-root-ca.pem", SHARED_QUOTES), "utf8"));
});

for (const name of names) {
  test(`${name}: verifies against the Intel root, fields equal the JSON`, (t) => {
    const { bytes, json } = sample(name);
    const v = verifyQuote(bytes, { trust: intel, at: atFor(json) });
    const body = json.td_report_body;
    t.is(v.root, "intel");
    t.true(Object.values(v.checks).every(Boolean));
    t.is(v.version, json.quote_version);
    t.is(v.body_type, json.body_type);
    t.is(v.tee_type, json.header.tee_type);
    t.is(v.mrtd, body.mr_td);
    t.deepEqual(v.rtmr, [body.rtmr0, body.rtmr1, body.rtmr2, body.rtmr3]);
    t.is(v.report_data, body.report_data);
    t.is(hex(v.reportData), body.report_data);
    t.is(v.mrseam, body.mr_seam);
    t.is(v.mrsignerseam, body.mr_signer_seam);
    t.is(v.seam_attributes, body.seam_attributes);
    t.is(v.td_attributes, body.td_attributes);
    t.is(v.xfam, body.xfam);
    t.is(v.mr_config_id, body.mr_config_id);
    t.is(v.mr_owner, body.mr_owner);
    t.is(v.mr_owner_config, body.mr_owner_config);
    t.is(v.tee_tcb_svn, body.tee_tcb_svn);
    t.is(v.tee_tcb_svn2, body.tee_tcb_svn2);
    t.is(v.mr_servicetd, body.mr_servicetd);
    t.is(v.pck_leaf.fmspc, json.pck_info.pck_sgx_extension.fmspc);
    t.is(v.pck_leaf.pceid, json.pck_info.pck_sgx_extension.pceid);
    t.is(v.pck_leaf.serial_number, json.pck_info.pck_leaf_serial.replace(/^0x/, ""));
  });

  test(`${name}: parsed signature data equals the JSON`, (t) => {
    const { bytes, json } = sample(name);
    const q = parseQuote(bytes);
    const qe = q.qeCertData;
    t.is(q.header.version, json.header.version);
    t.is(q.header.attestationKeyType, json.header.att_key_type);
    t.is(hex(q.header.qeVendorId), json.header.qe_vendor_id);
    t.is(hex(q.header.userData), json.header.user_data);
    t.is(q.signedRegion.length, json.signed_region.length);
    t.is(hex(q.signature), json.quote_signature_rs);
    t.is(hex(q.attestationKey), json.attestation_public_key_xy);
    t.is(hex(qe.qeReportBody.cpuSvn), json.qe_report.cpu_svn);
    t.is(hex(qe.qeReportBody.miscSelect), json.qe_report.misc_select);
    t.is(hex(qe.qeReportBody.attributes), json.qe_report.attributes);
    t.is(hex(qe.qeReportBody.mrEnclave), json.qe_report.mr_enclave);
    t.is(hex(qe.qeReportBody.mrSigner), json.qe_report.mr_signer);
    t.is(hex(qe.qeReportBody.isvProdId), json.qe_report.isv_prod_id);
    t.is(hex(qe.qeReportBody.isvSvn), json.qe_report.isv_svn);
    t.is(hex(qe.qeReportBody.reportData), json.qe_report.report_data);
    t.is(hex(qe.qeReportSignature), json.qe_report_signature_rs);
    t.is(hex(qe.qeAuthData), json.qe_auth_data);
    t.is(qe.pckCertData.type, json.inner_certification_data_type);
    t.is(qe.pckCertData.data.length, json.inner_certification_data_size);
  });
}

maybe("a real quote with one body byte changed fails the quote signature", (t) => {
  const { bytes, json } = sample("trustee-tdx_quote_5_v5");
  const err = attestationError(t, () =>
    verifyQuote(flip(bytes, 48 + 6 + 200), { trust: intel, at: atFor(json) }),
  );
  t.is(err.code, "EE-ATT-QUOTE-SIGNATURE");
});

maybe("a real quote outside its PCK leaf's validity fails the chain check", (t) => {
  const { bytes, json } = sample("gtg-tdx_prod_quote_SPR_E4_v4");
  const after = new Date(Date.parse(json.pck_info.pck_leaf_validity[1]) + 1000);
  t.is(
    attestationError(t, () => verifyQuote(bytes, { trust: intel, at: after })).code,
    "EE-ATT-CHAIN-INVALID",
  );
});
