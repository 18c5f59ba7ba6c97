// REST routes for billing: the rate card (admin), deposits by an admin, balances and statements of ledger
// accounts, ledger verification, and the signed payment webhook (outside the admin token: its HMAC is its
// credential). Bodies are validated strictly before anything changes; amounts are integer micro-units. Imports
// spec/, transport/ and billing/ types only.
import type { Router } from "@koa/router";
import { z } from "zod";
import type { DepositSource } from "../../billing/ledger.ts";
import type {
  EntryRow,
  LedgerAccount,
  PostResult,
  RateCard,
  VerifyReport,
} from "../../billing/ledger-store.ts";
import { ledgerAccountOf } from "../../billing/parties.ts";
import { verifyWebhook, WEBHOOK_SIGNATURE_HEADER } from "../../billing/webhook.ts";
import { parseJsonBody, readJsonBody, readRawBody } from "./body.ts";
import { adminRoute } from "./guard.ts";
import { iso } from "./json.ts";
import { intParam } from "./query.ts";

export interface BillingPort {
  periodS: number;
  rates(): Promise<RateCard | null>;
  setRates(input: { rates: Record<string, unknown>; platform_fee_bps: unknown }): Promise<RateCard>;
  deposit(
    account: LedgerAccount,
    amountMicros: unknown,
    key: string,
    source: DepositSource,
  ): Promise<PostResult & { balance_micros: number }>;
  balance(account: LedgerAccount): Promise<number>;
  entries(account: LedgerAccount, limit: number): Promise<EntryRow[]>;
  verify(): Promise<VerifyReport>;
}

const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,128}$/, "must be 1..128 visible ASCII characters");
const ratesBody = z.strictObject({
  rates: z.record(z.string(), z.number()),
  platform_fee_bps: z.number(),
});
const depositBody = z.strictObject({ amount_micros: z.number(), idempotency_key: idempotencyKey });
const paymentBody = z.strictObject({
  account_id: z.string().min(1).max(80),
  amount_micros: z.number(),
  idempotency_key: idempotencyKey,
});

const SMALL_BODY = 64 * 1024;

/** Adds the admin routes to `api` (the admin-authenticated /api/v2 router). */
export function mountBilling(api: Router, port: BillingPort): void {
  api.get("/billing/rates", adminRoute, async (ctx) => {
    ctx.body = ratesJson(await port.rates(), port.periodS);
  });
  api.put("/billing/rates", adminRoute, async (ctx) => {
    const { value } = await readJsonBody(ctx, ratesBody, SMALL_BODY);
    ctx.body = ratesJson(await port.setRates(value), port.periodS);
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
    const account = ledgerAccountOf(ctx.params.id!);
    const { value } = await readJsonBody(ctx, depositBody, SMALL_BODY);
    const out = await port.deposit(account, value.amount_micros, value.idempotency_key, "admin");
    ctx.status = out.replayed ? 200 : 201;
    ctx.body = depositJson(account, value.amount_micros, out);
  });
  api.get("/accounts/:id/balance", adminRoute, async (ctx) => {
    ctx.body = { balance_micros: await port.balance(ledgerAccountOf(ctx.params.id!)) };
  });
  api.get("/accounts/:id/ledger", adminRoute, async (ctx) => {
    const account = ledgerAccountOf(ctx.params.id!);
    const limit = intParam(ctx, "limit", 1, 10_000) ?? 1000;
    ctx.body = { entries: (await port.entries(account, limit)).map(entryJson) };
  });
}

/**
 * The payment webhook on the open router: HMAC-SHA256 of the raw body under the webhook secret (null: refuse
 * all), checked before the body is parsed, so an unsigned request learns nothing about its shape.
 */
export function mountPaymentWebhook(open: Router, port: BillingPort, secret: Buffer | null): void {
  open.post("/api/v2/billing/webhook", async (ctx) => {
    const raw = await readRawBody(ctx, SMALL_BODY);
    verifyWebhook(secret, raw, ctx.get(WEBHOOK_SIGNATURE_HEADER) || undefined);
    const value = parseJsonBody(ctx, raw, paymentBody);
    const account = ledgerAccountOf(value.account_id);
    const out = await port.deposit(account, value.amount_micros, value.idempotency_key, "webhook");
    ctx.status = out.replayed ? 200 : 201;
    ctx.body = depositJson(account, value.amount_micros, out);
  });
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

/** A ledger entry as the API shows it (declared here for the CLI and the tests). */
export type EntryJson = ReturnType<typeof entryJson>;

const entryJson = (e: EntryRow) => ({ ...e, at: iso(e.at) });
