// The charger: closes billing periods on a timer and charges each running (healthy) deployment that has a tenant
// for the period that just closed, then watches tenants that ran dry. The clock is injected (tests drive it by
// hand); ticks never overlap. Rule: a deployment healthy at the boundary that closes a period pays that whole
// period. A late tick closes every period since the last one it closed (a deployment pays those it was already
// healthy at the end of); the first tick after a start closes the latest closed period only, which the
// (deployment, period) key makes safe to repeat.
// A tenant whose balance after a charge cannot pay the next period is dry: if it still cannot once `graceS` has
// passed on the clock, its deployment is undeployed and audited. Imports billing/ and lib/ types only.
import type { Logger } from "../lib/log.ts";
import type { Ledger } from "./ledger.ts";
import { lastClosedPeriod, periodBounds } from "./money.ts";
import { type BillingParties, tenantAccount } from "./parties.ts";

export interface BilledDeployment {
  deployment_id: string;
  agent_id: string;
  node_size: string | null;
  /** When it became healthy (ms): it pays no period that closed before. */
  healthy_since: number;
}

export interface ChargerOptions {
  ledger: Ledger;
  parties: BillingParties;
  /** Healthy deployments now. */
  running: () => BilledDeployment[];
  undeploy: (deploymentId: string) => void;
  audit: (kind: string, data: Record<string, unknown>) => void;
  log: Logger;
  graceS: number;
  now?: () => number;
  /** How often the clock is looked at (default 1 s). */
  tickMs?: number;
}

/** A tick closes at most this many periods (a clock jump must not post journals for ever). */
const MAX_CATCH_UP = 1000;

interface Dry {
  tenant: string;
  since: number;
  needed: number;
}

export class Charger {
  readonly #o: ChargerOptions;
  readonly #now: () => number;
  #lastClosed: number | null = null;
  readonly #dry = new Map<string, Dry>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;

  constructor(o: ChargerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#ticking;
  }

  /** One look at the clock: close a period if one closed, then apply the grace rule. Concurrent calls share one. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = null;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    try {
      const now = this.#now();
      const closed = lastClosedPeriod(now, this.#o.ledger.periodS);
      // Each period in order, so a failure leaves the rest for the next tick; at most MAX_CATCH_UP of them.
      const from =
        this.#lastClosed === null ? closed : Math.max(this.#lastClosed + 1, closed - MAX_CATCH_UP + 1);
      for (let period = from; period <= closed; period++) {
        await this.closePeriod(period);
        this.#lastClosed = period;
      }
      await this.#applyGrace(now);
    } catch (err) {
      // Left unclosed: the next tick tries the period again, and the idempotency key keeps what was charged.
      this.#o.log.error({ err }, "billing tick failed");
    }
  }

  /** Charges every healthy deployment with a tenant for `period`; returns how many journals were new. */
  async closePeriod(period: number): Promise<number> {
    const card = await this.#o.ledger.rates();
    if (card === null) return 0;
    let posted = 0;
    const end = periodBounds(period, this.#o.ledger.periodS).end;
    for (const d of this.#o.running()) {
      if (d.healthy_since > end) continue;
      if (d.node_size === null) continue;
      const tenant = await this.#o.parties.tenantOf(d.deployment_id);
      if (tenant === null) continue;
      const result = await this.#o.ledger.charge(
        {
          deployment_id: d.deployment_id,
          agent_id: d.agent_id,
          node_size: d.node_size,
          period,
          tenant,
          provider: await this.#o.parties.providerOf(d.agent_id),
        },
        card,
      );
      if (result === null) continue;
      if (!result.replayed) posted++;
      if (result.tenant_balance_micros < result.next_charge_micros && !this.#dry.has(d.deployment_id)) {
        this.#dry.set(d.deployment_id, { tenant, since: this.#now(), needed: result.next_charge_micros });
        this.#o.audit("billing.funds_low", {
          deployment_id: d.deployment_id,
          tenant,
          balance_micros: result.tenant_balance_micros,
          needed_micros: result.next_charge_micros,
          grace_s: this.#o.graceS,
        });
      }
    }
    return posted;
  }

  async #applyGrace(now: number): Promise<void> {
    if (this.#dry.size === 0) return;
    const running = new Set(this.#o.running().map((d) => d.deployment_id));
    for (const [id, dry] of [...this.#dry]) {
      if (!running.has(id)) {
        this.#dry.delete(id);
        continue;
      }
      if (now - dry.since < this.#o.graceS * 1000) continue;
      this.#dry.delete(id);
      const balance = await this.#o.ledger.balance(tenantAccount(dry.tenant));
      if (balance >= dry.needed) continue;
      this.#o.audit("billing.undeployed", {
        deployment_id: id,
        tenant: dry.tenant,
        balance_micros: balance,
        needed_micros: dry.needed,
        reason: "EE-PLACE-INSUFFICIENT-FUNDS",
      });
      this.#o.log.warn({ deployment_id: id, tenant: dry.tenant }, "undeploying: the tenant ran out of funds");
      try {
        this.#o.undeploy(id);
      } catch (err) {
        this.#o.log.warn({ err, deployment_id: id }, "undeploying a dry tenant's deployment failed");
      }
    }
  }
}
