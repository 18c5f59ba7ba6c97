// Collateral from a PCCS (or Intel PCS, API v4): fetches the PCK CRL, TCB info, QE identity and Root CA CRL for
// one platform, assembles them as QuoteCollateralV3 JSON (the `--collateral` file format) and keeps them in a
// bounded memory cache and an on-disk cache (`<cacheDir>/<fmspc>-<ca>.collateral.json`). A platform's collateral
// is fetched again once the evaluation time passes its earliest nextUpdate; when that fails, the cached copy is
// used and evaluation reports it as expired if it is. The signed TCB info and QE identity are taken as the exact
// bytes of the response body: re-serialising them would break Intel's signatures. Each GET is retried a bounded
// number of times (p-retry) when the PCCS is briefly away or overloaded; not when it answers 4xx or times out.
// Imports attestation/ modules, lib/ (read-if-exists, write-file-atomic, bounded-cache) and spec/errors.ts.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pRetry, { AbortError } from "p-retry";
import { BoundedCache } from "../lib/bounded-cache.ts";
import { readFileIfExists } from "../lib/read-if-exists.ts";
import { writeFileAtomicSync } from "../lib/write-file-atomic.ts";
import { AttestationError, ValidationError } from "../spec/errors.ts";
import { type Collateral, collateralNextUpdate, parseCollateral } from "./collateral.ts";
import type { CollateralQuery, CollateralSource, PckCa } from "./collateral-store.ts";

const TIMEOUT_MS = 10_000;
/**
 * Retries of one GET: 3 attempts 200 and 400 ms apart, so a PCCS that restarts or sheds load is asked again
 * before a registration is refused as unavailable, at most 0.6 s later.
 */
const GET_RETRY = { retries: 2, minTimeout: 200, factor: 2 };
/** Answers worth asking again: the server or a proxy in front of it is down or overloaded. */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** Platforms held in memory (the disk cache is not bounded: one small file per platform). */
const MAX_ENTRIES = 64;

export interface PccsOptions {
  /** PCCS or PCS base URL; a trailing `/sgx/certification/v4` or `/tdx/certification/v4` is accepted. */
  url: string;
  cacheDir: string;
  /** After a fetch for a platform, the next one waits this long (default 60 s): a PCCS that is down or serves
   * stale collateral is not asked again for every quote. */
  minRefetchMs?: number;
  /** Told about cache files it cannot read or write; the source carries on without them. */
  warn?: (message: string, err: unknown) => void;
}

interface Attempt {
  at: number;
  error?: AttestationError;
}

export class PccsCollateralSource implements CollateralSource {
  readonly #base: string;
  readonly #o: PccsOptions & { minRefetchMs: number };
  readonly #memory = new BoundedCache<string, Collateral>(MAX_ENTRIES);
  readonly #attempts = new BoundedCache<string, Attempt>(MAX_ENTRIES);
  readonly #inflight = new Map<string, Promise<Collateral>>();

  constructor(opts: PccsOptions) {
    this.#base = pccsBase(opts.url);
    this.#o = { minRefetchMs: 60_000, ...opts };
  }

  async forQuote(q: CollateralQuery, at: Date): Promise<Collateral | undefined> {
    if (q.fmspc === null || q.pckCa === null || !/^[0-9a-fA-F]{12}$/.test(q.fmspc)) return undefined;
    const fmspc = q.fmspc.toLowerCase();
    const key = `${fmspc}-${q.pckCa}`;
    const cached = this.#cached(key);
    if (cached && at.getTime() <= collateralNextUpdate(cached)) return cached;
    const last = this.#attempts.get(key);
    if (last && Date.now() - last.at < this.#o.minRefetchMs) {
      if (cached) return cached;
      if (last.error) throw last.error;
    }
    try {
      return await this.#fetchShared(key, fmspc, q.pckCa);
    } catch (err) {
      if (cached) return cached;
      throw err;
    }
  }

  #fetchShared(key: string, fmspc: string, ca: PckCa): Promise<Collateral> {
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#fetch(key, fmspc, ca).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #fetch(key: string, fmspc: string, ca: PckCa): Promise<Collateral> {
    try {
      const text = await fetchPccsCollateral(this.#base, fmspc, ca);
      const collateral = parseCollateral(text);
      this.#attempts.set(key, { at: Date.now() });
      this.#memory.set(key, collateral);
      this.#store(key, text);
      return collateral;
    } catch (err) {
      const error = new AttestationError(
        "EE-ATT-COLLATERAL-UNAVAILABLE",
        `collateral for FMSPC ${fmspc} (${ca} CA) from ${this.#base}: ${(err as Error).message}`,
      );
      this.#attempts.set(key, { at: Date.now(), error });
      throw error;
    }
  }

  #cached(key: string): Collateral | undefined {
    const hit = this.#memory.get(key);
    if (hit) return hit;
    try {
      const text = readFileIfExists(this.#file(key));
      if (text === null) return undefined;
      const collateral = parseCollateral(text);
      this.#memory.set(key, collateral);
      return collateral;
    } catch (err) {
      this.#o.warn?.(`ignoring unreadable collateral cache ${this.#file(key)}`, err);
      return undefined;
    }
  }

  /** Temp file and rename: a reader never sees half a file, even if the CP dies mid-write. */
  #store(key: string, text: string): void {
    const file = this.#file(key);
    try {
      mkdirSync(this.#o.cacheDir, { recursive: true, mode: 0o700 });
      writeFileAtomicSync(file, text, 0o600);
    } catch (err) {
      this.#o.warn?.(`cannot write collateral cache ${file}`, err);
    }
  }

  #file(key: string): string {
    return join(this.#o.cacheDir, `${key}.collateral.json`);
  }
}

/** The base URL without a trailing slash or API path. Throws EE-CONFIG-INVALID. */
function pccsBase(url: string): string {
  const base = url.replace(/\/+$/, "").replace(/\/(?:sgx|tdx)\/certification\/v4$/, "");
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `collateral URL "${url}" is not a URL`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw new ValidationError("EE-CONFIG-INVALID", `collateral URL "${url}" is not http(s)`);
  return base;
}

/** Fetches one platform's collateral and returns it as QuoteCollateralV3 JSON text. Throws plain Errors. */
async function fetchPccsCollateral(base: string, fmspc: string, ca: PckCa): Promise<string> {
  const attempts = GET_RETRY.retries + 1;
  const get = (path: string): Promise<Response> =>
    pRetry(async (attempt) => {
      const url = `${base}${path}`;
      const tried = attempt === attempts ? ` (${attempts} attempts)` : "";
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch (err) {
        // A PCCS silent for the whole timeout is not waited for again.
        if (err instanceof Error && err.name === "TimeoutError")
          throw new AbortError(`GET ${path}: no answer within ${TIMEOUT_MS} ms`);
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
        throw new Error(`GET ${path}: ${cause}${tried}`);
      }
      if (!res.ok) {
        await res.body?.cancel();
        if (!RETRYABLE_STATUS.has(res.status)) throw new AbortError(`GET ${path}: HTTP ${res.status}`);
        throw new Error(`GET ${path}: HTTP ${res.status}${tried}`);
      }
      return res;
    }, GET_RETRY);
  const chain = (res: Response, path: string, ...names: string[]): string => {
    for (const name of names) {
      const value = res.headers.get(name);
      if (value !== null) return decodeURIComponent(value);
    }
    throw new Error(`GET ${path}: no ${names.join(" or ")} header`);
  };
  const crl = async (path: string): Promise<{ res: Response; hex: string }> => {
    const res = await get(path);
    return { res, hex: crlHex(new Uint8Array(await res.arrayBuffer()), path) };
  };
  const signed = async (path: string, member: string, ...chainHeaders: string[]) => {
    const res = await get(path);
    const doc = signedDocument(await res.text(), member, path);
    return { ...doc, chain: chain(res, path, ...chainHeaders) };
  };

  const pckCrlPath = `/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`;
  const [pck, root, tcb, qe] = await Promise.all([
    crl(pckCrlPath),
    crl("/sgx/certification/v4/rootcacrl"),
    signed(
      `/tdx/certification/v4/tcb?fmspc=${fmspc}`,
      "tcbInfo",
      "TCB-Info-Issuer-Chain",
      "SGX-TCB-Info-Issuer-Chain",
    ),
    signed("/tdx/certification/v4/qe/identity", "enclaveIdentity", "SGX-Enclave-Identity-Issuer-Chain"),
  ]);
  return JSON.stringify({
    pck_crl_issuer_chain: chain(pck.res, pckCrlPath, "SGX-PCK-CRL-Issuer-Chain"),
    root_ca_crl: root.hex,
    pck_crl: pck.hex,
    tcb_info_issuer_chain: tcb.chain,
    tcb_info: tcb.json,
    tcb_info_signature: tcb.signature,
    qe_identity_issuer_chain: qe.chain,
    qe_identity: qe.json,
    qe_identity_signature: qe.signature,
  });
}

/** A CRL body as lowercase hex DER: PCS sends DER, PCCS sends hex text, some mirrors send PEM. */
function crlHex(body: Uint8Array, path: string): string {
  if (body[0] === 0x30) return Buffer.from(body).toString("hex");
  const text = Buffer.from(body).toString("latin1").trim();
  const pem = /^-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----$/.exec(text);
  if (pem) return Buffer.from(pem[1]!.replace(/\s/g, ""), "base64").toString("hex");
  if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) return text.toLowerCase();
  throw new Error(`GET ${path}: the CRL is neither DER, PEM nor hex`);
}

/** `{"<member>": {...}, "signature": "<hex>"}`: the member's exact text and the signature. */
function signedDocument(body: string, member: string, path: string): { json: string; signature: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`GET ${path}: the body is not JSON`);
  }
  const signature = (parsed as { signature?: unknown } | null)?.signature;
  const json = rawJsonMember(body, member);
  if (typeof signature !== "string" || json === undefined || !json.startsWith("{"))
    throw new Error(`GET ${path}: the body lacks an object ${member} or a string signature`);
  return { json, signature };
}

/**
 * The exact text of member `key` of the top-level object in `text`, which must be valid JSON (parse it first).
 * Strings are skipped with their escapes, so braces inside them do not count. A repeated key is refused:
 * JSON.parse would take the last, this scanner the first.
 */
export function rawJsonMember(text: string, key: string): string | undefined {
  let i = skipSpace(text, 0);
  if (text[i] !== "{") return undefined;
  i = skipSpace(text, i + 1);
  let found: string | undefined;
  while (text[i] === '"') {
    const keyEnd = endOfString(text, i);
    const name = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the colon
    const end = endOfValue(text, start);
    if (name === key) {
      if (found !== undefined) throw new SyntaxError(`member ${key} appears twice`);
      found = text.slice(start, end);
    }
    i = skipSpace(text, end);
    if (text[i] === ",") i = skipSpace(text, i + 1);
  }
  return found;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  return i;
}

/** `text[i]` is the opening quote; returns the index past the closing one. */
function endOfString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === '"') return j + 1;
  }
  throw new SyntaxError("unterminated JSON string");
}

function endOfValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return endOfString(text, i);
  if (first !== "{" && first !== "[") return i + (/^[^\s,}\]]*/.exec(text.slice(i))?.[0].length ?? 0);
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (c === '"') j = endOfString(text, j) - 1;
    else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return j + 1;
  }
  throw new SyntaxError("unterminated JSON value");
}
