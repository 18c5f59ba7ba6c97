// The `attest` phase: what one registration's quote verification costs, against the raw P-256 ECDSA verify that
// is its floor. Measures the baseline, dev quotes (real v4 format, dev PCK chain) and, where the shared samples
// exist, genuine Intel quotes under the Intel root.
import { generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { devInit, loadDevRootPem } from "../../attestation/dev-pki.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { createTrustAnchors, type TrustAnchors } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { measureInterleaved, type Op, round } from "./measure.ts";
import type { BenchOptions, Phase, PhaseResult } from "./phase.ts";

const SHARED_QUOTES = new URL("../../../shared/tdx-quotes/", import.meta.url);
// The signed region of a v4 quote (header + TD report body): what the quote signature covers.
const SIGNED_REGION_BYTES = 632;
// Distinct REPORTDATA per quote, as distinct registrations would carry, so nothing per-quote can be cached.
const DEV_POOL = 1_000;
// One anchor set for the probe and the measurement, so the chains the probe verified are cached when timing starts.
const intelTrust = createTrustAnchors();

export const attestPhase: Phase = {
  name: "attest",
  async run(opts: BenchOptions): Promise<PhaseResult> {
    const notes: string[] = [];
    opts.log(`attest: making ${DEV_POOL} dev quotes`);
    const dev = await devQuotes();
    const samples = intelSamples(notes);
    const ops: { ecdsa: Op; dev: Op; intel: Op | undefined } = {
      ecdsa: ecdsaOp(),
      dev: (i) => {
        verifyQuote(dev.quotes[i % dev.quotes.length]!, { trust: dev.trust });
      },
      intel:
        samples.length === 0
          ? undefined
          : (i) => {
              const s = samples[i % samples.length]!;
              verifyQuote(s.bytes, { trust: intelTrust, at: s.at });
            },
    };
    opts.log(`attest: measuring ECDSA, dev and Intel quote verifies (${opts.seconds} s each, interleaved)`);
    const rates = measureInterleaved(ops, opts.seconds);
    const ecdsa = rates.ecdsa.per_s;
    const quote = rates.dev.per_s;
    const intel = rates.intel?.per_s ?? null;

    return {
      metrics: {
        ecdsa_verify_per_s: round(ecdsa),
        quote_verify_per_s: round(quote),
        quote_verify_ratio: round(quote / ecdsa, 3),
        intel_quote_verify_per_s: intel === null ? null : round(intel),
        intel_quote_verify_ratio: intel === null ? null : round(intel / ecdsa, 3),
      },
      figures: {
        ecdsa_verify_per_s: { label: "ECDSA P-256 verify (baseline)", value: ecdsa, unit: "/s" },
        quote_verify_per_s: {
          label: "verifyQuote, dev quotes",
          value: quote,
          unit: "/s",
          baseline: "ecdsa_verify_per_s",
        },
        intel_quote_verify_per_s: {
          label: "verifyQuote, Intel quotes",
          value: intel,
          unit: "/s",
          baseline: "ecdsa_verify_per_s",
        },
      },
      notes,
    };
  },
};

/** A verify of a fresh signature over a quote-sized message with an already-imported key. */
function ecdsaOp(): (i: number) => void {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = randomBytes(SIGNED_REGION_BYTES);
  const sig = sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" });
  const key = { key: publicKey, dsaEncoding: "ieee-p1363" } as const;
  return () => {
    if (!verify("sha256", data, key, sig)) throw new Error("baseline signature does not verify");
  };
}

async function devQuotes(): Promise<{ trust: TrustAnchors; quotes: Uint8Array[] }> {
  const dir = mkdtempSync(join(tmpdir(), "ee-bench-"));
  try {
    await devInit(dir);
    const provider = createDevQuoteProvider({ dir });
    const quotes: Uint8Array[] = [];
    for (let i = 0; i < DEV_POOL; i++) quotes.push(await provider.getQuote(randomBytes(64)));
    // The PKI directory is only needed to sign; the trust anchors keep the root in memory.
    return { trust: createTrustAnchors({ devRootPem: loadDevRootPem(dir) }), quotes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface IntelSample {
  bytes: Uint8Array;
  at: Date;
}

/** The shared samples that verify, each with a time inside its PCK leaf validity; empty (with a note) if absent. */
function intelSamples(notes: string[]): IntelSample[] {
  const dir = fileURLToPath(SHARED_QUOTES);
  if (!existsSync(dir)) {
    notes.push(`Intel quote samples not found at ${dir}; intel_quote_verify_per_s is null`);
    return [];
  }
  const samples: IntelSample[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".bin"))) {
    const bytes = new Uint8Array(readFileSync(join(dir, name)));
    const at = leafTime(join(dir, name.replace(/\.bin$/, ".json")));
    try {
      verifyQuote(bytes, { trust: intelTrust, at });
      samples.push({ bytes, at });
    } catch (err) {
      // A sample the verifier rejects would measure the error path, not verification.
      notes.push(`skipped Intel sample ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (samples.length === 0) notes.push("no Intel quote sample verified; intel_quote_verify_per_s is null");
  return samples;
}

// A day after the PCK leaf's notBefore; the samples' leaves are years apart, so no single date fits them all.
function leafTime(jsonPath: string): Date {
  const fallback = new Date("2025-06-01T00:00:00Z");
  if (!existsSync(jsonPath)) return fallback;
  const json = JSON.parse(readFileSync(jsonPath, "utf8")) as { pck_info?: { pck_leaf_validity?: string[] } };
  const from = json.pck_info?.pck_leaf_validity?.[0];
  return from === undefined ? fallback : new Date(Date.parse(from) + 24 * 3600 * 1000);
}
