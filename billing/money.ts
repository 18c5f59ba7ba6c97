// Money arithmetic for billing, pure: integer micro-units only (no floats anywhere money is), the period charge
// and revenue split of CONTRACT.md, and billing-period arithmetic on ms-epoch times. Products that could pass
// 2^53 are computed in BigInt and refused when the result is not a safe integer. Imports spec/errors only.
import { ValidationError } from "../spec/errors.ts";

/** The largest amount a single rate, deposit or balance may hold: 10^15 micro-units (10^9 whole units). */
export const MAX_MICROS = 1_000_000_000_000_000;
/** Basis points: 10,000 is the whole. */
export const BPS_WHOLE = 10_000;

/** A non-negative safe integer no larger than MAX_MICROS, or EE-REQ-INVALID naming `what`. */
export function checkMicros(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_MICROS)
    throw new ValidationError(
      "EE-REQ-INVALID",
      `${what}: must be an integer number of micro-units between 0 and ${MAX_MICROS}`,
    );
  return value;
}

/** The charge of one period: floor(rate × period_s / 3600), rate in micro-units per hour. */
export function periodCharge(microsPerHour: number, periodS: number): number {
  return toSafe((BigInt(microsPerHour) * BigInt(periodS)) / 3600n, "a period's charge");
}

/**
 * How a charge is split: the platform takes floor(charge × fee_bps / 10000) and the agent's provider the rest, so
 * any fraction of a micro-unit goes to the provider and the two shares always add up to the charge exactly.
 */
export function splitCharge(charge: number, platformFeeBps: number): { platform: number; provider: number } {
  const platform = toSafe((BigInt(charge) * BigInt(platformFeeBps)) / BigInt(BPS_WHOLE), "a platform share");
  return { platform, provider: charge - platform };
}

/** Billing periods are aligned to the epoch: period k is [k·P, (k+1)·P) in ms, P = period_s × 1000. */
export function periodIndex(at: number, periodS: number): number {
  return Math.floor(at / (periodS * 1000));
}

/** The latest period that has closed at `at` (the one before the period `at` falls in). */
export function lastClosedPeriod(at: number, periodS: number): number {
  return periodIndex(at, periodS) - 1;
}

export function periodBounds(index: number, periodS: number): { start: number; end: number } {
  return { start: index * periodS * 1000, end: (index + 1) * periodS * 1000 };
}

function toSafe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
    throw new ValidationError("EE-REQ-INVALID", `${what} exceeds the safe integer range`);
  return Number(v);
}
