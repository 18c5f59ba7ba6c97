// Every operation of the REST API (spec/control-plane.yaml) with the contract's schemas of its JSON bodies: the
// request body (contract/rest-bodies.ts) and each JSON answer by status (contract/rest-responses.ts). An error
// status the document answers with its plain Error schema is errorSchema and is not repeated here.
// test/spec/openapi-bodies.test.ts compares each entry with the document. Imports zod and the two schema modules.
import { z } from "zod";
import {
  accountBody,
  appBody,
  bindingBody,
  claimBody,
  deploymentBody,
  depositBody,
  enrollmentBody,
  exchangeBody,
  keyBody,
  measurementBody,
  paymentBody,
  progressBody,
  ratesBody,
  targetBody,
} from "./rest-bodies.ts";
import * as R from "./rest-responses.ts";

export interface OperationBodies {
  /** The JSON request body, when the operation reads one. */
  request?: z.ZodType;
  /** JSON answers by status, beyond the plain errors. */
  responses: Record<string, z.ZodType>;
}

/** Keyed `METHOD /path` with the document's path templates. */
export const OPERATIONS: Record<string, OperationBodies> = {
  "GET /healthz": { responses: { "200": z.object({ status: z.literal("ok").optional() }) } },
  "GET /readyz": {
    responses: {
      "200": z.intersection(
        R.readinessRuleSchema,
        z.object({ status: z.literal("ready"), reason: z.string() }),
      ),
      "503": R.notReadyErrorSchema,
    },
  },
  "GET /openapi.json": {
    responses: {
      "200": z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) }),
    },
  },
  "GET /metrics": { responses: {} },
  "GET /api/v2/agents": { responses: { "200": z.object({ agents: z.array(R.agentSchema) }) } },
  "GET /api/v2/datacenters": { responses: { "200": z.object({ datacenters: z.array(R.datacenterSchema) }) } },
  "GET /api/v2/agents/events": { responses: {} },
  "GET /api/v2/agents/{agent_id}": {
    responses: {
      "200": z.intersection(
        R.agentSchema,
        z.object({ machine: z.object({ value: z.unknown(), context: z.looseObject({}) }) }),
      ),
    },
  },
  "POST /api/v2/agents/{agent_id}/drain": { responses: { "200": R.agentSchema } },
  "POST /api/v2/agents/{agent_id}/undrain": { responses: { "200": R.agentSchema } },
  "GET /api/v2/events": { responses: { "200": z.object({ events: z.array(R.eventSchema).optional() }) } },
  "GET /api/v2/measurements": {
    responses: {
      "200": z.object({
        trusted: z.array(R.trustedMeasurementSchema),
        baselines: z.array(R.measurementBaselineSchema),
      }),
    },
  },
  "POST /api/v2/measurements": { request: measurementBody, responses: { "201": R.trustedMeasurementSchema } },
  "DELETE /api/v2/measurements/{id}": { responses: {} },
  "POST /api/v2/measurements/baselines/{id}/approve": { responses: { "201": R.trustedMeasurementSchema } },
  "POST /api/v2/deployments": {
    request: deploymentBody,
    responses: {
      "202": z.object({
        deployment_id: R.deploymentIdSchema,
        agent_id: z.string(),
        replayed: z.boolean(),
        status: R.deploymentStatusSchema,
      }),
      "409": z.union([R.noAgentErrorSchema, R.errorSchema]),
      "503": R.notReadyErrorSchema,
    },
  },
  "GET /api/v2/deployments": { responses: { "200": z.object({ deployments: z.array(R.deploymentSchema) }) } },
  "GET /api/v2/deployments/{deployment_id}": { responses: { "200": R.deploymentSchema } },
  "POST /api/v2/deployments/{deployment_id}/undeploy": {
    responses: {
      "202": R.deploymentSchema,
      "503": R.notReadyErrorSchema,
    },
  },
  "POST /api/v2/preflight": {
    request: deploymentBody,
    responses: {
      "200": R.preflightSchema,
      "503": R.notReadyErrorSchema,
    },
  },
  "POST /api/v2/apps": { request: appBody, responses: { "201": R.appSchema } },
  "GET /api/v2/apps": { responses: { "200": z.object({ apps: z.array(R.appSchema) }) } },
  "GET /api/v2/apps/{ref}": {
    responses: { "200": z.intersection(R.appSchema, z.object({ compose: z.string() })) },
  },
  "GET /api/v2/agents/{agent_id}/stats": {
    responses: {
      "200": z.object({
        containers: z
          .array(
            z.object({
              service: z.string().optional(),
              id: z.string().optional(),
              cpu_percent: z.number().optional(),
              memory_bytes: z.number().int().optional(),
              memory_limit_bytes: z.number().int().optional(),
              network_rx_bytes: z.number().int().optional(),
              network_tx_bytes: z.number().int().optional(),
            }),
          )
          .optional(),
        host: z
          .object({
            cpus: z.number().int().optional(),
            load_avg: z.array(z.number()).length(3).optional(),
            memory_total_bytes: z.number().int().optional(),
            memory_free_bytes: z.number().int().optional(),
            uptime_s: z.number().optional(),
          })
          .optional(),
      }),
    },
  },
  "GET /api/v2/agents/{agent_id}/snapshot": {
    responses: {
      "200": z.object({
        agent_id: z.string().optional(),
        vm_name: z.string().optional(),
        node_size: z.string().optional(),
        datacenter: z.string().optional(),
        version: z.string().optional(),
        attestation_provider: z.string().optional(),
        started_at: z.string().optional(),
        control_plane: z
          .object({
            state: z.string().optional(),
            registered: z.boolean().optional(),
            session_id: z.string().nullable().optional(),
          })
          .optional(),
        last_heartbeat_seq: z.number().int().optional(),
        workload: z.looseObject({}).nullable().optional(),
      }),
    },
  },
  "GET /api/v2/agents/{agent_id}/logs": {
    responses: { "200": z.object({ lines: z.array(R.logLineSchema) }) },
  },
  "GET /api/v2/agents/{agent_id}/inspect": { responses: {} },
  "GET /api/v2/deployments/{deployment_id}/inspect": { responses: {} },
  "POST /api/v2/accounts": {
    request: accountBody,
    responses: {
      "201": z.object({ account_id: R.accountIdSchema, name: z.string(), kind: R.accountKindSchema }),
    },
  },
  "GET /api/v2/accounts": { responses: { "200": z.object({ accounts: z.array(R.accountSchema) }) } },
  "GET /api/v2/accounts/{account_id}": { responses: { "200": R.accountSchema } },
  "POST /api/v2/accounts/{account_id}/keys": {
    request: keyBody,
    responses: {
      "201": z.object({ key_id: R.keyIdSchema, token: z.string(), expires_at: z.string().nullable() }),
    },
  },
  "GET /api/v2/accounts/{account_id}/keys": {
    responses: { "200": z.object({ keys: z.array(R.apiKeySchema) }) },
  },
  "POST /api/v2/accounts/{account_id}/enrollment-tokens": {
    request: enrollmentBody,
    responses: {
      "201": z.object({
        token_id: z.string(),
        token: z.string(),
        expires_at: z.string(),
        dedicated_to: z.union([R.accountIdSchema, z.null()]),
      }),
    },
  },
  "POST /api/v2/auth/oidc": {
    request: exchangeBody,
    responses: {
      "200": z.object({
        access_token: z.string(),
        expires_at: z.string(),
        account_id: R.accountIdSchema,
        scopes: z.array(R.scopeSchema),
      }),
    },
  },
  "POST /api/v2/oidc/bindings": { request: bindingBody, responses: { "201": R.oidcBindingSchema } },
  "GET /api/v2/oidc/bindings": { responses: { "200": z.object({ bindings: z.array(R.oidcBindingSchema) }) } },
  "DELETE /api/v2/keys/{key_id}": { responses: {} },
  "GET /api/v2/audit": { responses: { "200": z.object({ records: z.array(R.auditRecordSchema) }) } },
  "GET /api/v2/billing/rates": { responses: { "200": R.rateCardSchema } },
  "PUT /api/v2/billing/rates": { request: ratesBody, responses: { "200": R.rateCardSchema } },
  "GET /api/v2/billing/verify": {
    responses: {
      "200": z.object({
        ok: z.boolean(),
        journals: z.number().int(),
        problems: z
          .object({
            unbalanced: z.array(z.string()),
            mismatched: z.array(
              z.object({
                account: z.string(),
                balance_micros: z.number().int(),
                entries_micros: z.number().int(),
              }),
            ),
          })
          .optional(),
      }),
    },
  },
  "POST /api/v2/billing/webhook": {
    request: paymentBody,
    responses: { "200": R.depositSchema, "201": R.depositSchema },
  },
  "POST /api/v2/accounts/{account_id}/deposits": {
    request: depositBody,
    responses: { "200": R.depositSchema, "201": R.depositSchema },
  },
  "GET /api/v2/accounts/{account_id}/balance": {
    responses: { "200": z.object({ balance_micros: z.number().int() }) },
  },
  "GET /api/v2/accounts/{account_id}/ledger": {
    responses: { "200": z.object({ entries: z.array(R.ledgerEntrySchema) }) },
  },
  "GET /api/v2/capacity/targets": {
    responses: { "200": z.object({ targets: z.array(R.capacityTargetSchema) }) },
  },
  "PUT /api/v2/capacity/targets": { request: targetBody, responses: { "200": R.capacityTargetSchema } },
  "GET /api/v2/capacity/reservations": {
    responses: {
      "200": z.object({
        reservations: z.array(
          z.object({
            agent_id: z.string(),
            datacenter: z.string(),
            node_size: z.string(),
            created_at: z.string(),
          }),
        ),
      }),
    },
  },
  "GET /api/v2/capacity/orders": { responses: { "200": z.object({ orders: z.array(R.launchOrderSchema) }) } },
  "POST /api/v2/capacity/orders/claim": {
    request: claimBody,
    responses: {
      "200": z.object({
        order: z.union([R.launchOrderSchema, z.null()]),
        bootstrap_token: z.string().optional(),
      }),
    },
  },
  "POST /api/v2/capacity/orders/{id}/progress": {
    request: progressBody,
    responses: { "200": R.launchOrderSchema },
  },
  "POST /api/v2/capacity/reconcile": {
    responses: {
      "200": z.object({
        targets: z.array(
          z.object({
            datacenter: z.string(),
            node_size: z.string(),
            min_warm: z.number().int(),
            warm: z.number().int(),
            in_flight: z.number().int(),
            awaiting: z.number().int(),
            ordered: z.number().int(),
          }),
        ),
        created: z.array(z.string()),
        cancelled: z.array(z.string()),
        expired: z.array(z.string()),
        reserved: z.array(z.string()),
        released: z.array(z.string()),
      }),
    },
  },
  "GET /api/v2/capacity/sizes": {
    responses: {
      "200": z.object({
        sizes: z.array(
          z.object({
            node_size: z.string(),
            vcpus: z.number().int(),
            memory_mb: z.number().int(),
            gpus: z.number().int(),
          }),
        ),
      }),
    },
  },
};
