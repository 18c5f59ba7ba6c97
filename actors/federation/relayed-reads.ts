// The master's agent reads: a direct agent's answered by the master's own reads, a dc's agent's relayed to its dc
// (relay-client.ts). Who may read which agent is decided before this, on the master, exactly as for a direct
// agent (transport/rest's agentVisible). Imports transport/ types and this folder.
import type { AgentReadsPort } from "../../contract/agents.ts";
import type { RelayClient } from "./relay-client.ts";

/** An agent's live machine as plain JSON ({value, context}). */
export type MachineJson = Record<string, unknown>;

export interface RelayedReads {
  reads: AgentReadsPort;
  machine(agentId: string): MachineJson | undefined | Promise<MachineJson | undefined>;
}

export function relayedReads(o: {
  local: AgentReadsPort;
  localMachine: (agentId: string) => MachineJson | undefined;
  /** The dc holding the agent, or undefined for a direct agent (or one nobody knows: the local path's 404). */
  dcOf: (agentId: string) => string | undefined;
  client: RelayClient;
}): RelayedReads {
  const { local, dcOf, client } = o;
  return {
    reads: {
      request(agentId, type) {
        const dc = dcOf(agentId);
        return dc === undefined ? local.request(agentId, type) : client.request(dc, agentId, type);
      },
      logs(agentId, body, onChunk, signal) {
        const dc = dcOf(agentId);
        return dc === undefined
          ? local.logs(agentId, body, onChunk, signal)
          : client.logs(dc, agentId, body, onChunk, signal);
      },
    },
    machine(agentId) {
      const dc = dcOf(agentId);
      return dc === undefined ? o.localMachine(agentId) : client.request(dc, agentId, "machine");
    },
  };
}
