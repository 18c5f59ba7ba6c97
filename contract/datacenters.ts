// The contract for a federation master's datacenters as the REST layer and eectl see them: one dc's sync state
// (actors/federation/federated-view.ts computes it) and the port GET /api/v2/datacenters reads. Types only.

export interface DatacenterView {
  dc_id: string;
  status: "healthy" | "degraded";
  /** Seconds between the dc's newest state the master holds and now. */
  lag_s: number | null;
  last_seq: number;
  outbox_seq: number;
  applied: number;
  duplicates_skipped: number;
  last_event_at: number | null;
  agents: { total: number; connected: number; by_state: Record<string, number> };
}

export interface DatacentersPort {
  list(): (DatacenterView & { pending: number | null })[];
}
