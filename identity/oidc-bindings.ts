// Which account a verified GitHub Actions token acts for: pure matching of its claims against the bindings of its
// repository, and the validation of a binding as an admin submits it. Bindings name the NUMERIC repository_id
// (and optionally repository_owner_id), never the repository's or owner's name and never `sub`: names can be
// renamed, deleted and re-registered by someone else, and `sub`'s format is configurable per repository, while
// the ids are GitHub's and never reused. identity/ may import jose, node:*, lib/ and spec/ only.
import { OidcError, ValidationError } from "../spec/errors.ts";
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

const NUMERIC_ID = /^[1-9][0-9]{0,19}$/;
const SCOPE = /^[a-z][a-z0-9:_-]{0,63}$/;
const MAX_TEXT = 512;

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

/**
 * A binding from a request body (`POST /api/v2/oidc/bindings`): `repository_id` and `repository_owner_id` as
 * positive integers or decimal strings (kept as strings: ids may outgrow 2^53), optional exact `ref` and
 * `environment`, scopes from `allowedScopes` when given. EE-REQ-INVALID naming the field otherwise.
 */
export function parseBinding(body: unknown, allowedScopes?: readonly string[]): OidcBinding {
  const bad = (field: string, why: string) =>
    new ValidationError("EE-REQ-INVALID", `${field} ${why}`, { field });
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw bad("body", "must be an object");
  const o = body as Record<string, unknown>;
  const known = new Set([
    "account_id",
    "repository_id",
    "repository_owner_id",
    "ref",
    "environment",
    "scopes",
  ]);
  const extra = Object.keys(o).find((k) => !known.has(k));
  if (extra !== undefined) throw bad(extra, "is not a binding field");
  const text = (field: string, v: unknown): string => {
    if (typeof v !== "string" || v.length === 0 || v.length > MAX_TEXT)
      throw bad(field, `must be a string of 1..${MAX_TEXT} characters`);
    return v;
  };
  const id = (field: string, v: unknown): string => {
    const s = typeof v === "number" && Number.isSafeInteger(v) ? String(v) : v;
    if (typeof s !== "string" || !NUMERIC_ID.test(s))
      throw bad(field, "must be GitHub's numeric id (a positive integer), not a name");
    return s;
  };
  if (!Array.isArray(o.scopes) || o.scopes.length === 0) throw bad("scopes", "must be a non-empty array");
  const scopes = [...new Set(o.scopes)].map((s) => {
    if (typeof s !== "string" || !SCOPE.test(s))
      throw bad("scopes", `holds an invalid scope ${JSON.stringify(s)}`);
    if (allowedScopes && !allowedScopes.includes(s)) throw bad("scopes", `holds an unknown scope "${s}"`);
    return s;
  });
  return {
    account_id: text("account_id", o.account_id),
    repository_id: id("repository_id", o.repository_id),
    ...(o.repository_owner_id !== undefined
      ? { repository_owner_id: id("repository_owner_id", o.repository_owner_id) }
      : {}),
    ...(o.ref !== undefined ? { ref: text("ref", o.ref) } : {}),
    ...(o.environment !== undefined ? { environment: text("environment", o.environment) } : {}),
    scopes,
  };
}
