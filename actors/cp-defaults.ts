// The control plane's timing defaults, in a module of their own so `eectl control-plane --help` can show them
// without loading the control plane (cli/commands/ import heavy modules only when they run). Imports nothing.
export const CP_DEFAULTS = {
  staleAfterMs: 15_000,
  forgetAfterMs: 24 * 3600_000,
  challengeTtlMs: 30_000,
  reattestMs: 600_000,
  // The handshake limits (transport/ws-server.ts HandshakeLimits; spec/protocol.md "Handshake limits").
  /** Time from the challenge to a register frame; real quotes take well under a second to make. */
  handshakeMs: 10_000,
  /** Unregistered connections one source (IPv4 address, IPv6 /64) may hold: room for a NATed rack reconnecting. */
  maxPendingPerAddress: 256,
  /** Unregistered connections in all: matches the listen backlog, so a storm of real agents queues, not fails. */
  maxPending: 4096,
  /** Refused connections are audited as one `agent.refused` row per source and reason per interval. */
  refusalAuditMs: 60_000,
};

/**
 * The heartbeat interval asked of agents when only stale_after is set: a third of it, so an agent misses two
 * heartbeats before it counts as stale (5 s for the default 15 s). Agents follow it (spec/protocol.md).
 */
export function heartbeatFor(staleAfterMs: number): number {
  return Math.floor(staleAfterMs / 3);
}

/**
 * How long the CP's HTTP server waits for a request's headers and for a whole request, and how often it checks
 * (Node's own defaults, stated here so they hold whatever Node ships): a client that trickles its headers
 * (slowloris) holds a connection for 60 to 90 s at most, then gets 408 and the socket is closed.
 */
export const REST_TIMEOUTS = {
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  checkIntervalMs: 30_000,
};
