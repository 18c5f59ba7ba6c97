// The contract for capacity as the REST layer and eectl see them: warm targets, reservations, launch orders,
// node-size presets, a reconcile's outcome, and the port the REST routes call (implemented by
// actors/capacity/capacity.ts). Types, and the order statuses as values (the OpenAPI enum is checked against
// them); imports only the hint port from deployments.ts.
import type { CapacityHintPort } from "./deployments.ts";

export const ORDER_STATUSES = [
  "open",
  "claimed",
  "provisioning",
  "registered",
  "fulfilled",
  "failed",
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface Target {
  datacenter: string;
  node_size: string;
  min_warm: number;
  updated_at: number;
}

export interface Reservation {
  agent_id: string;
  datacenter: string;
  node_size: string;
  created_at: number;
}

export interface Order {
  order_id: string;
  datacenter: string;
  node_size: string;
  status: OrderStatus;
  agent_id: string | null;
  reason: string | null;
  /** Who holds the lease (a launcher principal) while claimed or provisioning. */
  claimed_by: string | null;
  lease_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface SizePreset {
  vcpus: number;
  memory_mb: number;
  gpus: number;
}

export interface TargetStatus {
  datacenter: string;
  node_size: string;
  min_warm: number;
  warm: number;
  in_flight: number;
  /** Orders whose agent registered within the grace window but is not seen by this CP (yet, or again). */
  awaiting: number;
  ordered: number;
}

export interface ReconcileResult {
  targets: TargetStatus[];
  created: string[];
  cancelled: string[];
  expired: string[];
  reserved: string[];
  released: string[];
}

export interface CapacityPort extends CapacityHintPort {
  setTarget(datacenter: string, nodeSize: string, minWarm: number, by: string): Promise<Target>;
  targets(): Promise<Target[]>;
  orders(): Promise<Order[]>;
  reservations(): Promise<Reservation[]>;
  reconcile(): Promise<ReconcileResult>;
  sizes(): ({ node_size: string } & SizePreset)[];
  claim(
    claimer: string,
    datacenter: string,
    nodeSize?: string,
  ): Promise<{ order: Order; bootstrap_token: string } | null>;
  progress(
    claimer: string,
    orderId: string,
    status: "provisioning" | "failed",
    reason?: string,
  ): Promise<Order>;
}
