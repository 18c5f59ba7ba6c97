// Collateral a control plane holds (`--collateral PATH`: one QuoteCollateralV3 JSON file, or a directory of
// `*.collateral.json`), indexed by FMSPC so each quote is evaluated against its platform's TCB info.
// Loaded once at start; a bad file stops the CP with EE-CONFIG-INVALID naming it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ValidationError } from "../spec/errors.ts";
import { type Collateral, parseCollateral } from "./collateral.ts";

export interface CollateralStore {
  /** Collateral whose TCB info covers `fmspc` (lowercase hex), if any is configured. */
  forFmspc(fmspc: string | null): Collateral | undefined;
  readonly size: number;
}

export function loadCollateralStore(path: string): CollateralStore {
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
  const byFmspc = new Map<string, Collateral>();
  for (const file of files) {
    let c: Collateral;
    try {
      c = parseCollateral(readFileSync(file, "utf8"));
    } catch (err) {
      throw new ValidationError("EE-CONFIG-INVALID", `collateral ${file}: ${(err as Error).message}`);
    }
    // Sorted file names make the choice deterministic when two files cover one FMSPC: the last one wins.
    byFmspc.set(c.tcbInfo.fmspc.toLowerCase(), c);
  }
  return {
    size: byFmspc.size,
    forFmspc: (fmspc) => (fmspc === null ? undefined : byFmspc.get(fmspc.toLowerCase())),
  };
}
