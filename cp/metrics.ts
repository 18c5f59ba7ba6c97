// The CP's own /metrics families: agents by state, live deployments, pending relayed requests and connections,
// refusals, and the process. Read when scraped, from the actors' read models; nothing is counted twice.
// Imports actors/ (read models) and the REST metric type.
import type { AgentIndex } from "../actors/agent-index.ts";
import type { AgentRequests } from "../actors/agent-requests.ts";
import type { Deployments } from "../actors/deployments.ts";
import type { RefusalAudit } from "../actors/refusal-audit.ts";
import type { MetricFamily } from "../transport/rest/metrics.ts";

export function cpMetrics(o: {
  index: AgentIndex;
  deployments: Deployments;
  requests: AgentRequests;
  channel: { readonly pendingCount: number };
  refusals: RefusalAudit;
  startedAt: number;
}): MetricFamily[] {
  const byState = new Map<string, number>();
  let connected = 0;
  let attestationFailed = 0;
  for (const r of o.index.values()) {
    byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    if (r.connected) connected++;
    if (r.attestation_status === "failed") attestationFailed++;
  }
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return [
    {
      name: "ee_agents",
      help: "Agents known to this control plane, by session state.",
      type: "gauge",
      samples: [...byState].map(([state, value]) => ({ labels: { state }, value })),
    },
    {
      name: "ee_agents_connected",
      help: "Agents with an open WebSocket.",
      type: "gauge",
      samples: [{ value: connected }],
    },
    {
      name: "ee_agents_attestation_failed",
      help: "Agents whose latest re-attestation failed (out of placement).",
      type: "gauge",
      samples: [{ value: attestationFailed }],
    },
    {
      name: "ee_deployments_live",
      help: "Deployments with a live actor, by status.",
      type: "gauge",
      samples: Object.entries(o.deployments.liveByStatus()).map(([status, value]) => ({
        labels: { status },
        value,
      })),
    },
    {
      name: "ee_agent_requests_pending",
      help: "Relayed requests (logs, stats, snapshot) waiting for an agent.",
      type: "gauge",
      samples: [{ value: o.requests.size }],
    },
    {
      name: "ee_agent_connections_pending",
      help: "Agent WebSocket connections that have not registered yet (bounded by the handshake caps).",
      type: "gauge",
      samples: [{ value: o.channel.pendingCount }],
    },
    {
      name: "ee_agent_connections_refused_total",
      help: "Agent connections refused (upgrade caps, handshake timeouts, bad frames, gate failures), by reason.",
      type: "counter",
      samples: [...o.refusals.totals()].map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: "process_resident_memory_bytes",
      help: "Resident memory.",
      type: "gauge",
      samples: [{ value: mem.rss }],
    },
    {
      name: "process_cpu_seconds_total",
      help: "User and system CPU time.",
      type: "counter",
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    {
      name: "process_start_time_seconds",
      help: "When the control plane started.",
      type: "gauge",
      samples: [{ value: Math.floor(o.startedAt / 1000) }],
    },
  ];
}
