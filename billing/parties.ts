// Who pays and who earns: the port through which billing learns a deployment's tenant and an agent's provider,
// and how account ids name ledger accounts. Until tenancy lands, UNOWNED_PARTIES answers null for both: a
// deployment without a tenant is not charged (nobody to bill; it is the operator's own) and is never refused for
// funds, and an agent without a provider pays its share to the platform (the operator runs it). The lead rewires
// this port to the account store when tenancy merges. Imports spec/errors only.
import { ValidationError } from "../spec/errors.ts";
import type { LedgerAccount } from "./ledger-store.ts";

export interface BillingParties {
  /** The tenant account id a deployment (or a deploy request, before it has an id) is charged to; null: none. */
  tenantOf(deployment: { deployment_id: string | null; app: string }): string | null;
  /** The provider account id earning an agent's share; null: the platform keeps it. */
  providerOf(agentId: string): string | null;
}

export const UNOWNED_PARTIES: BillingParties = { tenantOf: () => null, providerOf: () => null };

export const PLATFORM: LedgerAccount = "platform";
export const EXTERNAL: LedgerAccount = "external";

const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const tenantAccount = (accountId: string): LedgerAccount => `tenant:${accountId}`;
export const providerAccount = (accountId: string): LedgerAccount => `provider:${accountId}`;

/**
 * The ledger account an `{id}` in a REST path names: `platform`, `external`, a qualified `tenant:ID` or
 * `provider:ID`, or a bare account id, which is a tenant's (tenancy will resolve it by the account's kind).
 */
export function ledgerAccountOf(id: string): LedgerAccount {
  if (id === PLATFORM || id === EXTERNAL) return id;
  const colon = id.indexOf(":");
  const [kind, bare] = colon < 0 ? ["tenant", id] : [id.slice(0, colon), id.slice(colon + 1)];
  if ((kind !== "tenant" && kind !== "provider") || !ACCOUNT_ID.test(bare))
    throw new ValidationError(
      "EE-REQ-INVALID",
      "account id: must be an account id (letters, digits, . _ -; at most 64), tenant:ID, provider:ID, platform or external",
    );
  return `${kind}:${bare}`;
}
