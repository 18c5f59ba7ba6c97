// A read-model record of a registered, attested, idle agent for the pure tests (placement, capacity): every field
// set, times at `at`, overridable per test.
import type { AgentRecord } from "../../actors/agent-index.ts";

export function agentRecord(agent_id: string, at: number, over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    agent_id,
    vm_name: null,
    node_size: "s",
    datacenter: "dc1",
    state: "registered",
    connected: true,
    registered_at: at,
    last_heartbeat_at: at,
    heartbeat_seq: 1,
    deployment_id: null,
    app: null,
    mrtd: null,
    trust_root: null,
    collateral: null,
    attestation_status: "ok",
    attested_at: at,
    reason: null,
    restored: false,
    rehydrated: false,
    ...over,
  };
}
