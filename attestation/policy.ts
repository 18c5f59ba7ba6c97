// Measurement policy: which MRTDs, RTMRs, TCB statuses and TD attributes a control plane admits, each check
// with its own mode (strict refuses, warn admits and records, disabled skips). The JSON file format is the
// zod schema below (documented in spec/policy.md). Admin-approved measurements (kept by the CP's store) extend
// the file's allowlists. Pure: evaluates facts, never reads files or clocks.
import { z } from "zod";
import type { CodeOf } from "../spec/errors.ts";
import { measurementHexSchema } from "../spec/protocol.ts";

export type PolicyMode = "strict" | "warn" | "disabled";

const mode = z.enum(["strict", "warn", "disabled"]);
/** Allowlists keyed by node_size; "*" applies to every size. */
const bySize = <T extends z.ZodType>(item: T) => z.record(z.string().min(1).max(64), z.array(item).max(1024));

export const policySchema = z.strictObject({
  mrtd: z
    .strictObject({ mode: mode.default("disabled"), allow: bySize(measurementHexSchema).default({}) })
    .default({ mode: "disabled", allow: {} }),
  // Each accepted entry lists RTMR0..3; null accepts any value for that register.
  rtmr: z
    .strictObject({
      mode: mode.default("disabled"),
      allow: bySize(
        z.tuple([
          measurementHexSchema.nullable(),
          measurementHexSchema.nullable(),
          measurementHexSchema.nullable(),
          measurementHexSchema.nullable(),
        ]),
      ).default({}),
    })
    .default({ mode: "disabled", allow: {} }),
  tcb: z
    .strictObject({
      mode: mode.default("disabled"),
      allowed_statuses: z.array(z.string().max(64)).max(16).default(["UpToDate"]),
      allowed_advisories: z.array(z.string().max(64)).max(1024).default([]),
    })
    .default({ mode: "disabled", allowed_statuses: ["UpToDate"], allowed_advisories: [] }),
  td_attributes: z
    .strictObject({ mode: mode.default("strict"), allow_debug: z.boolean().default(false) })
    .default({ mode: "strict", allow_debug: false }),
});

export type MeasurementPolicy = z.output<typeof policySchema>;

/** One admin-approved measurement: this MRTD for node_size ("*": every size), with these RTMRs or (null) any. */
export interface TrustedMeasurement {
  node_size: string;
  mrtd: string;
  rtmr: readonly [string, string, string, string] | null;
}

const ANY_RTMR = [null, null, null, null] as const;

/**
 * What an empty policy file means: measurements unchecked, debug TDs refused. A dev-mode CP without `--policy`
 * applies it; actors/measurement-default.ts picks the CP's default.
 */
export const DEFAULT_POLICY: MeasurementPolicy = policySchema.parse({});

/**
 * A CP's default outside dev mode: MRTD and RTMRs strict with empty allowlists, so only admin-approved
 * measurements (trusted entries, approved baselines) are admitted; debug TDs refused as always.
 */
export const REFUSE_UNKNOWN_POLICY: MeasurementPolicy = policySchema.parse({
  mrtd: { mode: "strict" },
  rtmr: { mode: "strict" },
});

export interface MeasuredFacts {
  node_size: string;
  mrtd: string;
  rtmr: readonly string[];
  /** 8 bytes, lowercase hex, as in the quote (little-endian: bit 0 of byte 0 is DEBUG). */
  td_attributes: string;
  /** Present only when collateral was evaluated. */
  tcb_status?: string;
  advisory_ids?: readonly string[];
}

/** Reason codes of policy findings; Extract keeps them tied to the catalog in spec/errors.ts. */
export type FindingCode = Extract<
  CodeOf<"EE-ATT-">,
  "EE-ATT-MRTD-NOT-ALLOWED" | "EE-ATT-RTMR-NOT-ALLOWED" | "EE-ATT-TCB-STATUS" | "EE-ATT-DEBUG-TD"
>;

/** One policy mismatch: which register, what was seen, what is accepted, and under which mode. */
export interface Finding {
  code: FindingCode;
  register: string;
  seen: unknown;
  accepted: unknown;
  mode: Exclude<PolicyMode, "disabled">;
}

export interface PolicyVerdict {
  admit: boolean;
  /** Strict findings refuse; warn findings are recorded and admitted. */
  findings: Finding[];
}

function allowedFor<T>(allow: Record<string, T[]>, nodeSize: string): T[] {
  return [...(allow[nodeSize] ?? []), ...(allow["*"] ?? [])];
}

/**
 * `trusted` entries count as if listed in the file under their node_size: the MRTD in the MRTD allowlist, and
 * its RTMRs in the RTMR allowlist for quotes with that MRTD only, so approving one measured image admits no
 * other image's RTMRs.
 */
export function evaluatePolicy(
  policy: MeasurementPolicy,
  facts: MeasuredFacts,
  trusted: readonly TrustedMeasurement[] = [],
): PolicyVerdict {
  const findings: Finding[] = [];
  const mine = trusted.filter((e) => e.node_size === facts.node_size || e.node_size === "*");
  const add = (m: PolicyMode, f: Omit<Finding, "mode">) => {
    if (m !== "disabled") findings.push({ ...f, mode: m });
  };

  if (policy.mrtd.mode !== "disabled") {
    const accepted = [...allowedFor(policy.mrtd.allow, facts.node_size), ...mine.map((e) => e.mrtd)];
    if (!accepted.includes(facts.mrtd)) {
      add(policy.mrtd.mode, {
        code: "EE-ATT-MRTD-NOT-ALLOWED",
        register: "mrtd",
        seen: facts.mrtd,
        accepted,
      });
    }
  }
  if (policy.rtmr.mode !== "disabled") {
    const accepted = [
      ...allowedFor(policy.rtmr.allow, facts.node_size),
      ...mine.filter((e) => e.mrtd === facts.mrtd).map((e) => e.rtmr ?? ANY_RTMR),
    ];
    const ok = accepted.some((entry) => entry.every((v, i) => v === null || v === facts.rtmr[i]));
    if (!ok)
      add(policy.rtmr.mode, {
        code: "EE-ATT-RTMR-NOT-ALLOWED",
        register: "rtmr",
        seen: facts.rtmr,
        accepted,
      });
  }
  if (policy.tcb.mode !== "disabled") {
    const status = facts.tcb_status ?? "unknown (no collateral)";
    const badAdvisories = (facts.advisory_ids ?? []).filter(
      (a) => !policy.tcb.allowed_advisories.includes(a),
    );
    if (!policy.tcb.allowed_statuses.includes(status) || badAdvisories.length > 0) {
      add(policy.tcb.mode, {
        code: "EE-ATT-TCB-STATUS",
        register: "tcb_status",
        seen: { status, advisory_ids: facts.advisory_ids ?? [] },
        accepted: { statuses: policy.tcb.allowed_statuses, advisory_ids: policy.tcb.allowed_advisories },
      });
    }
  }
  if (
    policy.td_attributes.mode !== "disabled" &&
    !policy.td_attributes.allow_debug &&
    isDebugTd(facts.td_attributes)
  ) {
    add(policy.td_attributes.mode, {
      code: "EE-ATT-DEBUG-TD",
      register: "td_attributes",
      seen: facts.td_attributes,
      accepted: "DEBUG bit clear",
    });
  }
  return { admit: findings.every((f) => f.mode === "warn"), findings };
}

/** TDATTRIBUTES bit 0 (DEBUG): the host can read the TD's memory, so nothing it proves is confidential. */
export function isDebugTd(tdAttributesHex: string): boolean {
  const byte0 = Number.parseInt(tdAttributesHex.slice(0, 2), 16);
  return Number.isFinite(byte0) && (byte0 & 1) === 1;
}

/** Human message naming the first refusing finding, for error frames and logs. */
export function describeFinding(f: Finding): string {
  const seen = typeof f.seen === "string" ? f.seen : JSON.stringify(f.seen);
  return `${f.register} ${seen} is not accepted (${f.mode})`;
}
