// Where a control plane gets collateral for a quote: the CollateralSource port, its file implementation
// (`--collateral PATH`: one QuoteCollateralV3 JSON file, or a directory of `*.collateral.json`, indexed by FMSPC
// and loaded once at start; a bad file stops the CP with EE-CONFIG-INVALID naming it), and the chain that asks
// several sources in turn (files first, then a PCCS: attestation/pccs.ts).
// Imports attestation/ modules and spec/errors.ts.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "../spec/errors.ts";
import { type Collateral, parseCollateral } from "./collateral.ts";
import type { VerifiedQuote } from "./verify.ts";

/** Which PCK CA issued the platform's PCK leaf: Intel keeps one PCK CRL per CA. */
export type PckCa = "processor" | "platform";

/** What selects a platform's collateral: its FMSPC (lowercase hex) and the CA of its PCK leaf. */
export interface CollateralQuery {
  fmspc: string | null;
  pckCa: PckCa | null;
}

export interface CollateralSource {
  /** Collateral for the quote's platform as of `at`, or undefined when this source does not cover it. */
  forQuote(q: CollateralQuery, at: Date): Promise<Collateral | undefined>;
}

export interface FileCollateral extends CollateralSource {
  /** Collateral whose TCB info covers `fmspc` (any case), if any is configured. */
  forFmspc(fmspc: string | null): Collateral | undefined;
  /** Every platform's collateral with the file it came from, for the start-time expiry check. */
  entries(): readonly { fmspc: string; file: string; collateral: Collateral }[];
  readonly size: number;
}

const PCK_CA_NAMES: Record<string, PckCa> = {
  "Intel SGX PCK Processor CA": "processor",
  "Intel SGX PCK Platform CA": "platform",
};

export function collateralQueryOf(quote: VerifiedQuote): CollateralQuery {
  const cn = /(?:^|, )CN=([^,]+)/.exec(quote.pck_leaf.issuer)?.[1];
  return { fmspc: quote.pck_leaf.fmspc, pckCa: (cn && PCK_CA_NAMES[cn]) || null };
}

export function loadCollateralStore(path: string): FileCollateral {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => f.endsWith(".collateral.json"))
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (err) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `collateral ${path} cannot be read: ${(err as Error).message}`,
    );
  }
  const byFmspc = new Map<string, { fmspc: string; file: string; collateral: Collateral }>();
  for (const file of files) {
    let c: Collateral;
    try {
      c = parseCollateral(readFileSync(file, "utf8"));
    } catch (err) {
      throw new ValidationError("EE-CONFIG-INVALID", `collateral ${file}: ${(err as Error).message}`);
    }
    // Sorted file names make the choice deterministic when two files cover one FMSPC: the last one wins.
    const fmspc = c.tcbInfo.fmspc.toLowerCase();
    byFmspc.set(fmspc, { fmspc, file, collateral: c });
  }
  const forFmspc = (fmspc: string | null) =>
    fmspc === null ? undefined : byFmspc.get(fmspc.toLowerCase())?.collateral;
  return {
    size: byFmspc.size,
    entries: () => [...byFmspc.values()],
    forFmspc,
    forQuote: async (q) => forFmspc(q.fmspc),
  };
}

/** Asks each source in order; the first that covers the platform answers. */
export function chainCollateralSources(sources: readonly CollateralSource[]): CollateralSource {
  return {
    forQuote: async (q, at) => {
      for (const source of sources) {
        const c = await source.forQuote(q, at);
        if (c) return c;
      }
      return undefined;
    },
  };
}
