// REST routes for billing: the rate card (admin), deposits by an admin, balances and statements of accounts (the
// admin, or the account's own key: a tenant's with `read`, a provider's with `agents:read`), ledger verification
// (admin), and the signed payment webhook (outside the bearer token: its HMAC is its credential). `{account_id}`
// is an account of the business store (`acc_…`, mapped to its ledger account by kind) or, for the admin,
// `platform` or `external`. Bodies are validated strictly before anything changes; amounts are integer
// micro-units; deposits and rate changes are audited on the business chain with the change (ctx.state.audited).
// Imports spec/, transport/, billing/ and actors/business types only.
import type { Router } from "@koa/router";
import type Koa from "koa";
import type { Actor, DepositSource } from "../../billing/ledger.ts";
import type {
  EntryRow,
  LedgerAccount,
  PostResult,
  RateCard,
  VerifyReport,
} from "../../billing/ledger-store.ts";
import { EXTERNAL, ledgerAccountOf, PLATFORM } from "../../billing/parties.ts";
import { verifyWebhook, WEBHOOK_SIGNATURE_HEADER } from "../../billing/webhook.ts";
import type { Account } from "../../contract/identity.ts";
import { depositBody, paymentBody, ratesBody } from "../../contract/rest-bodies.ts";
import type { LedgerEntryJson } from "../../contract/rest-responses.ts";
import { NotFoundError } from "../../spec/errors.ts";
import { principalName } from "../../spec/scopes.ts";
import { clientOf } from "./accounts.ts";
import { parseJsonBody, readJsonBody, readRawBody } from "./body.ts";
import { adminOnly, adminRoute, need, principalOf } from "./guard.ts";
import { iso } from "./json.ts";
import { intParam } from "./query.ts";

export interface BillingPort {
  periodS: number;
  rates(): Promise<RateCard | null>;
  setRates(
    input: { rates: Record<string, unknown>; platform_fee_bps: unknown },
    by: Actor,
  ): Promise<RateCard>;
  deposit(
    account: LedgerAccount,
    amountMicros: unknown,
    key: string,
    source: DepositSource,
    by: Actor,
  ): Promise<PostResult & { balance_micros: number }>;
  balance(account: LedgerAccount): Promise<number>;
  entries(account: LedgerAccount, limit: number): Promise<EntryRow[]>;
  verify(): Promise<VerifyReport>;
}

/** The business store's accounts: a path's account id must name one. */
export type AccountsPort = (accountId: string) => Promise<Account | undefined>;

/** What createRestApp needs to mount billing. */
export interface BillingRoutes {
  ledger: BillingPort;
  account: AccountsPort;
  /** The payment webhook's HMAC key; null refuses every webhook request (EE-AUTH-WEBHOOK-SIGNATURE). */
  webhookSecret: Buffer | null;
}

const SMALL_BODY = 64 * 1024;

/** Adds the routes to `api` (the bearer-authenticated /api/v2 router). */
export function mountBilling(api: Router, { ledger: port, account: accounts }: BillingRoutes): void {
  api.get("/billing/rates", adminRoute, async (ctx) => {
    ctx.body = ratesJson(await port.rates(), port.periodS);
  });
  api.put("/billing/rates", adminRoute, async (ctx) => {
    const { value } = await readJsonBody(ctx, ratesBody, SMALL_BODY);
    ctx.body = ratesJson(await port.setRates(value, actorOf(ctx)), port.periodS);
    ctx.state.audited = true;
  });
  api.get("/billing/verify", adminRoute, async (ctx) => {
    const r = await port.verify();
    ctx.body = {
      ok: r.ok,
      journals: r.journals,
      ...(r.ok ? {} : { problems: { unbalanced: r.unbalanced, mismatched: r.mismatched } }),
    };
  });
  api.post("/accounts/:id/deposits", adminRoute, async (ctx) => {
    const account = await accountLedger(accounts, ctx.params.id!);
    const { value } = await readJsonBody(ctx, depositBody, SMALL_BODY);
    const out = await port.deposit(
      account,
      value.amount_micros,
      value.idempotency_key,
      "admin",
      actorOf(ctx),
    );
    // A replay recorded nothing with the journal: the request itself is audited after the handler.
    ctx.state.audited = !out.replayed;
    ctx.status = out.replayed ? 200 : 201;
    ctx.body = depositJson(account, value.amount_micros, out);
  });
  api.get("/accounts/:id/balance", async (ctx) => {
    const account = await readableAccount(ctx, accounts, ctx.params.id!);
    ctx.body = { balance_micros: await port.balance(account) };
  });
  api.get("/accounts/:id/ledger", async (ctx) => {
    const account = await readableAccount(ctx, accounts, ctx.params.id!);
    const limit = intParam(ctx, "limit", 1, 10_000) ?? 1000;
    ctx.body = { entries: (await port.entries(account, limit)).map(entryJson) };
  });
}

/**
 * The payment webhook on the open router: HMAC-SHA256 of the raw body under the webhook secret (null: refuse
 * all), checked before the body is parsed, so an unsigned request learns nothing about its shape.
 */
export function mountPaymentWebhook(
  open: Router,
  { ledger: port, account: accounts, webhookSecret: secret }: BillingRoutes,
): void {
  open.post("/api/v2/billing/webhook", async (ctx) => {
    const raw = await readRawBody(ctx, SMALL_BODY);
    verifyWebhook(secret, raw, ctx.get(WEBHOOK_SIGNATURE_HEADER) || undefined);
    const value = parseJsonBody(ctx, raw, paymentBody);
    const account = await accountLedger(accounts, value.account_id);
    const by = { principal: "webhook", client: clientOf(ctx) };
    const out = await port.deposit(account, value.amount_micros, value.idempotency_key, "webhook", by);
    ctx.status = out.replayed ? 200 : 201;
    ctx.body = depositJson(account, value.amount_micros, out);
  });
}

const actorOf = (ctx: Koa.Context): Actor => ({
  principal: principalName(principalOf(ctx)),
  client: clientOf(ctx),
});

/**
 * An existing account's ledger account, or 404 (also for a kind without one: a launcher neither pays nor earns).
 * Deposits take it too: the ledger credits tenants only (a provider's is EE-REQ-INVALID).
 */
async function accountLedger(accounts: AccountsPort, id: string): Promise<LedgerAccount> {
  const account = /^acc_[0-9a-f]{24}$/.test(id) ? await accounts(id) : undefined;
  const ledger = account && ledgerAccountOf(account);
  if (!ledger) throw new NotFoundError("EE-NOT-FOUND", `account ${id} does not exist or has no ledger`);
  return ledger;
}

/**
 * What the principal may read: the admin any account's (and `platform`, `external`); an account its own, a
 * tenant's key with `read`, a provider's with `agents:read`. Another account's answers 404, as if it did not exist.
 */
async function readableAccount(ctx: Koa.Context, accounts: AccountsPort, id: string): Promise<LedgerAccount> {
  const p = principalOf(ctx);
  if (id === PLATFORM || id === EXTERNAL) {
    adminOnly(ctx);
    return id;
  }
  if (p.kind === "account") {
    need(ctx, p.accountKind === "tenant" ? "read" : "agents:read");
    if (p.accountId !== id) throw new NotFoundError("EE-NOT-FOUND", `account ${id} does not exist`);
  }
  return accountLedger(accounts, id);
}

function ratesJson(card: RateCard | null, periodS: number) {
  return {
    rates: card?.rates ?? {},
    platform_fee_bps: card?.platform_fee_bps ?? null,
    period_s: periodS,
    updated_at: card ? iso(card.updated_at) : null,
  };
}

function depositJson(account: LedgerAccount, amount: number, out: PostResult & { balance_micros: number }) {
  return {
    journal_id: out.journal_id,
    account,
    amount_micros: amount,
    balance_micros: out.balance_micros,
    replayed: out.replayed,
  };
}

const entryJson = (e: EntryRow): LedgerEntryJson => ({ ...e, at: iso(e.at) });
