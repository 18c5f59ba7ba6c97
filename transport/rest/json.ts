// JSON shapes of the REST API: records become the contract's snake_case objects with ISO times, and binary
// values (nonces, quotes) become lowercase hex so machine contexts can be shown as they are.
import type { AgentRecord, Transition } from "../../actors/agent-index.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function agentJson(r: AgentRecord) {
  return {
    agent_id: r.agent_id,
    vm_name: r.vm_name,
    node_size: r.node_size,
    datacenter: r.datacenter,
    state: r.state,
    connected: r.connected,
    registered_at: iso(r.registered_at),
    last_heartbeat_at: iso(r.last_heartbeat_at),
    deployment_id: r.deployment_id,
    app: r.app,
    attestation: {
      status: r.attestation_status,
      attested_at: iso(r.attested_at),
      mrtd: r.mrtd,
      trust_root: r.trust_root,
    },
    reason: r.reason,
    rehydrated: r.rehydrated,
    recovered: r.restored,
  };
}

export function transitionJson(t: Transition) {
  return { ...t, at: iso(t.at) };
}

/** A JSON.stringify replacer that renders bytes as hex and bounds what it shows of large blobs. */
export function bytesAsHex(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array)
    return value.length > 256 ? `<${value.length} bytes>` : Buffer.from(value).toString("hex");
  if (
    value &&
    typeof value === "object" &&
    (value as { type?: unknown }).type === "Buffer" &&
    Array.isArray((value as { data?: unknown }).data)
  ) {
    const data = (value as { data: number[] }).data;
    return data.length > 256 ? `<${data.length} bytes>` : Buffer.from(data).toString("hex");
  }
  return value;
}

export function toPlainJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, bytesAsHex));
}
