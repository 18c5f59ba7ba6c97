// Placement: which agent takes a deployment, decided from the agent read model alone (no I/O, no actors), so it
// is deterministic and explains itself: every agent considered gets its reason codes (EE-PLACE-*), and the
// first eligible agent in agent_id order is chosen. The same function answers preflight and real deploys.
import { LIVE_STATES } from "../machines/agent-session.ts";
import type { AgentRecord } from "./agent-index.ts";

export interface PlacementRequest {
  node_size?: string;
  datacenter?: string;
  agent_id?: string;
}

export type PlacementReason =
  | "EE-PLACE-NOT-REQUESTED"
  | "EE-PLACE-NODE-SIZE"
  | "EE-PLACE-DATACENTER"
  | "EE-PLACE-STALE"
  | "EE-PLACE-NOT-ATTESTED"
  | "EE-PLACE-BUSY";

export interface Candidate {
  agent_id: string;
  vm_name: string | null;
  node_size: string | null;
  datacenter: string | null;
  state: string;
  eligible: boolean;
  reasons: PlacementReason[];
}

export interface Placement {
  chosen: Candidate | null;
  considered: number;
  /** Every agent considered, eligible ones first, each in agent_id order; at most CANDIDATES_LISTED. */
  candidates: Candidate[];
  /** How many agents each reason excluded (an agent can count under several). */
  counts: Partial<Record<PlacementReason, number>>;
}

export interface PlacementOptions {
  now: number;
  /** An attestation older than this no longer counts (the re-attestation interval plus its slack). */
  attestationMaxAgeMs: number;
  /** An update in place on this agent: its busy slot is the replaced deployment's, so it is not EE-PLACE-BUSY. */
  replacingOn?: string;
}

/** Candidates listed in an explained placement; counts cover all. */
const CANDIDATES_LISTED = 100;

/** The reasons an agent cannot take the request, in a fixed order; empty means eligible. */
function reasonsFor(req: PlacementRequest, a: AgentRecord, o: PlacementOptions): PlacementReason[] {
  const out: PlacementReason[] = [];
  if (req.agent_id !== undefined && a.agent_id !== req.agent_id) out.push("EE-PLACE-NOT-REQUESTED");
  if (req.node_size !== undefined && a.node_size !== req.node_size) out.push("EE-PLACE-NODE-SIZE");
  if (req.datacenter !== undefined && a.datacenter !== req.datacenter) out.push("EE-PLACE-DATACENTER");
  if (!LIVE_STATES.has(a.state) || !a.connected) out.push("EE-PLACE-STALE");
  if (
    a.attestation_status !== "ok" ||
    a.attested_at === null ||
    o.now - a.attested_at > o.attestationMaxAgeMs
  )
    out.push("EE-PLACE-NOT-ATTESTED");
  if (
    a.agent_id !== o.replacingOn &&
    (a.state === "deploying" || a.state === "healthy" || a.deployment_id !== null)
  )
    out.push("EE-PLACE-BUSY");
  return out;
}

/**
 * Chooses the eligible agent with the lowest agent_id. With `explain`, also lists the candidates (for preflight
 * and for the 409 a deploy gets when nothing fits); without it, one pass and no candidate built per agent, which is
 * what a successful deploy at 10k agents needs.
 */
export function place(
  req: PlacementRequest,
  agents: Iterable<AgentRecord>,
  o: PlacementOptions & { explain?: boolean },
): Placement {
  let chosen: AgentRecord | null = null;
  const listed: Candidate[] = [];
  const counts: Placement["counts"] = {};
  let considered = 0;
  for (const a of agents) {
    considered++;
    const reasons = reasonsFor(req, a, o);
    for (const r of reasons) counts[r] = (counts[r] ?? 0) + 1;
    if (reasons.length === 0 && (chosen === null || a.agent_id < chosen.agent_id)) chosen = a;
    if (o.explain) listed.push(candidate(a, reasons));
  }
  // Eligible first, then by agent_id: the order an operator reads the diagnosis in.
  listed.sort((x, y) =>
    x.eligible !== y.eligible
      ? x.eligible
        ? -1
        : 1
      : x.agent_id < y.agent_id
        ? -1
        : x.agent_id > y.agent_id
          ? 1
          : 0,
  );
  return {
    chosen: chosen && candidate(chosen, []),
    considered,
    candidates: listed.slice(0, CANDIDATES_LISTED),
    counts,
  };
}

function candidate(a: AgentRecord, reasons: PlacementReason[]): Candidate {
  return {
    agent_id: a.agent_id,
    vm_name: a.vm_name,
    node_size: a.node_size,
    datacenter: a.datacenter,
    state: a.state,
    eligible: reasons.length === 0,
    reasons,
  };
}
