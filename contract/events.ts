// The contract for the event log as the REST layer and eectl read it: one audit/transition record and the query
// that pages them (actors/store/event-log.ts keeps them). Types only; imports nothing.

export interface EventRecord {
  id: number;
  at: number;
  kind: string;
  agent_id: string | null;
  data: Record<string, unknown>;
}

export interface EventQuery {
  after?: number;
  limit?: number;
  /** The last N matching events instead of the first `limit` after `after`. */
  tail?: number;
  agentId?: string;
  kind?: string;
}
