// The contract for agents as the REST layer and eectl see them: the read model's record (actors/agent-index.ts
// keeps one per agent), its state transitions, and the port that relays reads to an agent over its WebSocket
// (actors/agent-requests.ts). Types only; may import spec/ and machines/ (the state unions) for types.
import type { CollateralCoverage, SessionState } from "../machines/agent-session.ts";
import type { MessageBody } from "../spec/protocol.ts";

export interface AgentRecord {
  agent_id: string;
  vm_name: string | null;
  node_size: string | null;
  datacenter: string | null;
  state: SessionState;
  connected: boolean;
  registered_at: number | null;
  /**
   * Liveness: the one place that holds when the agent was last heard from and its latest heartbeat seq (the
   * registration counts as one). Written by AgentIndex.heartbeat only, from the supervisor's fast path and the
   * session machine's noteLiveness effect; actor snapshots never touch it.
   */
  last_heartbeat_at: number | null;
  heartbeat_seq: number;
  deployment_id: string | null;
  app: string | null;
  mrtd: string | null;
  trust_root: string | null;
  /** null: the CP has no collateral, or the agent is not registered. */
  collateral: CollateralCoverage | null;
  attestation_status: "ok" | "failed";
  attested_at: number | null;
  reason: string | null;
  restored: boolean;
  rehydrated: boolean;
}

export interface Transition {
  agent_id: string;
  vm_name: string | null;
  from: SessionState | null;
  to: SessionState;
  at: number;
  reason: string | null;
}

/** Lines of a relayed log chunk, as the agent sends them. */
export type LogLines = MessageBody<"log_chunk">["lines"];

/** Reads the CP relays to an agent over its WebSocket (actors/agent-requests.ts). */
export interface AgentReadsPort {
  /** Throws NotFoundError for an unknown agent. */
  request(agentId: string, type: "stats" | "snapshot"): Promise<Record<string, unknown>>;
  logs(
    agentId: string,
    body: MessageBody<"logs">,
    onChunk: (lines: LogLines) => void,
    signal?: AbortSignal,
  ): Promise<void>;
}
