// What the REST layer may see of the CP runtime: a narrow read/command port, implemented by
// actors/control-plane.ts. Keeps Koa handlers free of actor internals and easy to read in one place.
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
  /** The live actor's snapshot: state value and context, for operators and the Stately inspector. */
  machine(agentId: string): { value: unknown; context: unknown } | undefined;
  onTransition(listener: (t: Transition) => void): () => void;
  events(opts: EventQuery): EventRecord[];
  /** Every batch of events written from now on, once committed; returns the unsubscribe function. */
  followEvents(listener: (records: readonly EventRecord[]) => void): () => void;
  /** Metric families for `GET /metrics`. */
  metrics(): MetricFamily[];
}
