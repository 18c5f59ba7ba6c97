// HMAC request signing for an agent's HTTP API (everything but health: the writes, and the reads, since logs
// carry secrets): the signer (any client holding the
// session's secret; in this repo only tests sign) and the verifier (the agent) share this file, so the canonical
// string exists once. The secret is the per-agent `api_secret` the CP issues at registration.
// Canonical string: `EE1\n{METHOD}\n{path with query, as sent}\n{timestamp ms}\n{hex sha256(body)}`; the
// signature is its lowercase hex HMAC-SHA256, sent with the timestamp in the two headers below.
// May import node:crypto and spec/errors.ts.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { AuthError } from "../spec/errors.ts";

export const TIMESTAMP_HEADER = "x-ee-timestamp";
export const SIGNATURE_HEADER = "x-ee-signature";
export const SIGNING_SCHEME = "EE1";
/** How far a request's timestamp may be from the verifier's clock, either way. */
export const DEFAULT_SKEW_MS = 30_000;
/**
 * Signed requests accepted per replay window (2×skew); past this new ones are refused (EE-AUTH-RATE) until old
 * ones leave the window, since forgetting a fresh signature would let it be replayed.
 */
export const DEFAULT_REPLAY_CAP = 10_000;

export interface SignableRequest {
  method: string;
  /** The request target as sent on the wire: path and query, not decoded. */
  path: string;
  body: Uint8Array;
  /** ms since the epoch. */
  timestamp: number;
}

export function signRequest(secret: Uint8Array, req: SignableRequest): string {
  const bodyHash = createHash("sha256").update(req.body).digest("hex");
  const canonical = `${SIGNING_SCHEME}\n${req.method.toUpperCase()}\n${req.path}\n${req.timestamp}\n${bodyHash}`;
  return createHmac("sha256", secret).update(canonical).digest("hex");
}

/** The two headers that sign one request, timestamped now (or at `now`). */
export function signedHeaders(
  secret: Uint8Array,
  method: string,
  path: string,
  body: Uint8Array,
  now: number = Date.now(),
): Record<typeof TIMESTAMP_HEADER | typeof SIGNATURE_HEADER, string> {
  return {
    [TIMESTAMP_HEADER]: String(now),
    [SIGNATURE_HEADER]: signRequest(secret, { method, path, body, timestamp: now }),
  };
}

export interface VerifiableRequest {
  method: string;
  path: string;
  body: Uint8Array;
  /** Lowercase header names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
}

export interface RequestVerifier {
  /**
   * What can be checked before a body is read: both headers there and well formed, the timestamp within the skew,
   * a secret held. Throws AuthError (EE-AUTH-SIGNATURE, EE-AUTH-SKEW), so a caller who cannot have signed costs the
   * agent no body read.
   */
  precheck(headers: VerifiableRequest["headers"]): void;
  /** Returns when the request is authentic, fresh and new; throws AuthError (EE-AUTH-*) otherwise. */
  verify(req: VerifiableRequest): void;
}

export interface VerifierOptions {
  /** The current secret; null until the CP issued one. Read on every request: it changes each session. */
  secret: () => Uint8Array | null;
  skewMs?: number;
  replayCap?: number;
  now?: () => number;
}

const TIMESTAMP_FORMAT = /^\d{1,15}$/;
const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;

function header(headers: VerifiableRequest["headers"], name: string): string | undefined {
  const v = headers[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * verify checks the signature before the clock and the replay memory, so only authentic requests take a place in
 * the bounded replay memory. precheck looks at the clock first, without the body: a stale timestamp is no secret.
 */
export function createRequestVerifier(opts: VerifierOptions): RequestVerifier {
  const skewMs = opts.skewMs ?? DEFAULT_SKEW_MS;
  const cap = opts.replayCap ?? DEFAULT_REPLAY_CAP;
  const now = opts.now ?? Date.now;
  // A signature is replayable while its timestamp is within skew of the clock: at most 2×skew after it was
  // first seen. Entries go in with expiries in (near) increasing order, so expired ones are at the front.
  const seen = new Map<string, number>();

  function forgetExpired(at: number): void {
    for (const [signature, expiresAt] of seen) {
      if (expiresAt > at) break;
      seen.delete(signature);
    }
  }

  /** The headers and the secret, checked for presence and format only. */
  function parts(headers: VerifiableRequest["headers"]) {
    const timestamp = header(headers, TIMESTAMP_HEADER);
    const signature = header(headers, SIGNATURE_HEADER);
    if (timestamp === undefined || signature === undefined)
      throw new AuthError(
        "EE-AUTH-SIGNATURE",
        `signed request needed: ${TIMESTAMP_HEADER} and ${SIGNATURE_HEADER} headers`,
      );
    if (!TIMESTAMP_FORMAT.test(timestamp))
      throw new AuthError("EE-AUTH-SIGNATURE", `${TIMESTAMP_HEADER}: must be ms since the epoch`);
    if (!SIGNATURE_FORMAT.test(signature))
      throw new AuthError("EE-AUTH-SIGNATURE", `${SIGNATURE_HEADER}: must be 64 lowercase hex digits`);
    const secret = opts.secret();
    if (!secret || secret.length === 0)
      throw new AuthError("EE-AUTH-SIGNATURE", "the agent has no API secret yet (not registered)");
    return { ts: Number(timestamp), signature, secret };
  }

  function checkSkew(ts: number, at: number): void {
    if (Math.abs(at - ts) > skewMs)
      throw new AuthError("EE-AUTH-SKEW", `timestamp is ${at - ts} ms off the agent's clock (max ${skewMs})`);
  }

  return {
    precheck(headers) {
      checkSkew(parts(headers).ts, now());
    },
    verify(req) {
      const { ts, signature, secret } = parts(req.headers);
      const expected = signRequest(secret, {
        method: req.method,
        path: req.path,
        body: req.body,
        timestamp: ts,
      });
      if (!timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(signature, "hex")))
        throw new AuthError("EE-AUTH-SIGNATURE", "signature does not verify");

      const at = now();
      checkSkew(ts, at);

      forgetExpired(at);
      if (seen.has(signature)) throw new AuthError("EE-AUTH-REPLAY", "this signed request was already used");
      // Memory is bounded by the rate accepted, never by forgetting: a forgotten fresh signature is replayable.
      if (seen.size >= cap)
        throw new AuthError(
          "EE-AUTH-RATE",
          `more than ${cap} signed requests within ${2 * skewMs} ms; retry later`,
        );
      seen.set(signature, at + 2 * skewMs);
    },
  };
}
