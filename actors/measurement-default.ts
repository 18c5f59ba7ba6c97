// Which measurement policy a control plane applies, and the one start line that says so. With `--policy FILE`
// the file decides. Without it the default follows the attestation mode: a CP that trusts only Intel's root
// refuses an MRTD/RTMR nobody trusted (registration records it as a baseline an admin can approve), while dev
// mode (`--dev-attestation`) accepts every measurement so `npm start` runs any local agent. A dev CP given
// `--refuse-unknown-measurements` applies the production default to dev quotes (to rehearse the approval flow,
// and to test it end to end). Pure; imports attestation/policy.ts, lib/log.ts (type) and spec/errors.ts.
import { DEFAULT_POLICY, type MeasurementPolicy, REFUSE_UNKNOWN_POLICY } from "../attestation/policy.ts";
import type { Logger } from "../lib/log.ts";
import { ValidationError } from "../spec/errors.ts";

export interface MeasurementChoiceInput {
  /** From `--policy FILE`. */
  policy?: MeasurementPolicy;
  /** `--dev-attestation` is set: dev quotes verify. */
  dev: boolean;
  /** `--refuse-unknown-measurements`: the production default even in dev mode. */
  refuseUnknown?: boolean;
}

export interface MeasurementChoice {
  policy: MeasurementPolicy;
  source: "policy-file" | "default" | "dev-default";
  /** An MRTD or RTMR in no allowlist and not approved is refused (and recorded as a baseline). */
  refusesUnknown: boolean;
}

/** Throws EE-CONFIG-INVALID when `--refuse-unknown-measurements` comes with a policy file (the file decides). */
export function chooseMeasurementPolicy(o: MeasurementChoiceInput): MeasurementChoice {
  if (o.policy) {
    if (o.refuseUnknown) {
      throw new ValidationError(
        "EE-CONFIG-INVALID",
        "--refuse-unknown-measurements applies only without --policy: set mrtd and rtmr to strict in the policy file instead",
      );
    }
    const refusesUnknown = o.policy.mrtd.mode === "strict" || o.policy.rtmr.mode === "strict";
    return { policy: o.policy, source: "policy-file", refusesUnknown };
  }
  if (o.dev && !o.refuseUnknown)
    return { policy: DEFAULT_POLICY, source: "dev-default", refusesUnknown: false };
  return { policy: REFUSE_UNKNOWN_POLICY, source: "default", refusesUnknown: true };
}

const SUMMARY: Record<MeasurementChoice["source"], (refuses: boolean) => string> = {
  "policy-file": (refuses) =>
    refuses
      ? "measurement policy from --policy: an MRTD/RTMR outside its allowlists and not approved is REFUSED and recorded as a baseline (eectl measurements approve)"
      : "measurement policy from --policy: unknown MRTD/RTMR values are ACCEPTED (no strict mrtd or rtmr check)",
  default: () =>
    "measurement policy: default (no --policy): an MRTD/RTMR nobody approved is REFUSED (EE-ATT-MRTD-NOT-ALLOWED) and recorded as a baseline; approve it with `eectl measurements approve ID`, or accept unknown measurements with a --policy file",
  "dev-default": () =>
    "measurement policy: DEV default (--dev-attestation, no --policy): unknown MRTD/RTMR values are ACCEPTED; outside dev mode they are refused until approved",
};

/** The start line, at warn level: it decides which TDs may join, so it shows even under EE_LOG_LEVEL=warn. */
export function logMeasurementChoice(log: Logger, c: MeasurementChoice): void {
  log.warn(
    {
      measurement_policy: c.source,
      unknown_measurements: c.refusesUnknown ? "refused" : "accepted",
      modes: {
        mrtd: c.policy.mrtd.mode,
        rtmr: c.policy.rtmr.mode,
        tcb: c.policy.tcb.mode,
        td_attributes: c.policy.td_attributes.mode,
      },
    },
    SUMMARY[c.source](c.refusesUnknown),
  );
}
