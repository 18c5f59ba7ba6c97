// The body of the agent's `GET /api/health`: who the agent is, how its link to the CP stands, and which quote
// provider it runs (so nobody mistakes a dev agent for a real TD). Pure: imports types only.
import type { AgentConnectionState, ConnectionView } from "../machines/agent-connection.ts";

/** What does not change while the agent runs. */
export interface HealthFacts {
  agentId: string;
  vmName: string;
  nodeSize: string;
  datacenter: string;
  attestationProvider: string;
  version: string;
  /** Agent start (ms epoch), for uptime. */
  startedAt: number;
}

export interface AgentHealth {
  /** The agent process answers; the CP link has its own fields. */
  status: "ok";
  agent_id: string;
  vm_name: string;
  node_size: string;
  datacenter: string;
  connection: AgentConnectionState;
  registered: boolean;
  /** The last stable error code of the CP link (e.g. the CP's EE-ATT-… refusal), when there is one. */
  last_error?: string;
  attestation_provider: string;
  version: string;
  uptime_s: number;
  /** Only with `?attest=true&nonce=…`: a fresh quote binding the caller's nonce and the agent key. */
  attestation?: HealthAttestation;
}

/**
 * A quote over reportDataFor("health", nonce, agent_pubkey) — or, while a workload runs,
 * reportDataFor("deployed", nonce, agent_pubkey, workload_hash), so the caller also learns which workload
 * (compose and image digests) the TD runs. Hex is lowercase, the quote is base64.
 */
export interface HealthAttestation {
  provider: string;
  purpose: "health" | "deployed";
  /** With purpose deployed: the running workload's compose hash. */
  compose_hash?: string;
  /** With purpose deployed: what the quote binds, workloadHash(compose_hash, images) (compose/images.ts). */
  workload_hash?: string;
  nonce: string;
  agent_pubkey: string;
  report_data: string;
  quote: string;
}

export function buildHealth(facts: HealthFacts, link: ConnectionView, now: number): AgentHealth {
  const health: AgentHealth = {
    status: "ok",
    agent_id: facts.agentId,
    vm_name: facts.vmName,
    node_size: facts.nodeSize,
    datacenter: facts.datacenter,
    connection: link.state,
    registered: link.registered,
    attestation_provider: facts.attestationProvider,
    version: facts.version,
    uptime_s: Math.max(0, Math.floor((now - facts.startedAt) / 1000)),
  };
  if (link.lastError !== null) health.last_error = link.lastError;
  return health;
}
