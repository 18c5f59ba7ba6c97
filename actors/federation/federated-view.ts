// The master's federated view: every dc's agents and deployments as the dc last reported them, and each dc's
// sync position. Pure (no I/O, no clock of its own): master-link.ts feeds it validated messages from each dc's
// mirror with their stream sequence, and the REST side reads it. Applying is idempotent: a message at or below
// the dc's applied stream sequence, or an event at or below its applied outbox sequence (a republish after a
// dc restart), changes nothing, so a replayed mirror or a redelivery never doubles anything. On a master the
// view holds its direct agents too, as dc `master` (mixed mode: one aggregation path).
// Imports actors/ types only.
import type { DatacenterView } from "../../contract/datacenters.ts";
import type { AgentRecord } from "../agent-index.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";
import { COMMAND_REFUSED, type UpMessage } from "./messages.ts";

export type { DatacenterView } from "../../contract/datacenters.ts";

export type FederatedAgent = AgentRecord & { dc_id: string };
export type FederatedDeployment = Omit<DeploymentRow, "compose"> & { dc_id: string };

interface DcState {
  dc_id: string;
  /** Stream sequence of the newest applied message (the mirror keeps the dc's numbering). */
  last_seq: number;
  /** The dc's event id of the newest applied outbox event. */
  outbox_seq: number;
  /** The dc's time of the newest applied message: how current the view of this dc is. */
  last_at: number | null;
  applied: number;
  skipped: number;
  summary: (UpMessage & { type: "health" }) | null;
  agents: Map<string, FederatedAgent>;
}

export class FederatedView {
  /** The master's own dc (mixed mode): an agent it reports is its direct agent, which no other dc re-homes. */
  readonly #own: string | null;
  readonly #dcs = new Map<string, DcState>();
  /** Which dc holds an agent (an agent moving between dcs is re-homed by its newest report). */
  readonly #agentDc = new Map<string, string>();
  readonly #deployments = new Map<string, FederatedDeployment>();

  constructor(o: { own?: string } = {}) {
    this.#own = o.own ?? null;
  }

  /** A dc the master learned of (its hello, or its mirror found at start), before any message. */
  know(dc: string): void {
    if (this.#dcs.has(dc)) return;
    this.#dcs.set(dc, {
      dc_id: dc,
      last_seq: 0,
      outbox_seq: 0,
      last_at: null,
      applied: 0,
      skipped: 0,
      summary: null,
      agents: new Map(),
    });
  }

  dcIds(): string[] {
    return [...this.#dcs.keys()].sort();
  }

  /** The stream sequence to resume this dc's mirror from. */
  resumeSeq(dc: string): number {
    return (this.#dcs.get(dc)?.last_seq ?? 0) + 1;
  }

  /** Applies one message of dc's mirror; false when it was already applied. */
  apply(dc: string, streamSeq: number, msg: UpMessage): boolean {
    this.know(dc);
    const s = this.#dcs.get(dc)!;
    if (streamSeq <= s.last_seq || (msg.type === "event" && msg.seq <= s.outbox_seq)) {
      s.skipped++;
      if (streamSeq > s.last_seq) s.last_seq = streamSeq;
      return false;
    }
    s.last_seq = streamSeq;
    s.applied++;
    s.last_at = Math.max(s.last_at ?? 0, msg.at);
    if (msg.type === "health") {
      s.summary = msg;
      return true;
    }
    s.outbox_seq = msg.seq;
    if (msg.agent_id !== null) this.#applyAgent(s, msg.agent_id, msg.agent);
    if (msg.deployment) this.#deployments.set(msg.deployment.deployment_id, { ...msg.deployment, dc_id: dc });
    if (msg.kind === COMMAND_REFUSED) this.#refused(msg.data, msg.at);
    return true;
  }

  #applyAgent(s: DcState, agentId: string, rec: AgentRecord | null): void {
    if (rec === null) {
      s.agents.delete(agentId);
      if (this.#agentDc.get(agentId) === s.dc_id) this.#agentDc.delete(agentId);
      return;
    }
    const previous = this.#agentDc.get(agentId);
    // A dc cannot shadow a direct agent: the master's own connection is the truth for that id.
    if (previous === this.#own && s.dc_id !== this.#own) return;
    if (previous !== undefined && previous !== s.dc_id) this.#dcs.get(previous)?.agents.delete(agentId);
    s.agents.set(agentId, { ...rec, dc_id: s.dc_id });
    this.#agentDc.set(agentId, s.dc_id);
  }

  #refused(data: Record<string, unknown>, at: number): void {
    const id = typeof data.deployment_id === "string" ? data.deployment_id : null;
    const row = id === null ? undefined : this.#deployments.get(id);
    if (row?.status !== "pending") return;
    row.status = "failed";
    row.code = typeof data.code === "string" ? data.code : "EE-INTERNAL";
    row.message = typeof data.message === "string" ? data.message : null;
    row.updated_at = Math.max(row.updated_at, at);
  }

  /** The master's own record of a deployment it sent to a dc, until the dc reports it. */
  dispatched(row: FederatedDeployment): void {
    if (!this.#deployments.has(row.deployment_id)) this.#deployments.set(row.deployment_id, row);
  }

  agents(): IterableIterator<FederatedAgent> {
    return (function* (dcs: Map<string, DcState>) {
      for (const s of dcs.values()) for (const a of s.agents.values()) yield vouched(s, a);
    })(this.#dcs);
  }

  agent(agentId: string): FederatedAgent | undefined {
    const dc = this.#agentDc.get(agentId);
    const s = dc === undefined ? undefined : this.#dcs.get(dc);
    const a = s?.agents.get(agentId);
    return s && a ? vouched(s, a) : undefined;
  }

  deployment(id: string): FederatedDeployment | undefined {
    return this.#deployments.get(id);
  }

  deployments(): IterableIterator<FederatedDeployment> {
    return this.#deployments.values();
  }

  /** Each dc's sync position; degraded when the newest state from it is older than `degradedAfterMs`. */
  datacenters(now: number, degradedAfterMs: number): DatacenterView[] {
    return this.dcIds().map((dc) => {
      const s = this.#dcs.get(dc)!;
      const lagMs = s.last_at === null ? null : Math.max(0, now - s.last_at);
      const byState: Record<string, number> = {};
      let connected = 0;
      for (const a of s.agents.values()) {
        byState[a.state] = (byState[a.state] ?? 0) + 1;
        if (a.connected) connected++;
      }
      return {
        dc_id: dc,
        status: lagMs !== null && lagMs <= degradedAfterMs ? "healthy" : "degraded",
        lag_s: lagMs === null ? null : Math.round(lagMs / 100) / 10,
        last_seq: s.last_seq,
        outbox_seq: s.outbox_seq,
        applied: s.applied,
        duplicates_skipped: s.skipped,
        last_event_at: s.last_at,
        agents: { total: s.agents.size, connected, by_state: byState },
      };
    });
  }

  isHealthy(dc: string, now: number, degradedAfterMs: number): boolean {
    const at = this.#dcs.get(dc)?.last_at;
    return at != null && now - at <= degradedAfterMs;
  }
}

/** Session states in which an agent is not heartbeating (the dc reports each of them as an event). */
const SILENT = new Set(["stale", "gone", "rejected"]);

/**
 * Heartbeats are not events, so a record's last_heartbeat_at is as of its agent's last event. A dc's health summary
 * vouches for every agent it still holds connected and not stale (it reports staleness as an event): such an agent
 * heartbeated within the dc's stale-after by the summary's time, which is what the master shows.
 */
function vouched(s: DcState, a: FederatedAgent): FederatedAgent {
  const at = s.summary?.at;
  if (at === undefined || !a.connected || SILENT.has(a.state) || (a.last_heartbeat_at ?? 0) >= at) return a;
  return { ...a, last_heartbeat_at: at };
}
