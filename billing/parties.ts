// Who pays and who earns: a deployment's tenant is the account that owns it and an agent's provider the account
// that enrolled it (the business store's owners, kinds 'deployment' and 'agent'); how account ids name ledger
// accounts. A deployment without an owning account is the admin's: not charged, never refused for funds. An agent
// without a provider pays its share to the platform (the operator runs it). Imports actors/business types only.
import type { Account, OwnedKind, Owner } from "../actors/business/store.ts";
import type { LedgerAccount } from "./ledger-store.ts";

export interface BillingParties {
  /** The tenant account id a deployment is charged to; null: none (the admin's). */
  tenantOf(deploymentId: string): Promise<string | null>;
  /** The provider account id earning an agent's share; null: the platform keeps it. */
  providerOf(agentId: string): Promise<string | null>;
}

/** The parties as the business store's owners table records them. */
export function ownerParties(owners: { owner(kind: OwnedKind, id: string): Promise<Owner> }): BillingParties {
  return {
    tenantOf: async (deploymentId) => (await owners.owner("deployment", deploymentId)) ?? null,
    providerOf: async (agentId) => (await owners.owner("agent", agentId)) ?? null,
  };
}

export const PLATFORM: LedgerAccount = "platform";
export const EXTERNAL: LedgerAccount = "external";

export const tenantAccount = (accountId: string): LedgerAccount => `tenant:${accountId}`;
export const providerAccount = (accountId: string): LedgerAccount => `provider:${accountId}`;

/** The ledger account of an account, by its kind; null for a kind that has none (launchers neither pay nor earn). */
export function ledgerAccountOf(account: Account): LedgerAccount | null {
  if (account.kind === "tenant") return tenantAccount(account.account_id);
  if (account.kind === "provider") return providerAccount(account.account_id);
  return null;
}
