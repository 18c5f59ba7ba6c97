// Verifies GitHub Actions OIDC ID tokens with jose: RS256 only, the configured issuer and audience, exp/nbf with
// a small clock tolerance, a maximum token age (iat) and the claims a binding needs. Every refusal is an
// OidcError with a stable EE-OIDC-* code. The JWKS comes from a URL (jose's remote set: cached, fetched again on an
// unknown kid, with a timeout) or from keys read beforehand (a file). No replay check here: oidc-replay.ts.
// identity/ may import jose, node:*, lib/ and spec/ only; the CP wires it (no store, no REST here).
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { OidcError } from "../spec/errors.ts";

/** GitHub's issuer for Actions ID tokens; its JWKS is at `${issuer}/.well-known/jwks`. */
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";
export const DEFAULT_MAX_TOKEN_AGE_S = 15 * 60;
export const DEFAULT_CLOCK_TOLERANCE_S = 30;
/** GitHub's tokens are about 1 KiB; anything far larger is not one and is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/** jti, ref, environment and the ids are short at GitHub; a bound keeps what the replay store holds small. */
const MAX_CLAIM_LENGTH = 512;

export type JwksSource =
  | { kind: "url"; url: URL; timeoutMs?: number; cooldownMs?: number; cacheMaxAgeMs?: number }
  | { kind: "keys"; jwks: JSONWebKeySet };

export interface OidcVerifierConfig {
  issuer: string;
  audience: string;
  jwks: JwksSource;
  /** Tokens issued (iat) longer ago than this are refused even before exp (default 15 min). */
  maxTokenAgeS?: number;
  clockToleranceS?: number;
  /** ms epoch; tests move it to check expiry and age. */
  now?: () => number;
}

/** The claims a verified token is known to carry, checked for shape; the rest of the payload rides along. */
export interface GithubOidcClaims extends JWTPayload {
  iss: string;
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  /** Numeric ids, as GitHub sends them: decimal strings. Bindings match on these, never on names. */
  repository_id: string;
  repository_owner_id: string;
  ref: string;
  repository?: string;
  environment?: string;
}

const NUMERIC_ID = /^[1-9][0-9]{0,19}$/;

export class OidcVerifier {
  readonly #config: Required<Omit<OidcVerifierConfig, "jwks">>;
  readonly #keys: JWTVerifyGetKey;

  constructor(config: OidcVerifierConfig) {
    this.#config = {
      issuer: config.issuer,
      audience: config.audience,
      maxTokenAgeS: config.maxTokenAgeS ?? DEFAULT_MAX_TOKEN_AGE_S,
      clockToleranceS: config.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S,
      now: config.now ?? Date.now,
    };
    const src = config.jwks;
    this.#keys =
      src.kind === "keys"
        ? createLocalJWKSet(src.jwks)
        : createRemoteJWKSet(src.url, {
            timeoutDuration: src.timeoutMs ?? 5000,
            cooldownDuration: src.cooldownMs ?? 30_000,
            cacheMaxAge: src.cacheMaxAgeMs ?? 10 * 60_000,
          });
  }

  get maxTokenAgeS(): number {
    return this.#config.maxTokenAgeS;
  }

  get clockToleranceS(): number {
    return this.#config.clockToleranceS;
  }

  /** The token's claims when it passes every check; an OidcError naming the first that failed otherwise. */
  async verify(token: unknown): Promise<GithubOidcClaims> {
    if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
      throw new OidcError(
        "EE-OIDC-MALFORMED",
        `the token must be a string of 1..${MAX_TOKEN_LENGTH} characters`,
      );
    const c = this.#config;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        // Fixed here, never taken from the token's header: HS256 (e.g. HMAC keyed with the public key) and
        // `none` fail before any key is used.
        algorithms: ["RS256"],
        issuer: c.issuer,
        audience: c.audience,
        maxTokenAge: c.maxTokenAgeS,
        clockTolerance: c.clockToleranceS,
        requiredClaims: ["exp", "iat", "jti", "sub", "ref", "repository_id", "repository_owner_id"],
        currentDate: new Date(c.now()),
      }));
    } catch (err) {
      throw oidcErrorOf(err);
    }
    return checkClaims(payload);
  }
}

/** Shapes jose checks only for presence: numeric ids as decimal strings, bounded strings. */
function checkClaims(p: JWTPayload): GithubOidcClaims {
  const bad = (claim: string, why: string) =>
    new OidcError("EE-OIDC-CLAIMS", `claim ${claim} ${why}`, { claim });
  for (const claim of ["repository_id", "repository_owner_id"]) {
    const v = p[claim];
    if (typeof v !== "string" || !NUMERIC_ID.test(v))
      throw bad(claim, "must be a numeric id (decimal string)");
  }
  for (const claim of ["jti", "sub", "ref", "iss"]) {
    const v = p[claim];
    if (typeof v !== "string" || v.length === 0 || v.length > MAX_CLAIM_LENGTH)
      throw bad(claim, `must be a string of 1..${MAX_CLAIM_LENGTH} characters`);
  }
  for (const claim of ["environment", "repository"]) {
    const v = p[claim];
    if (v !== undefined && (typeof v !== "string" || v.length > MAX_CLAIM_LENGTH))
      throw bad(claim, `must be a string of at most ${MAX_CLAIM_LENGTH} characters`);
  }
  if (typeof p.exp !== "number" || typeof p.iat !== "number")
    throw bad("exp", "and iat must be numeric dates");
  return p as GithubOidcClaims;
}

/** jose's failures as EE-OIDC-* codes; jose's messages name the claim, never a key or the token. */
function oidcErrorOf(err: unknown): OidcError {
  if (err instanceof OidcError) return err;
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported)
    return new OidcError("EE-OIDC-ALGORITHM", "the token must be signed with RS256");
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return new OidcError("EE-OIDC-SIGNATURE", "the token's signature does not verify");
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return new OidcError(
      "EE-OIDC-SIGNATURE",
      "no single key of the JWKS matches the token's kid and algorithm",
    );
  if (err instanceof errors.JWKSTimeout)
    return new OidcError("EE-OIDC-JWKS-UNAVAILABLE", "fetching the JWKS timed out");
  if (err instanceof errors.JWKSInvalid)
    return new OidcError("EE-OIDC-JWKS-UNAVAILABLE", "the JWKS is not a valid key set");
  if (err instanceof errors.JWTExpired)
    return err.claim === "iat"
      ? new OidcError("EE-OIDC-TOO-OLD", "the token was issued longer ago than the maximum token age")
      : new OidcError("EE-OIDC-EXPIRED", "the token has expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === "missing" || err.reason === "invalid")
      return new OidcError("EE-OIDC-CLAIMS", err.message, { claim: err.claim });
    switch (err.claim) {
      case "iss":
        return new OidcError("EE-OIDC-ISSUER", "the token's issuer is not the configured one");
      case "aud":
        return new OidcError("EE-OIDC-AUDIENCE", "the token's audience is not the configured one");
      case "nbf":
      case "iat":
        return new OidcError("EE-OIDC-NOT-YET-VALID", `the token's ${err.claim} is in the future`);
      default:
        return new OidcError("EE-OIDC-CLAIMS", err.message, { claim: err.claim });
    }
  }
  if (
    err instanceof errors.JWSInvalid ||
    err instanceof errors.JWTInvalid ||
    err instanceof errors.JWKInvalid
  )
    return new OidcError("EE-OIDC-MALFORMED", "the token is not a well-formed JWS");
  // Anything else from jose's remote set is a failed fetch (connection refused, non-200, not JSON): the CP's
  // problem, not the caller's; a TypeError from fetch lands here too.
  if (err instanceof errors.JOSEError || err instanceof TypeError)
    return new OidcError("EE-OIDC-JWKS-UNAVAILABLE", "the JWKS could not be fetched");
  throw err;
}
