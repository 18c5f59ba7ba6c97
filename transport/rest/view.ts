// What the REST layer may see of the CP runtime: a narrow read/command port, implemented by
// cp/control-plane.ts. Keeps Koa handlers free of actor internals and easy to read in one place.
import type { AgentRecord, Transition } from "../../contract/agents.ts";
import type { EventQuery, EventRecord } from "../../contract/events.ts";
import type { MetricFamily } from "./metrics.ts";

export type Readiness = {
  ready: boolean;
  reason: string;
} & Record<string, unknown>;

export interface CpView {
  readiness(): Readiness;
  /** With `dc_id` on a federated CP (a master lists its dcs' agents too). */
  agents(): Iterable<AgentRecord & { dc_id?: string }>;
  agent(agentId: string): AgentRecord | undefined;
  /** Drained (actors/drains.ts): here, or on a dc by the federation master. */
  drained(agentId: string): boolean;
  /**
   * Drains or lifts this CP's drain of an agent it knows (a master: a dc's agent too). Idempotent; throws
   * EE-NOT-FOUND for an unknown agent. Returns the agent's record.
   */
  setDrained(agentId: string, drained: boolean, by: string): AgentRecord & { dc_id?: string };
  /**
   * The live actor's snapshot: state value and context, for operators and the Stately inspector. A master
   * fetches a dc's agent's from that dc (a promise, failing EE-FED-UNAVAILABLE when the dc does not answer).
   */
  machine(
    agentId: string,
  ): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
  onTransition(listener: (t: Transition) => void): () => void;
  events(opts: EventQuery): EventRecord[];
  /** Every batch of events written from now on, once committed; returns the unsubscribe function. */
  followEvents(listener: (records: readonly EventRecord[]) => void): () => void;
  /** Metric families for `GET /metrics`. */
  metrics(): MetricFamily[];
}
