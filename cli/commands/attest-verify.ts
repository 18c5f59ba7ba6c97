// `eectl attest verify FILE`: verifies a TDX quote file offline (structure, PCK chain to the trusted root, QE
// report, quote signature) and, with --collateral, evaluates Intel's CRLs, TCB info and QE identity to a TCB
// status. The JSON output (CONTRACT.md) is stable for scripts; the exit status is 0 only when every check passed.
// Imports attestation/ modules, spec/errors.ts and cli/base.ts.
import { readFileSync } from "node:fs";
import { Command, Option } from "clipanion";
import { type CollateralResult, evaluateCollateral, parseCollateral } from "../../attestation/collateral.ts";
import { parseQuote } from "../../attestation/quote.ts";
import { createTrustAnchors, type TrustAnchors, trustOnly } from "../../attestation/trust.ts";
import { type QuoteCheck, type VerifiedQuote, verifyQuote } from "../../attestation/verify.ts";
import { AttestationError, ValidationError } from "../../spec/errors.ts";
import { EeCommand } from "../base.ts";

/** Every quote check, in verification order: a check that never ran is reported false. */
const QUOTE_CHECKS = [
  "structure",
  "header_version",
  "header_key_type",
  "header_tee_type",
  "header_qe_vendor",
  "cert_data_types",
  "root_trusted",
  "pck_chain",
  "qe_report_signature",
  "qe_binding",
  "quote_signature",
] as const satisfies readonly QuoteCheck[];
// Compile-time: the list above names every QuoteCheck.
const _allListed: readonly (typeof QUOTE_CHECKS)[number][] = [] as QuoteCheck[];
void _allListed;

export interface AttestVerifyOutput {
  ok: boolean;
  version: number | null;
  tee_type: number | null;
  mrtd: string | null;
  rtmr: string[] | null;
  report_data: string | null;
  mrseam: string | null;
  td_attributes: string | null;
  xfam: string | null;
  fmspc: string | null;
  root: string | null;
  checks: Record<string, boolean>;
  tcb_status?: string;
  platform_tcb_status?: string | null;
  module_tcb_status?: string | null;
  qe_tcb_status?: string | null;
  advisory_ids?: string[];
  reason?: string;
  message?: string;
}

export class AttestVerifyCommand extends EeCommand {
  static override paths = [["attest", "verify"]];
  static override usage = Command.Usage({
    category: "Attestation",
    description: "Verify a TDX quote file (v4 or v5), optionally with Intel collateral",
    details: `
      Checks the quote's structure and header, the PCK chain up to the trusted root (the Intel SGX Root CA,
      or the one certificate in \`--root PEM\`, which replaces it), the QE report signature and binding, and
      the quote signature.

      With \`--collateral FILE\` (dcap-qvl QuoteCollateralV3 JSON) it also checks the CRLs and revocation, the
      TCB info and QE identity signatures and time windows, the QE identity, FMSPC/PCEID, the TDX module
      identity, and reports the TCB status. \`--at\` sets the time every window is checked at (default now).

      Exits 0 only when every check passed; otherwise \`reason\` holds a stable EE-ATT-* code.
    `,
    examples: [
      ["Verify a quote", "eectl attest verify quote.bin"],
      [
        "With collateral at a given time",
        "eectl attest verify quote.bin --collateral c.json --at 2025-07-01T00:00:00Z --json",
      ],
      ["A dev quote", "eectl attest verify dev.bin --root ./.easyenclave/dev-attestation/root-ca.pem"],
    ],
  });

  file = Option.String({ name: "FILE" });
  root = Option.String("--root", {
    description: "PEM of the root to trust instead of the Intel SGX Root CA",
  });
  collateral = Option.String("--collateral", { description: "Collateral JSON (dcap-qvl QuoteCollateralV3)" });
  at = Option.String("--at", { description: "ISO 8601 time to check validity windows at (default now)" });
  asJson = Option.Boolean("--json", false, { description: "Print one JSON document" });

  async run(): Promise<number> {
    const bytes = new Uint8Array(readInput(this.file, "quote"));
    const trust =
      this.root === undefined
        ? createTrustAnchors()
        : rootOnly(readInput(this.root, "root").toString("utf8"));
    const at = this.at === undefined ? new Date() : parseAt(this.at);
    const collateral =
      this.collateral === undefined
        ? undefined
        : parseCollateral(readInput(this.collateral, "collateral").toString("utf8"));

    const out = describe(bytes);
    let verified: VerifiedQuote | undefined;
    try {
      verified = verifyQuote(bytes, { trust, at });
      out.fmspc = verified.pck_leaf.fmspc;
      out.root = verified.root;
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      out.ok = false;
      out.reason = err.code;
      out.message = err.message;
      Object.assign(out.checks, (err.details as { checks?: Record<string, boolean> } | undefined)?.checks);
    }
    if (verified !== undefined) {
      Object.assign(out.checks, verified.checks);
      if (collateral !== undefined) addCollateral(out, evaluateCollateral(bytes, verified, collateral, at));
    }
    if (this.asJson) this.json(out);
    else this.context.stdout.write(summary(out));
    return out.ok ? 0 : 1;
  }
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ValidationError(
      "EE-REQ-INVALID",
      `cannot read ${what} file ${path}: ${(err as Error).message}`,
    );
  }
}

function parseAt(text: string): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(at.getTime())) {
    throw new ValidationError("EE-REQ-INVALID", `--at ${JSON.stringify(text)} is not an ISO 8601 time`);
  }
  return at;
}

/** Trust anchors holding only the --root certificate; its problems are the caller's (EE-REQ-INVALID). */
function rootOnly(pem: string): TrustAnchors {
  try {
    return trustOnly(pem);
  } catch (err) {
    throw new ValidationError("EE-REQ-INVALID", `--root: ${(err as Error).message}`);
  }
}

/** The quote's fields when it parses (even if it does not verify), nulls otherwise. */
function describe(bytes: Uint8Array): AttestVerifyOutput {
  const out: AttestVerifyOutput = {
    ok: true,
    version: null,
    tee_type: null,
    mrtd: null,
    rtmr: null,
    report_data: null,
    mrseam: null,
    td_attributes: null,
    xfam: null,
    fmspc: null,
    root: null,
    checks: Object.fromEntries(QUOTE_CHECKS.map((check) => [check, false])),
  };
  try {
    const { header, body } = parseQuote(bytes);
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    Object.assign(out, {
      version: header.version,
      tee_type: header.teeType,
      mrtd: hex(body.mrTd),
      rtmr: [hex(body.rtmr0), hex(body.rtmr1), hex(body.rtmr2), hex(body.rtmr3)],
      report_data: hex(body.reportData),
      mrseam: hex(body.mrSeam),
      td_attributes: hex(body.tdAttributes),
      xfam: hex(body.xfam),
    });
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
  }
  return out;
}

function addCollateral(out: AttestVerifyOutput, r: CollateralResult): void {
  Object.assign(out.checks, r.checks);
  out.tcb_status = r.tcb_status;
  out.platform_tcb_status = r.platform_tcb_status;
  out.module_tcb_status = r.module_tcb_status;
  out.qe_tcb_status = r.qe_tcb_status;
  out.advisory_ids = r.advisory_ids;
  if (!r.ok) {
    out.ok = false;
    out.reason = r.reason;
    out.message = r.message;
  }
}

function summary(out: AttestVerifyOutput): string {
  const lines = [
    out.ok
      ? `OK: TDX quote v${out.version} verified (root ${out.root})`
      : `FAILED: ${out.reason}: ${out.message}`,
  ];
  if (out.mrtd !== null) lines.push(`  mrtd         ${out.mrtd}`, `  report_data  ${out.report_data}`);
  if (out.fmspc !== null) lines.push(`  fmspc        ${out.fmspc}`);
  if (out.tcb_status !== undefined) {
    const parts = `platform ${out.platform_tcb_status ?? "none"}, module ${out.module_tcb_status ?? "none"}, QE ${out.qe_tcb_status ?? "none"}`;
    lines.push(`  tcb_status   ${out.tcb_status} (${parts})`);
    if (out.advisory_ids?.length) lines.push(`  advisories   ${out.advisory_ids.join(", ")}`);
  }
  const failed = Object.entries(out.checks).filter(([, passed]) => !passed);
  if (failed.length > 0) lines.push(`  failed/unrun checks: ${failed.map(([check]) => check).join(", ")}`);
  return `${lines.join("\n")}\n`;
}
