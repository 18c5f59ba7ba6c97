// The agent read model: one flat record per agent, updated from actor snapshots, so listings and placement
// read a Map instead of walking machine internals. Also the vm_name index for drift checks and the source of
// state-transition events (the audit trail and `eectl agents watch`).
import { EventEmitter } from "node:events";
import type { AgentRecord, Transition } from "../contract/agents.ts";
import type { SessionContext, SessionState } from "../machines/agent-session.ts";
import type { VmNameHolder } from "./registration.ts";

export type { AgentRecord, Transition } from "../contract/agents.ts";

export class AgentIndex {
  readonly #records = new Map<string, AgentRecord>();
  readonly #byVmName = new Map<string, string>();
  readonly #events = new EventEmitter();
  readonly #staleAfterMs: number;

  constructor(opts: { staleAfterMs: number }) {
    this.#staleAfterMs = opts.staleAfterMs;
    // Every `agents watch` client is a listener; the default cap of 10 is a leak warning, not a limit we want.
    this.#events.setMaxListeners(0);
  }

  get size(): number {
    return this.#records.size;
  }

  get(agentId: string): AgentRecord | undefined {
    return this.#records.get(agentId);
  }

  values(): IterableIterator<AgentRecord> {
    return this.#records.values();
  }

  /** Applies an actor snapshot. Returns the transition when the top-level state changed. */
  update(state: SessionState, ctx: SessionContext, at: number): Transition | null {
    let rec = this.#records.get(ctx.agentId);
    const from = rec?.state ?? null;
    if (!rec) {
      rec = { agent_id: ctx.agentId, last_heartbeat_at: null, heartbeat_seq: 0 } as AgentRecord;
      this.#records.set(ctx.agentId, rec);
    }
    rec.vm_name = ctx.facts?.vm_name ?? ctx.pending?.body.vm_name ?? rec.vm_name ?? null;
    rec.node_size = ctx.facts?.node_size ?? ctx.pending?.body.node_size ?? rec.node_size ?? null;
    rec.datacenter = ctx.facts?.datacenter ?? ctx.pending?.body.datacenter ?? rec.datacenter ?? null;
    rec.state = state;
    rec.connected = ctx.connId !== null;
    rec.registered_at = ctx.registeredAt;
    rec.deployment_id = ctx.deploymentId;
    rec.app = ctx.app;
    rec.mrtd = ctx.facts?.mrtd ?? null;
    rec.trust_root = ctx.facts?.trust_root ?? null;
    rec.collateral = ctx.facts?.collateral ?? null;
    rec.attestation_status = ctx.attestation.status;
    rec.attested_at = ctx.attestation.at;
    rec.reason = ctx.reason;
    rec.restored = ctx.restored;
    rec.rehydrated = ctx.rehydrated;
    if (ctx.facts && this.#byVmName.get(ctx.facts.vm_name) !== ctx.agentId && state !== "challenged") {
      this.#byVmName.set(ctx.facts.vm_name, ctx.agentId);
    }
    if (from === state) return null;
    const t: Transition = {
      agent_id: ctx.agentId,
      vm_name: rec.vm_name,
      from,
      to: state,
      at,
      reason: ctx.reason,
    };
    this.#events.emit("transition", t);
    return t;
  }

  /** The agent was heard from (a heartbeat or a registration): only liveness changes, no transition is emitted. */
  heartbeat(agentId: string, at: number, seq: number): void {
    const rec = this.#records.get(agentId);
    if (!rec) return;
    rec.last_heartbeat_at = at;
    rec.heartbeat_seq = seq;
  }

  remove(agentId: string): void {
    const rec = this.#records.get(agentId);
    if (!rec) return;
    this.#records.delete(agentId);
    if (rec.vm_name && this.#byVmName.get(rec.vm_name) === agentId) this.#byVmName.delete(rec.vm_name);
  }

  agentIdForVmName(vmName: string): string | undefined {
    return this.#byVmName.get(vmName);
  }

  /** The agent holding vmName, with the facts drift is judged on; live while it heartbeats within stale_after. */
  holderOf(vmName: string, now: number): VmNameHolder | undefined {
    const agentId = this.#byVmName.get(vmName);
    const rec = agentId === undefined ? undefined : this.#records.get(agentId);
    if (!rec?.mrtd || !rec.node_size || !rec.datacenter) return undefined;
    const live = rec.last_heartbeat_at !== null && now - rec.last_heartbeat_at < this.#staleAfterMs;
    return {
      agentId: rec.agent_id,
      mrtd: rec.mrtd,
      node_size: rec.node_size,
      datacenter: rec.datacenter,
      live,
    };
  }

  onTransition(listener: (t: Transition) => void): () => void {
    this.#events.on("transition", listener);
    return () => this.#events.off("transition", listener);
  }
}
