// Registration checks, in two steps. The connection gate (nonce, proof of possession) runs on the register
// frame before any actor sees it, so nobody can disturb another agent's session. Verification (quote, nonce
// binding, collateral where configured, measurement policy, node_size/datacenter policy, drift) runs inside the session actor as its verifyRegistration actor.
// A registration refused for an MRTD/RTMR outside the allowlists leaves a baseline an admin can approve.
import { verifyPop } from "../attestation/agent-key.ts";
import { type CollateralResult, evaluateCollateral, requireCollateral } from "../attestation/collateral.ts";
import { type CollateralSource, collateralQueryOf } from "../attestation/collateral-store.ts";
import {
  describeFinding,
  evaluatePolicy,
  type Finding,
  type MeasurementPolicy,
  type PolicyVerdict,
} from "../attestation/policy.ts";
import { type BindingPurpose, reportDataFor, reportDataMatches } from "../attestation/report-data.ts";
import type { TrustAnchors } from "../attestation/trust.ts";
import { type VerifiedQuote, verifyQuote } from "../attestation/verify.ts";
import type { AgentFacts, CollateralCoverage, PendingRegistration } from "../machines/agent-session.ts";
import { AttestationError, RegistrationError } from "../spec/errors.ts";
import { datacenterSchema } from "../spec/protocol.ts";
import type { NonceBook } from "./nonce-book.ts";
import type { TrustedMeasurements } from "./trusted-measurements.ts";

export const DEFAULT_NODE_SIZES = ["tiny", "standard", "llm"] as const;

/** The agent now holding a vm_name, as the drift check needs it. */
export interface VmNameHolder extends Pick<AgentFacts, "mrtd" | "node_size" | "datacenter"> {
  agentId: string;
  /** True while the holder heartbeats within stale_after_ms. */
  live: boolean;
}

export interface RegistrationPolicy {
  trust: TrustAnchors;
  measurement: MeasurementPolicy;
  /** When set, quotes from platforms it covers must pass collateral checks and get a TCB status. */
  collateral?: CollateralSource;
  /** Admin-approved measurements, accepted alongside the policy's allowlists; records refused ones. */
  trusted?: TrustedMeasurements;
  nodeSizes: ReadonlySet<string>;
  holderOf(vmName: string): VmNameHolder | undefined;
  /**
   * Checks and consumes a launch order's bootstrap token (capacity), last, once everything else passed: a
   * refused registration never burns a token. Agents without one (direct agents) skip it.
   */
  consumeBootstrap?(
    token: string,
    agent: { agent_id: string; datacenter: string; node_size: string },
    at: number,
  ): Promise<void>;
}

/** Gate: the nonce was issued to this connection, is fresh and unused, and the agent holds its key. */
export function gateRegister(
  nonces: NonceBook,
  connId: number,
  body: { nonce: Uint8Array; agent_pubkey: Uint8Array; pop: Uint8Array },
  now: number,
): void {
  const verdict = nonces.consume(connId, body.nonce, now);
  if (verdict !== "ok") throw new AttestationError(verdict);
  if (!verifyPop(body.agent_pubkey, body.nonce, body.pop)) throw new AttestationError("EE-ATT-POP-INVALID");
}

export async function verifyRegistration(
  policy: RegistrationPolicy,
  agentId: string,
  reg: PendingRegistration,
): Promise<AgentFacts> {
  const { body } = reg;
  if (!policy.nodeSizes.has(body.node_size)) {
    throw new RegistrationError(
      "EE-REG-NODE-SIZE",
      `node_size "${body.node_size}" is not one of the configured sizes`,
      {
        allowed: [...policy.nodeSizes],
      },
    );
  }
  if (!datacenterSchema.safeParse(body.datacenter).success) {
    throw new RegistrationError(
      "EE-REG-DATACENTER",
      `datacenter "${body.datacenter}" is not of the form provider:zone`,
    );
  }
  const { quote, verdict, coverage } = await verifyBoundQuote(policy, {
    quote: body.quote,
    purpose: "register",
    nonce: reg.nonce,
    pubkey: body.agent_pubkey,
    nodeSize: body.node_size,
    at: reg.at,
    onRefused: (seen, finding) => {
      if (finding.code === "EE-ATT-MRTD-NOT-ALLOWED" || finding.code === "EE-ATT-RTMR-NOT-ALLOWED") {
        policy.trusted?.recordBaseline({
          node_size: body.node_size,
          mrtd: seen.mrtd,
          rtmr: seen.rtmr,
          vm_name: body.vm_name,
          agent_id: agentId,
          at: reg.at,
        });
      }
    },
  });

  const facts: AgentFacts = {
    vm_name: body.vm_name,
    node_size: body.node_size,
    datacenter: body.datacenter,
    mrtd: quote.mrtd,
    rtmr: quote.rtmr,
    trust_root: quote.root,
    agent_pubkey: Buffer.from(body.agent_pubkey).toString("hex"),
    agent_version: body.agent_version ?? null,
    policy_warnings: verdict.findings.map((f) => `${f.code}: ${describeFinding(f)}`),
    ...(coverage ? { collateral: coverage } : {}),
  };
  checkDrift(policy.holderOf(body.vm_name), agentId, facts);
  if (body.bootstrap_token !== undefined) {
    if (!policy.consumeBootstrap) throw new RegistrationError("EE-REG-BOOTSTRAP-UNKNOWN");
    await policy.consumeBootstrap(
      body.bootstrap_token,
      { agent_id: agentId, datacenter: body.datacenter, node_size: body.node_size },
      reg.at,
    );
  }
  return facts;
}

/**
 * Verifies a quote that must bind `nonce` and `pubkey` for `purpose`, then applies the measurement policy:
 * the part registration and re-attestation share. Throws the first refusing finding (after telling onRefused);
 * returns warnings and, when the CP has collateral, what it says of the platform.
 */
export async function verifyBoundQuote(
  policy: Pick<RegistrationPolicy, "trust" | "measurement" | "collateral" | "trusted">,
  q: {
    quote: Uint8Array;
    purpose: BindingPurpose;
    nonce: Uint8Array;
    pubkey: Uint8Array;
    /** For purpose `deployed`: the 32-byte compose hash the quote must also bind. */
    composeHash?: Uint8Array;
    nodeSize: string;
    at: number;
    onRefused?: (seen: VerifiedQuote, finding: Finding) => void;
  },
): Promise<{ quote: VerifiedQuote; verdict: PolicyVerdict; coverage?: CollateralCoverage }> {
  const at = new Date(q.at);
  const quote = verifyQuote(q.quote, { trust: policy.trust, at });
  const collateral = await policy.collateral?.forQuote(collateralQueryOf(quote), at);
  const tcb = collateral ? evaluateCollateral(q.quote, quote, collateral, at) : undefined;
  if (tcb) requireCollateral(tcb);
  if (!reportDataMatches(quote.reportData, reportDataFor(q.purpose, q.nonce, q.pubkey, q.composeHash))) {
    throw new AttestationError("EE-ATT-REPORTDATA-MISMATCH");
  }
  const verdict = evaluatePolicy(
    policy.measurement,
    {
      node_size: q.nodeSize,
      mrtd: quote.mrtd,
      rtmr: quote.rtmr,
      td_attributes: quote.td_attributes,
      ...(tcb ? { tcb_status: tcb.tcb_status, advisory_ids: tcb.advisory_ids } : {}),
    },
    policy.trusted?.list(),
  );
  const refusal = verdict.findings.find((f) => f.mode === "strict");
  if (refusal) {
    q.onRefused?.(quote, refusal);
    throw new AttestationError(refusal.code, describeFinding(refusal), { findings: verdict.findings });
  }
  if (!policy.collateral) return { quote, verdict };
  return { quote, verdict, coverage: coverageOf(quote.pck_leaf.fmspc, tcb) };
}

function coverageOf(fmspc: string | null, tcb: CollateralResult | undefined): CollateralCoverage {
  if (!tcb) {
    const reason = `the CP's collateral does not cover platform FMSPC ${fmspc ?? "(none)"}: TCB status unknown`;
    return { fmspc, tcb_status: null, advisory_ids: [], reason };
  }
  return { fmspc, tcb_status: tcb.tcb_status, advisory_ids: tcb.advisory_ids, reason: null };
}

function checkDrift(holder: VmNameHolder | undefined, agentId: string, facts: AgentFacts): void {
  if (!holder?.live) return;
  const drifted = (["mrtd", "node_size", "datacenter"] as const).filter((k) => holder[k] !== facts[k]);
  if (drifted.length > 0) {
    throw new RegistrationError(
      "EE-REG-DRIFT",
      `vm_name "${facts.vm_name}" is live with a different ${drifted.join(", ")}`,
      {
        vm_name: facts.vm_name,
        fields: Object.fromEntries(drifted.map((k) => [k, { live: holder[k], seen: facts[k] }])),
      },
    );
  }
  if (holder.agentId !== agentId) {
    throw new RegistrationError(
      "EE-REG-DUPLICATE-VM-NAME",
      `vm_name "${facts.vm_name}" is held by live agent ${holder.agentId}`,
    );
  }
}
