// POST /api/v2/auth/oidc's logic without its REST or store: a GitHub Actions ID token in, a short-lived access
// token of the matching binding's account and scopes out. Everything it touches is a port the CP provides
// (verifier, replay store, the bindings of a repository, the account store's token issuer), so the same code runs
// against the in-memory replay store in tests and the business DB in the CP.
// identity/ may import jose, node:*, lib/ and spec/ only.
import { OidcError } from "../spec/errors.ts";
import { matchBinding, type OidcBinding } from "./oidc-bindings.ts";
import { type ReplayStore, replayHorizon } from "./oidc-replay.ts";
import type { GithubOidcClaims } from "./oidc-verifier.ts";

/** Long enough for a deploy job's preflight, deploy and wait; short, as CI logs and caches outlive jobs. */
export const DEFAULT_ACCESS_TTL_S = 15 * 60;

export interface OidcExchangePorts {
  verifier: {
    verify(token: unknown): Promise<GithubOidcClaims>;
    readonly maxTokenAgeS: number;
    readonly clockToleranceS: number;
  };
  replay: ReplayStore;
  findBindings(repository_id: string): readonly OidcBinding[] | Promise<readonly OidcBinding[]>;
  /** Issues a bearer token for the account with these scopes, valid ttl_s seconds; `expires_at` is ms epoch. */
  issueAccessToken(
    account_id: string,
    scopes: readonly string[],
    ttl_s: number,
  ): Promise<{ access_token: string; expires_at: number }>;
  accessTtlS?: number;
  now?: () => number;
}

export interface OidcExchangeResult {
  /** The response body of POST /api/v2/auth/oidc, exactly the contract's fields. */
  body: {
    access_token: string;
    /** ISO 8601, like every time on the REST surface. */
    expires_at: string;
    account_id: string;
    scopes: string[];
  };
  /** What the audit record names: the repository and run the token came from (no secret); not sent. */
  subject: {
    repository_id: string;
    repository_owner_id: string;
    ref: string;
    repository?: string;
    jti: string;
  };
}

export class OidcExchange {
  readonly #p: OidcExchangePorts;

  constructor(ports: OidcExchangePorts) {
    this.#p = ports;
  }

  /**
   * Verify, then spend the jti (before the binding lookup, so two concurrent exchanges of one token cannot both
   * pass; a token refused for want of a binding is spent too, which costs an honest caller nothing: it asks
   * GitHub for a new one), then match a binding and issue. Refusals are OidcErrors (401).
   */
  async exchange(token: unknown): Promise<OidcExchangeResult> {
    const p = this.#p;
    const now = (p.now ?? Date.now)();
    const claims = await p.verifier.verify(token);
    const until = replayHorizon(claims, p.verifier.maxTokenAgeS, p.verifier.clockToleranceS);
    if (!(await p.replay.remember(claims.jti, until, now)))
      throw new OidcError("EE-OIDC-REPLAY", "this OIDC token was already exchanged; request a new one", {
        jti: claims.jti,
      });
    const binding = matchBinding(claims, await p.findBindings(claims.repository_id));
    const ttl = p.accessTtlS ?? DEFAULT_ACCESS_TTL_S;
    const issued = await p.issueAccessToken(binding.account_id, binding.scopes, ttl);
    return {
      body: {
        access_token: issued.access_token,
        expires_at: new Date(issued.expires_at).toISOString(),
        account_id: binding.account_id,
        scopes: [...binding.scopes],
      },
      subject: {
        repository_id: claims.repository_id,
        repository_owner_id: claims.repository_owner_id,
        ref: claims.ref,
        ...(claims.repository !== undefined ? { repository: claims.repository } : {}),
        jti: claims.jti,
      },
    };
  }
}
