// Placement: which agent takes a deployment, decided from the agent read model alone (no I/O, no actors), so it
// is deterministic and explains itself: every agent considered gets its reason codes (EE-PLACE-*). Among the
// eligible agents the least loaded wins, and ties go to the highest rendezvous score HMAC-SHA256(CP secret,
// deployment_id, agent_id): nothing an agent chooses (its key, hence its agent_id) steers where deployments go,
// and the spread is even. The same function answers preflight and real deploys.
import { createHmac } from "node:crypto";
import type { Candidate, Placement, PlacementReason, PlacementRequest } from "../contract/deployments.ts";
import { LIVE_STATES } from "../machines/agent-session.ts";
import type { AgentRecord } from "./agent-index.ts";

export interface PlacementOptions {
  now: number;
  /** An attestation older than this no longer counts (the re-attestation interval plus its slack). */
  attestationMaxAgeMs: number;
  /** An update in place on this agent: its busy slot is the replaced deployment's, so it is not EE-PLACE-BUSY. */
  replacingOn?: string;
  /** The CP's placement secret (bootstrap state, see bootstrap-secret.ts): keys the tie-break, never derived here. */
  secret: Uint8Array;
  /** The deployment being placed: each deployment ranks the agents afresh. */
  deploymentId: string;
  /** The tenant an agent is dedicated to (its enrollment token said so), if any. */
  dedicatedTo?: (agentId: string) => string | undefined;
  /** An admin drained the agent (actors/drains.ts): it keeps what it runs and takes nothing new. */
  drained?: (agentId: string) => boolean;
}

/** Candidates listed in an explained placement; counts cover all. */
const CANDIDATES_LISTED = 100;

/**
 * Warm: the agent could take a new deployment now (live, attested, undeployed). The capacity reconciler counts
 * agents by this, so "warm" and "placeable" never disagree.
 */
export function isWarm(
  a: AgentRecord,
  o: Pick<PlacementOptions, "now" | "attestationMaxAgeMs" | "drained">,
): boolean {
  return reasonsFor({}, a, o).length === 0;
}

/** The reasons an agent cannot take the request, in a fixed order; empty means eligible. */
function reasonsFor(
  req: PlacementRequest,
  a: AgentRecord,
  o: Pick<PlacementOptions, "now" | "attestationMaxAgeMs" | "replacingOn" | "dedicatedTo" | "drained">,
): PlacementReason[] {
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
  const dedicated = req.tenant === undefined ? undefined : o.dedicatedTo?.(a.agent_id);
  if (dedicated !== undefined && dedicated !== req.tenant) out.push("EE-PLACE-DEDICATED");
  if (o.drained?.(a.agent_id)) out.push("EE-PLACE-AGENT-DRAINED");
  return out;
}

/**
 * What the read model knows of an agent's load: the deployment it runs (one, or two during an update in place,
 * which is only ever placed on the replaced deployment's own agent). Every other eligible agent is idle, so
 * today this separates only the replacing agent; it is the first key so that a richer load signal slots in here.
 */
function loadOf(a: AgentRecord): number {
  return a.state === "deploying" || a.state === "healthy" || a.deployment_id !== null ? 1 : 0;
}

/** The rendezvous score: unpredictable without the secret, so an agent cannot grind an id that wins. */
function scoreOf(o: PlacementOptions, agentId: string): Buffer {
  // NUL-separated: neither id contains one, so no two (deployment, agent) pairs hash the same input.
  return createHmac("sha256", o.secret).update(`${o.deploymentId}\0${agentId}`).digest();
}

/**
 * Chooses the least-loaded eligible agent, ties broken by the highest rendezvous score. With `explain`, also lists the candidates (for preflight
 * and for the 409 a deploy gets when nothing fits); without it, one pass and no candidate built per agent, which is
 * what a successful deploy at 10k agents needs.
 */
export function place(
  req: PlacementRequest,
  agents: Iterable<AgentRecord>,
  o: PlacementOptions & { explain?: boolean },
): Placement {
  let chosen: { a: AgentRecord; load: number; score: Buffer } | null = null;
  const listed: Candidate[] = [];
  const counts: Placement["counts"] = {};
  let considered = 0;
  for (const a of agents) {
    considered++;
    const reasons = reasonsFor(req, a, o);
    for (const r of reasons) counts[r] = (counts[r] ?? 0) + 1;
    if (reasons.length === 0) {
      const load = loadOf(a);
      if (chosen === null || load <= chosen.load) {
        const score = scoreOf(o, a.agent_id);
        if (chosen === null || load < chosen.load || score.compare(chosen.score) > 0)
          chosen = { a, load, score };
      }
    }
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
    chosen: chosen && candidate(chosen.a, []),
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
