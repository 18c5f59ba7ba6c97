// Which account a verified GitHub Actions token acts for: pure matching of its claims against the bindings of its
// repository (a binding as an admin submits it is validated by transport/rest/oidc-bindings.ts). Bindings name the NUMERIC repository_id
// (and optionally repository_owner_id), never the repository's or owner's name and never `sub`: names can be
// renamed, deleted and re-registered by someone else, and `sub`'s format is configurable per repository, while
// the ids are GitHub's and never reused. identity/ may import jose, node:*, lib/ and spec/ only.
import { OidcError } from "../spec/errors.ts";
import type { GithubOidcClaims } from "./oidc-verifier.ts";

export interface OidcBinding {
  account_id: string;
  /** Decimal string, as the token's claim carries it. */
  repository_id: string;
  repository_owner_id?: string;
  /** Exact match, e.g. `refs/heads/main` or `refs/tags/v1.2.0`. */
  ref?: string;
  /** Exact match on the job's deployment environment. */
  environment?: string;
  scopes: string[];
}

export type BindingClaims = Pick<
  GithubOidcClaims,
  "repository_id" | "repository_owner_id" | "ref" | "environment"
>;

/** How many optional constraints a binding sets: the most specific matching binding wins. */
function specificity(b: OidcBinding): number {
  return (
    Number(b.repository_owner_id !== undefined) +
    Number(b.ref !== undefined) +
    Number(b.environment !== undefined)
  );
}

/** Whether `b` admits a token with these claims. Every field the binding sets must equal the claim exactly. */
export function bindingMatches(b: OidcBinding, c: BindingClaims): boolean {
  return (
    b.repository_id === c.repository_id &&
    (b.repository_owner_id === undefined || b.repository_owner_id === c.repository_owner_id) &&
    (b.ref === undefined || b.ref === c.ref) &&
    (b.environment === undefined || b.environment === c.environment)
  );
}

/**
 * The one binding a token acts under: the most specific of those that match. Equally specific matches that differ
 * in account or scopes are refused (EE-OIDC-BINDING-AMBIGUOUS) rather than resolved by the order rows happen to
 * come in.
 */
export function matchBinding(claims: BindingClaims, bindings: readonly OidcBinding[]): OidcBinding {
  const matching = bindings.filter((b) => bindingMatches(b, claims));
  if (matching.length === 0)
    throw new OidcError(
      "EE-OIDC-NO-BINDING",
      `no OIDC binding admits repository_id ${claims.repository_id}`,
      {
        repository_id: claims.repository_id,
        ref: claims.ref,
      },
    );
  const top = Math.max(...matching.map(specificity));
  const best = matching.filter((b) => specificity(b) === top);
  const first = best[0]!;
  const key = (b: OidcBinding) => `${b.account_id}\n${[...b.scopes].sort().join(" ")}`;
  if (best.some((b) => key(b) !== key(first)))
    throw new OidcError(
      "EE-OIDC-BINDING-AMBIGUOUS",
      `${best.length} equally specific OIDC bindings of repository_id ${claims.repository_id} differ`,
    );
  return first;
}
