// The contract for trusted measurements as the REST layer and eectl see them: approved entries, the baselines of
// refused measurements, and the port the REST routes call (implemented by actors/trusted-measurements.ts).
// Types only; imports attestation/policy's entry type.
import type { TrustedMeasurement } from "../attestation/policy.ts";

/** RTMR0..3, lowercase hex. */
export type Rtmr = [string, string, string, string];

export interface TrustedEntry extends TrustedMeasurement {
  id: number;
  rtmr: Rtmr | null;
  note: string | null;
  added_by: string;
  /** ms since the epoch. */
  added_at: number;
}

export interface NewTrustedMeasurement {
  node_size: string;
  mrtd: string;
  rtmr?: Rtmr | null;
  note?: string | null;
}

export interface Baseline {
  id: number;
  node_size: string;
  mrtd: string;
  rtmr: Rtmr;
  first_seen: number;
  last_seen: number;
  count: number;
  last_vm_name: string | null;
  last_agent_id: string | null;
}

export interface MeasurementsPort {
  list(): readonly TrustedEntry[];
  baselines(): Baseline[];
  add(input: NewTrustedMeasurement, by: string): TrustedEntry;
  remove(id: number, by: string): void;
  approve(baselineId: number, by: string): TrustedEntry;
}
