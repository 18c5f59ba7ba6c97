// JSON shapes of the REST API: records become the contract's snake_case objects with ISO 8601 times (every time
// on the REST surface is one), and binary values (nonces, quotes) become lowercase hex so machine contexts and
// event data can be shown as they are.
import type { AgentRecord, Transition } from "../../contract/agents.ts";
import type { EventRecord } from "../../contract/events.ts";
import type { AgentJson, EventJson } from "../../contract/rest-responses.ts";

export function iso(ms: number): string;
export function iso(ms: number | null): string | null;
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A federated CP's agents carry the dc they are behind (`master` for a master's direct agents). */
export function agentJson(r: AgentRecord & { dc_id?: string }, drained: boolean): AgentJson {
  return {
    agent_id: r.agent_id,
    vm_name: r.vm_name,
    node_size: r.node_size,
    datacenter: r.datacenter,
    state: r.state,
    connected: r.connected,
    registered_at: iso(r.registered_at),
    last_heartbeat_at: iso(r.last_heartbeat_at),
    heartbeat_seq: r.heartbeat_seq,
    deployment_id: r.deployment_id,
    app: r.app,
    attestation: {
      status: r.attestation_status,
      attested_at: iso(r.attested_at),
      mrtd: r.mrtd,
      // Set from the verifier's trust anchors, which are only these.
      trust_root: r.trust_root as NonNullable<AgentJson["attestation"]>["trust_root"],
      collateral: r.collateral,
    },
    reason: r.reason,
    rehydrated: r.rehydrated,
    recovered: r.restored,
    drained,
    ...(r.dc_id === undefined ? {} : { dc_id: r.dc_id }),
  };
}

export function transitionJson(t: Transition) {
  return { ...t, at: iso(t.at) };
}

export function eventJson(e: EventRecord): EventJson {
  // The JSON of an object is an object.
  return { ...e, at: iso(e.at), data: toPlainJson(e.data) as Record<string, unknown> };
}

/**
 * Times in machine contexts and event data are ms-epoch numbers under keys named `at`, `…At` or `…_at` (the
 * code's naming rule); shown as ISO 8601 like every other time on the REST surface.
 */
const TIME_KEY = /^at$|[a-z]At$|_at$/;
/** The largest time a Date holds. */
const MAX_DATE_MS = 8.64e15;

/**
 * A JSON.stringify replacer for free-form values (machine contexts, event data): renders bytes as hex, bounding
 * what it shows of large blobs, and times as ISO 8601.
 */
export function plainValue(key: string, value: unknown): unknown {
  // A registration being verified holds the agent's bootstrap token in its context for a few milliseconds.
  if (key === "bootstrap_token" && typeof value === "string") return "[scrubbed]";
  if (typeof value === "number" && TIME_KEY.test(key) && Math.abs(value) <= MAX_DATE_MS) return iso(value);
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
  return JSON.parse(JSON.stringify(value, plainValue));
}
