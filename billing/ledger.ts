// The ledger's rules over its store: the rate card (validated integer micro-units), deposits, the usage charge of
// one deployment for one period with its revenue split, balances, statements, verification, and whether a
// tenant can pay for the next period. Journals are built here and always sum to zero; the store makes each one
// atomic and idempotent, and appends the audit record of a deposit or a rate change to the business audit chain
// in the same transaction. Imports billing/, spec/, actors/business types and node:crypto only.
import { createHash, randomBytes } from "node:crypto";
import type { AuditEntry } from "../actors/business/audit-chain.ts";
import { PlacementError, ValidationError } from "../spec/errors.ts";
import type {
  EntryRow,
  LedgerAccount,
  LedgerStore,
  PostResult,
  RateCard,
  VerifyReport,
} from "./ledger-store.ts";
import { BPS_WHOLE, checkMicros, periodCharge, splitCharge } from "./money.ts";
import { EXTERNAL, PLATFORM, providerAccount, tenantAccount } from "./parties.ts";

/** Where a deposit came from: its idempotency keys live in separate namespaces. */
export type DepositSource = "admin" | "webhook";

/** Who asked for a change, as its audit record names them (`admin`, `webhook`, …) and their address. */
export type Actor = Pick<AuditEntry, "principal" | "client">;

export interface UsageCharge {
  deployment_id: string;
  agent_id: string;
  node_size: string;
  period: number;
  tenant: string;
  provider: string | null;
}

export interface ChargeResult extends PostResult {
  charge_micros: number;
  tenant_balance_micros: number;
  /** What the next period will cost the tenant at the current rate. */
  next_charge_micros: number;
}

const NODE_SIZE = /^[a-z0-9][a-z0-9-]{0,31}$/;

export class Ledger {
  readonly #store: LedgerStore;
  readonly #periodS: number;
  readonly #now: () => number;

  constructor(o: { store: LedgerStore; periodS: number; now?: () => number }) {
    this.#store = o.store;
    this.#periodS = o.periodS;
    this.#now = o.now ?? Date.now;
  }

  get periodS(): number {
    return this.#periodS;
  }

  rates(): Promise<RateCard | null> {
    return this.#store.rates();
  }

  /** Validates and replaces the rate card, audited as billing.rates_set; nothing changes on a bad value. */
  async setRates(
    input: { rates: Record<string, unknown>; platform_fee_bps: unknown },
    by: Actor,
  ): Promise<RateCard> {
    const rates: Record<string, number> = {};
    for (const [size, rate] of Object.entries(input.rates)) {
      if (!NODE_SIZE.test(size))
        throw new ValidationError("EE-REQ-INVALID", `rates: ${size} is not a node_size`);
      rates[size] = checkMicros(rate, `rates.${size}`);
    }
    const bps = input.platform_fee_bps;
    if (typeof bps !== "number" || !Number.isSafeInteger(bps) || bps < 0 || bps > BPS_WHOLE)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `platform_fee_bps: must be an integer from 0 to ${BPS_WHOLE}`,
      );
    const card = { rates, platform_fee_bps: bps, updated_at: this.#now() };
    await this.#store.putRates(card, {
      ...by,
      action: "billing.rates_set",
      target: "billing:rates",
      outcome: "ok",
      details: { rates, platform_fee_bps: bps },
    });
    return card;
  }

  /**
   * Credits a tenant from outside, audited as billing.deposit. The same key again (same account and amount)
   * returns the first journal and records nothing more.
   */
  async deposit(
    account: LedgerAccount,
    amountMicros: unknown,
    key: string,
    source: DepositSource,
    by: Actor,
  ): Promise<PostResult & { balance_micros: number }> {
    if (!account.startsWith("tenant:"))
      throw new ValidationError("EE-REQ-INVALID", "deposits go to tenant accounts only");
    const amount = checkMicros(amountMicros, "amount_micros");
    if (amount === 0) throw new ValidationError("EE-REQ-INVALID", "amount_micros: must be positive");
    const posted = await this.#store.post(
      {
        journal_id: newJournalId(),
        idempotency_key: `${source === "admin" ? "deposit" : "payment"}:${key}`,
        request_hash: hash({ account, amount }),
        kind: "deposit",
        at: this.#now(),
        deployment_id: null,
        period: null,
        memo: source === "admin" ? "deposit by an admin" : "payment webhook",
        entries: [
          { account: EXTERNAL, amount_micros: -amount },
          { account, amount_micros: amount },
        ],
      },
      {
        ...by,
        action: "billing.deposit",
        target: `ledger:${account}`,
        outcome: "ok",
        details: { amount_micros: amount, source, idempotency_key: key },
      },
    );
    return { ...posted, balance_micros: posted.balances[account] ?? 0 };
  }

  /**
   * Charges one deployment for one closed period: the tenant pays periodCharge(rate), the platform takes its fee
   * and the provider (the platform when there is none) the rest. Keyed by (deployment, period): a retry or a
   * restarted CP replays the first journal. Null when the node_size has no rate or the charge is zero. The
   * journal is posted even if it overdraws the tenant: the period was used; the grace rule handles a dry tenant.
   */
  async charge(u: UsageCharge, card: RateCard): Promise<ChargeResult | null> {
    const rate = card.rates[u.node_size];
    if (rate === undefined) return null;
    const charge = periodCharge(rate, this.#periodS);
    if (charge === 0) return null;
    const split = splitCharge(charge, card.platform_fee_bps);
    const tenant = tenantAccount(u.tenant);
    const earner = u.provider === null ? PLATFORM : providerAccount(u.provider);
    const credits = new Map<LedgerAccount, number>();
    for (const [account, amount] of [
      [earner, split.provider],
      [PLATFORM, split.platform],
    ] as const)
      if (amount > 0) credits.set(account, (credits.get(account) ?? 0) + amount);
    const key = `usage:${u.deployment_id}:${u.period}`;
    const posted = await this.#store.post(
      {
        journal_id: newJournalId(),
        idempotency_key: key,
        // The key alone decides: a retry after a rate change still replays the first charge of the period.
        request_hash: hash({ key }),
        kind: "usage",
        at: this.#now(),
        deployment_id: u.deployment_id,
        period: u.period,
        memo: `${u.node_size} on ${u.agent_id}, period ${u.period}`,
        entries: [
          { account: tenant, amount_micros: -charge },
          ...[...credits].map(([account, amount_micros]) => ({ account, amount_micros })),
        ],
      },
      // A charge is its own record (the journal, keyed by deployment and period); the chain records changes asked for.
      null,
    );
    return {
      ...posted,
      charge_micros: charge,
      tenant_balance_micros: posted.balances[tenant] ?? 0,
      next_charge_micros: charge,
    };
  }

  balance(account: LedgerAccount): Promise<number> {
    return this.#store.balance(account);
  }

  entries(account: LedgerAccount, limit: number): Promise<EntryRow[]> {
    return this.#store.entries(account, limit);
  }

  verify(): Promise<VerifyReport> {
    return this.#store.verify();
  }

  /**
   * Reads the tenant's balance and the rate card once, and returns the synchronous check a deploy or preflight
   * runs once placement has chosen an agent: EE-PLACE-INSUFFICIENT-FUNDS (402) when the balance cannot pay one
   * period on that node_size. No tenant, no rate card or no rate for the size: nothing to check.
   */
  async fundsCheck(tenant: string | null): Promise<(nodeSize: string | null) => void> {
    const card = tenant === null ? null : await this.#store.rates();
    if (tenant === null || card === null) return () => {};
    const balance = await this.#store.balance(tenantAccount(tenant));
    return (nodeSize) => {
      const rate = nodeSize === null ? undefined : card.rates[nodeSize];
      if (rate === undefined) return;
      const needed = periodCharge(rate, this.#periodS);
      if (balance < needed)
        throw new PlacementError(
          "EE-PLACE-INSUFFICIENT-FUNDS",
          `tenant ${tenant} has ${balance} micro-units; one ${this.#periodS} s period on ${nodeSize} costs ${needed}`,
          { tenant, balance_micros: balance, needed_micros: needed, node_size: nodeSize },
        );
    };
  }
}

function newJournalId(): string {
  return `jr_${randomBytes(12).toString("hex")}`;
}

function hash(v: Record<string, unknown>): string {
  return createHash("sha256").update(JSON.stringify(v)).digest("hex");
}
