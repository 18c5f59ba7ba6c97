// The capacity store port: warm targets, reservations, launch orders and their bootstrap tokens (durable
// business state). Every method returns a Promise so a PostgreSQL adapter can implement it as the SQLite one
// does (sqlite-store.ts); each method is one atomic step, so claims and token consumption never race. Also the
// bootstrap-token and progress rules both adapters apply. Imports spec/errors and contract/ types only.
import type { Order, OrderStatus, Reservation, Target } from "../../contract/capacity.ts";
import { CapacityError, RegistrationError } from "../../spec/errors.ts";

export type { Order, OrderStatus, Reservation, Target } from "../../contract/capacity.ts";

/** Orders a launcher still works on: they cover a shortfall until they end. */
export const IN_FLIGHT: ReadonlySet<OrderStatus> = new Set(["open", "claimed", "provisioning"]);

export interface ClaimRequest {
  datacenter: string;
  node_size?: string;
  claimer: string;
  now: number;
  leaseMs: number;
  /** SHA-256 of the bootstrap token issued with this claim (the token itself is never stored). */
  tokenDigest: string;
}

export interface ProgressRequest {
  status: "provisioning" | "failed";
  reason?: string;
  claimer: string;
  now: number;
  leaseMs: number;
}

export interface BootstrapUse {
  tokenDigest: string;
  agent_id: string;
  datacenter: string;
  node_size: string;
  now: number;
}

/** A bootstrap token's row, as both adapters read it. */
export interface BootstrapTokenRow {
  order_id: string;
  claim_seq: number;
  used_by: string | null;
}

/**
 * Whether `use` may consume `token` of `order`: "again" when the agent that used it reconnects, "use" when it is
 * the order's current, unexpired token for the agent's datacenter and size; else the refusal (EE-REG-BOOTSTRAP-*).
 * The one rule both adapters apply inside their transaction.
 */
export function bootstrapDecision(
  token: BootstrapTokenRow,
  order: Pick<Order, "status" | "datacenter" | "node_size"> & {
    claim_seq: number;
    lease_expires_at: number | null;
  },
  use: BootstrapUse,
): "again" | "use" {
  if (token.used_by !== null) {
    // The same agent reconnecting (a CP restart, a network blip) presents its token again.
    if (token.used_by === use.agent_id) return "again";
    throw new RegistrationError("EE-REG-BOOTSTRAP-USED");
  }
  const current =
    token.claim_seq === order.claim_seq &&
    (order.status === "claimed" || order.status === "provisioning") &&
    (order.lease_expires_at ?? 0) > use.now;
  if (!current) throw new RegistrationError("EE-REG-BOOTSTRAP-EXPIRED");
  if (order.datacenter !== use.datacenter || order.node_size !== use.node_size)
    throw new RegistrationError(
      "EE-REG-BOOTSTRAP-MISMATCH",
      `the bootstrap token is for ${order.datacenter} ${order.node_size}, not ${use.datacenter} ${use.node_size}`,
    );
  return "use";
}

export interface CapacityStore {
  putTarget(t: Target): Promise<void>;
  targets(): Promise<Target[]>;
  orders(): Promise<Order[]>;
  /**
   * What the reconciler weighs: orders in flight, and those registered or fulfilled since `since` (the grace
   * window). Ended orders accumulate as history; the reconciler never reads them.
   */
  ordersForPlan(since: number): Promise<Order[]>;
  addOrders(orders: readonly Order[]): Promise<void>;
  /** Open orders among `ids` become failed with `reason`; others are left alone. Returns those changed. */
  cancelOpen(ids: readonly string[], reason: string, now: number): Promise<number>;
  /** The oldest matching open order, claimed with a lease and a new token; null when there is none. */
  claim(req: ClaimRequest): Promise<Order | null>;
  /** Throws CapacityError EE-CAP-LEASE-LOST / EE-CAP-ORDER-STATE; NotFoundError for an unknown order. */
  progress(orderId: string, req: ProgressRequest): Promise<Order>;
  /** Claimed/provisioning orders whose lease ended go back to open with the reason; returns them. */
  expireLeases(now: number): Promise<Order[]>;
  /**
   * Checks and consumes a bootstrap token at registration: its order becomes `registered` with the agent.
   * The agent that consumed it may present it again (a reconnect). Throws RegistrationError EE-REG-BOOTSTRAP-*.
   */
  consumeBootstrap(use: BootstrapUse): Promise<Order>;
  /** The agent's `registered` order (if any) becomes `fulfilled`. */
  fulfil(agentId: string, now: number): Promise<Order | null>;
  reservations(): Promise<Reservation[]>;
  updateReservations(add: readonly Reservation[], release: readonly string[]): Promise<void>;
}

/**
 * Whether the claimer may report progress on the order (a claimed or provisioning one under its live lease), and
 * the order's lease after the report.
 */
export function progressLease(
  order: Pick<Order, "order_id" | "status" | "claimed_by" | "lease_expires_at">,
  req: ProgressRequest,
): number | null {
  if (order.status !== "claimed" && order.status !== "provisioning")
    throw new CapacityError(
      "EE-CAP-ORDER-STATE",
      `order ${order.order_id} is ${order.status}: only a claimed or provisioning order takes progress`,
    );
  if (order.claimed_by !== req.claimer || (order.lease_expires_at ?? 0) <= req.now)
    throw new CapacityError("EE-CAP-LEASE-LOST", `order ${order.order_id} is not under your lease any more`);
  // Provisioning renews the lease: a VM that takes long to boot keeps its order as long as it reports.
  return req.status === "failed" ? null : req.now + req.leaseMs;
}
