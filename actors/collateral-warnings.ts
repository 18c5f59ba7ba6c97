// What the CP tells its operator about its collateral. At start: each `--collateral` file already past its
// earliest nextUpdate, since every quote from that platform is then refused (EE-ATT-COLLATERAL-EXPIRED). While
// running: each platform (FMSPC) the collateral does not cover, once, since its quotes get no TCB status (a
// `tcb` policy refuses them; without one they are admitted with no collateral check). Imports attestation/
// modules and lib/log.ts (type).
import { collateralNextUpdate } from "../attestation/collateral.ts";
import type { CollateralSource, FileCollateral } from "../attestation/collateral-store.ts";
import type { Logger } from "../lib/log.ts";

export interface ExpiredCollateral {
  fmspc: string;
  file: string;
  /** ISO 8601, or null when a piece has no readable nextUpdate (which counts as expired). */
  next_update: string | null;
}

/** The files whose earliest nextUpdate is before `at`. */
export function expiredCollateral(files: FileCollateral, at: Date): ExpiredCollateral[] {
  return files.entries().flatMap(({ fmspc, file, collateral }) => {
    const next = collateralNextUpdate(collateral);
    // NaN or -Infinity (a missing or unreadable nextUpdate) fails the comparison: never current.
    if (next >= at.getTime()) return [];
    return [{ fmspc, file, next_update: Number.isFinite(next) ? new Date(next).toISOString() : null }];
  });
}

/** One warn line per expired file, at start. */
export function warnExpiredCollateral(log: Logger, files: FileCollateral, at: Date): void {
  for (const e of expiredCollateral(files, at)) {
    log.warn(
      e,
      `COLLATERAL EXPIRED: ${e.file} was due for renewal ${e.next_update ?? "(no nextUpdate)"}; ` +
        `every quote from platform FMSPC ${e.fmspc} is refused (EE-ATT-COLLATERAL-EXPIRED) until it is replaced`,
    );
  }
}

/** Enough for every Intel platform family many times over; a quote's FMSPC comes from a verified PCK leaf. */
const MAX_PLATFORMS = 1024;

/** `source`, logging the first quote from each platform it does not cover. */
export function warnUncoveredPlatforms(source: CollateralSource, log: Logger): CollateralSource {
  const warned = new Set<string>();
  return {
    forQuote: async (q, at) => {
      const c = await source.forQuote(q, at);
      const platform = q.fmspc ?? "unknown";
      if (!c && !warned.has(platform) && warned.size < MAX_PLATFORMS) {
        warned.add(platform);
        log.warn(
          { fmspc: q.fmspc },
          `COLLATERAL DOES NOT COVER platform FMSPC ${platform}: its quotes get no TCB status ` +
            "(a tcb policy refuses them; without one they are admitted with no collateral check)",
        );
      }
      return c;
    },
  };
}
