// Capacity's default timings, apart from the module that runs them so eectl's flags can name them without
// loading the control plane (ARCHITECTURE.md, "How eectl is built"). Imports nothing.

export interface CapacityTimings {
  reconcileMs: number;
  leaseMs: number;
  graceMs: number;
}

export const CAPACITY_DEFAULTS: Readonly<CapacityTimings> = {
  /** The reconciler's period (`--reconcile-ms`). */
  reconcileMs: 30_000,
  /** A launcher's lease on a claimed order (`--order-lease-s`); each provisioning report renews it. */
  leaseMs: 600_000,
  /** An order whose agent registered still covers its shortfall while the agent is unseen (a CP restart). */
  graceMs: 30 * 60_000,
};
