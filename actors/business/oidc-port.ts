// The OIDC exchange as the CP runs it (`--oidc-issuer/--oidc-audience/--oidc-jwks`): identity/'s verifier and
// exchange wired to the business store (spent jtis survive a restart, bindings are the oidc_bindings table) and to
// Identity (access tokens minted like keys, attempts throttled and counted like bearer tokens).

import type { OidcExchangePort } from "../../contract/identity.ts";
import type { OidcBinding } from "../../identity/oidc-bindings.ts";
import { OidcExchange } from "../../identity/oidc-exchange.ts";
import { OidcVerifier, type OidcVerifierConfig } from "../../identity/oidc-verifier.ts";
import type { Identity } from "./identity.ts";
import type { BusinessStore, OidcBindingRow } from "./store.ts";

/** A stored binding as identity/ matches it: numeric ids as the decimal strings the token's claims carry. */
export const bindingOf = (row: OidcBindingRow): OidcBinding => ({
  account_id: row.account_id,
  repository_id: String(row.repository_id),
  ...(row.repository_owner_id !== null ? { repository_owner_id: String(row.repository_owner_id) } : {}),
  ...(row.ref !== null ? { ref: row.ref } : {}),
  ...(row.environment !== null ? { environment: row.environment } : {}),
  scopes: row.scopes,
});

export function oidcExchangePort(
  config: OidcVerifierConfig,
  identity: Identity,
  store: Pick<BusinessStore, "spendJti">,
): OidcExchangePort {
  const exchange = new OidcExchange({
    verifier: new OidcVerifier(config),
    replay: { remember: (jti, until, now) => store.spendJti(jti, until, now) },
    findBindings: async (repositoryId) => {
      const id = Number(repositoryId);
      // Ids past 2^53 are no GitHub repository's; Number would round them onto another.
      if (!Number.isSafeInteger(id)) return [];
      return (await identity.bindings(id)).map(bindingOf);
    },
    issueAccessToken: async (accountId, scopes, ttlS) => {
      const key = await identity.issueAccessToken(accountId, [...scopes], ttlS, "oidc");
      // An access token always has its expiry.
      return { access_token: key.token, expires_at: key.expires_at! };
    },
  });
  return {
    exchange: (token, client) => identity.attempt(client, () => exchange.exchange(token)),
    audit: (entry) => identity.audit(entry),
  };
}
