// The contract for REST response bodies: the zod schema of every JSON body the control plane's REST API answers
// with (an error is errorSchema unless an operation says otherwise). Written from spec/control-plane.yaml's
// components and held to them by test/spec/openapi-bodies.test.ts, field by field: a field added on one side
// only fails it. Imports zod, the session states of machines/agent-session.ts, the deployment statuses of
// machines/deployment.ts, the workload steps of spec/protocol.ts and the order statuses of capacity.ts.
import { z } from "zod";
import { SESSION_STATES } from "../machines/agent-session.ts";
import { DEPLOYMENT_STATUSES } from "../machines/deployment.ts";
import { workloadStepSchema } from "../spec/protocol.ts";
import { ORDER_STATUSES } from "./capacity.ts";

/** Integer micro-units (10^-6 of the currency unit); never a float */
export const microsSchema = z.number().int();

export const rateCardSchema = z.object({
  rates: z.record(z.string(), microsSchema),
  platform_fee_bps: z.number().int().nullable(),
  period_s: z.number().int(),
  updated_at: z.string().nullable(),
});

export const depositSchema = z.object({
  journal_id: z.string(),
  account: z.string(),
  amount_micros: microsSchema,
  balance_micros: z.number().int(),
  replayed: z.boolean(),
});

export const ledgerEntrySchema = z.object({
  journal_id: z.string(),
  kind: z.enum(["deposit", "usage"]),
  account: z.string(),
  amount_micros: z.number().int(),
  at: z.string(),
  deployment_id: z.string().nullable(),
  period: z.number().int().nullable(),
  memo: z.string().nullable(),
});

export const accountIdSchema = z.string();

export const accountKindSchema = z.enum(["tenant", "provider", "launcher"]);

export const accountSchema = z.object({
  account_id: accountIdSchema,
  name: z.string(),
  kind: accountKindSchema,
  created_at: z.string(),
});

/** spec/scopes.md */
export const scopeSchema = z.enum(["deploy", "read", "agents:read", "agents:enroll", "launch"]);

export const keyIdSchema = z.string();

export const apiKeySchema = z.object({
  key_id: keyIdSchema,
  account_id: accountIdSchema,
  origin: z.enum(["key", "access"]),
  scopes: z.array(scopeSchema),
  created_at: z.string(),
  created_by: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
});

export const oidcBindingSchema = z.object({
  binding_id: z.string(),
  account_id: accountIdSchema,
  repository_id: z.number().int(),
  repository_owner_id: z.number().int().nullable(),
  ref: z.string().nullable(),
  environment: z.string().nullable(),
  scopes: z.array(scopeSchema),
  created_at: z.string(),
  created_by: z.string(),
});

export const auditRecordSchema = z.object({
  seq: z.number().int(),
  at: z.string(),
  principal: z.string(),
  client: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: z.string(),
  details: z.looseObject({}).nullable(),
  hash: z.string(),
  prev_hash: z.string(),
});

export const readinessRuleSchema = z.object({
  rule: z.enum(["quorum", "settle"]),
  known_before: z.number().int().nullable(),
  back: z.number().int(),
  needed: z.number().int().nullable(),
});

/** `d-` + 16 lowercase hex when created by this control plane */
export const deploymentIdSchema = z.string();

/** pending: sent to the agent, no step reported yet; deploying: pulling or preparing images, starting, gating on health; */
export const deploymentStatusSchema = z.enum(DEPLOYMENT_STATUSES);

export const progressEntrySchema = z.object({
  // The agent's workload steps plus the ones the control plane records itself (machines/deployment.ts ProgressEntry).
  step: z.enum([
    ...workloadStepSchema.options,
    "dispatched",
    "undeploy_requested",
    "agent_lost",
    "rehydrated",
    "reconciled",
    "unrecognized",
  ]),
  at: z.string(),
  message: z.string().optional(),
  bytes_done: z.number().int().optional(),
  bytes_total: z.number().int().optional(),
});

export const imageRefSchema = z.object({ service: z.string(), ref: z.string(), digest: z.string() });

/** The agent's health gate, a GET on a container port of the target service (the last in start order), reached on the deployment's network without publishing any host port, that must answer 2xx; the agent's proxy forwards to the same port. Unknown keys are ignored. */
export const healthSpecSchema = z.object({
  port: z.number().int(),
  path: z.string().optional(),
  timeout_s: z.number().int().optional(),
});

export const deploymentSchema = z.object({
  deployment_id: deploymentIdSchema,
  app: z.string(),
  app_version: z.string().nullable(),
  agent_id: z.string(),
  status: deploymentStatusSchema,
  code: z.string().nullable(),
  message: z.string().nullable(),
  compose_hash: z.string().nullable(),
  images: z.array(imageRefSchema),
  progress: z.array(progressEntrySchema),
  request: z.object({
    node_size: z.string().optional(),
    datacenter: z.string().optional(),
    agent_id: z.string().optional(),
    health: healthSpecSchema.optional(),
    context_bytes: z.number().int().optional(),
    replaces: z.string().optional(),
  }),
  replaces: z.string().nullable(),
  replaced_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  rehydrated: z.boolean(),
  dc_id: z.string().optional(),
  unrecognized: z.boolean(),
});

export const placementReasonSchema = z.enum([
  "EE-PLACE-NOT-REQUESTED",
  "EE-PLACE-NODE-SIZE",
  "EE-PLACE-DATACENTER",
  "EE-PLACE-STALE",
  "EE-PLACE-NOT-ATTESTED",
  "EE-PLACE-BUSY",
  "EE-PLACE-DEDICATED",
  "EE-PLACE-AGENT-DRAINED",
]);

/** How many agents each reason excluded (an agent can count under several) */
export const placementCountsSchema = z.record(z.string(), z.number().int());

export const agentStateSchema = z.enum(SESSION_STATES);

export const placementCandidateSchema = z.object({
  agent_id: z.string(),
  vm_name: z.string().nullable(),
  node_size: z.string().nullable(),
  datacenter: z.string().nullable(),
  state: agentStateSchema,
  eligible: z.boolean(),
  reasons: z.array(placementReasonSchema),
});

export const placementSchema = z.object({
  chosen: z.union([placementCandidateSchema, z.null()]),
  considered: z.number().int(),
  candidates: z.array(placementCandidateSchema),
  counts: placementCountsSchema,
});

/** Why no agent fits, as capacity sees it */
export const capacityHintSchema = z.object({
  code: z.enum(["EE-CAP-WARM-PENDING", "EE-CAP-NO-ELIGIBLE"]),
  message: z.string(),
  orders_in_flight: z.number().int(),
});

export const preflightSchema = z.object({
  ok: z.boolean(),
  app: z.string(),
  app_version: z.string().nullable(),
  compose_hash: z.string(),
  services: z.array(z.string()),
  placement: placementSchema,
  capacity: capacityHintSchema.optional(),
});

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

/** The document's NotReady response (503): the CP is still rebuilding its runtime state from its agents, or a federation master could not queue on the hub. */
export const notReadyErrorSchema = z.intersection(
  errorSchema,
  z.object({
    error: z
      .object({
        code: z.enum(["EE-NOT-READY", "EE-FED-UNAVAILABLE"]).optional(),
        details: readinessRuleSchema.optional(),
      })
      .optional(),
  }),
);

/** The 409 of a deployment no agent fits */
export const noAgentErrorSchema = z.intersection(
  errorSchema,
  z.object({
    error: z
      .object({
        code: z.literal("EE-PLACE-NO-AGENT").optional(),
        details: z.object({
          considered: z.number().int(),
          counts: placementCountsSchema,
          agents: z.array(placementCandidateSchema),
          capacity: capacityHintSchema.optional(),
        }),
      })
      .optional(),
  }),
);

export const appSchema = z.object({
  name: z.string(),
  version: z.string(),
  ref: z.string(),
  compose_hash: z.string(),
  health: z.union([healthSpecSchema, z.null()]),
  created_at: z.string(),
});

export const logLineSchema = z.object({
  service: z.string(),
  stream: z.enum(["stdout", "stderr"]),
  ts: z.string(),
  text: z.string(),
});

export const trustedMeasurementSchema = z.object({
  id: z.number().int(),
  node_size: z.string(),
  mrtd: z.string(),
  rtmr: z.array(z.string()).nullable(),
  note: z.string().nullable(),
  added_by: z.string(),
  added_at: z.string(),
});

/** Measurements of registrations refused with EE-ATT-MRTD-NOT-ALLOWED or EE-ATT-RTMR-NOT-ALLOWED */
export const measurementBaselineSchema = z.object({
  id: z.number().int(),
  node_size: z.string(),
  mrtd: z.string(),
  rtmr: z.array(z.string()),
  first_seen: z.string(),
  last_seen: z.string(),
  count: z.number().int(),
  last_vm_name: z.string().nullable(),
  last_agent_id: z.string().nullable(),
});

export const eventSchema = z.object({
  id: z.number().int(),
  at: z.string(),
  kind: z.string(),
  agent_id: z.string().nullable(),
  data: z.looseObject({}),
});

/** One Stately-inspector event as @statelyai/inspect sends it, scrubbed: bytes as lowercase hex (large blobs */
export const inspectionEventSchema = z.object({
  type: z.enum(["@xstate.actor", "@xstate.snapshot", "@xstate.event"]),
  sessionId: z.string(),
  rootId: z.string().optional(),
  name: z.string().optional(),
  definition: z.string().optional(),
  snapshot: z.looseObject({}).optional(),
  event: z.looseObject({}).optional(),
  createdAt: z.string().optional(),
  parentId: z.string().nullable().optional(),
  sourceId: z.string().nullable().optional(),
  id: z.string().nullable().optional(),
  _version: z.string().optional(),
});

export const datacenterSchema = z.object({
  dc_id: z.string(),
  status: z.enum(["healthy", "degraded"]),
  lag_s: z.number().nullable(),
  last_seq: z.number().int(),
  outbox_seq: z.number().int().optional(),
  pending: z.number().int().nullable().optional(),
  applied: z.number().int().optional(),
  duplicates_skipped: z.number().int().optional(),
  last_event_at: z.string().nullable().optional(),
  agents: z.object({
    total: z.number().int(),
    connected: z.number().int(),
    by_state: z.record(z.string(), z.number().int()),
  }),
});

export const collateralCoverageSchema = z.object({
  fmspc: z.string().nullable(),
  tcb_status: z.string().nullable(),
  advisory_ids: z.array(z.string()),
  reason: z.string().nullable(),
});

export const agentSchema = z.object({
  agent_id: z.string(),
  vm_name: z.string().nullable(),
  node_size: z.string().nullable(),
  datacenter: z.string().nullable(),
  state: agentStateSchema,
  connected: z.boolean().optional(),
  registered_at: z.string().nullable().optional(),
  last_heartbeat_at: z.string().nullable(),
  heartbeat_seq: z.number().int().optional(),
  deployment_id: z.string().nullable(),
  app: z.string().nullable().optional(),
  attestation: z
    .object({
      status: z.enum(["ok", "failed"]).optional(),
      attested_at: z.string().nullable().optional(),
      mrtd: z.string().nullable().optional(),
      trust_root: z.enum(["intel", "dev"]).nullable().optional(),
      collateral: z.union([z.null(), collateralCoverageSchema]).optional(),
    })
    .optional(),
  reason: z.string().nullable().optional(),
  rehydrated: z.boolean().optional(),
  recovered: z.boolean().optional(),
  /** An admin drained the agent (here, or on a dc by the federation master): it keeps its workload, gets nothing new. */
  drained: z.boolean().optional(),
  dc_id: z.string().optional(),
});

export const capacityTargetSchema = z.object({
  datacenter: z.string(),
  node_size: z.string(),
  min_warm: z.number().int(),
  updated_at: z.string(),
});

export const launchOrderSchema = z.object({
  order_id: z.string(),
  datacenter: z.string(),
  node_size: z.string(),
  status: z.enum(ORDER_STATUSES),
  agent_id: z.string().optional(),
  reason: z.string().optional(),
  lease_expires_at: z.string().optional(),
  created_at: z.string(),
  updated_at: z.string(),
});

// What the REST handlers build (transport/rest/*): their JSON builders are typed by these, so a field a
// handler adds or drops without the contract does not compile.
export type AccountJson = z.output<typeof accountSchema>;
export type AgentJson = z.output<typeof agentSchema>;
export type ApiKeyJson = z.output<typeof apiKeySchema>;
export type AppJson = z.output<typeof appSchema>;
export type AuditRecordJson = z.output<typeof auditRecordSchema>;
export type CapacityTargetJson = z.output<typeof capacityTargetSchema>;
export type DatacenterJson = z.output<typeof datacenterSchema>;
export type DeploymentJson = z.output<typeof deploymentSchema>;
export type EventJson = z.output<typeof eventSchema>;
export type LaunchOrderJson = z.output<typeof launchOrderSchema>;
export type LedgerEntryJson = z.output<typeof ledgerEntrySchema>;
export type MeasurementBaselineJson = z.output<typeof measurementBaselineSchema>;
export type OidcBindingJson = z.output<typeof oidcBindingSchema>;
export type PreflightJson = z.output<typeof preflightSchema>;
export type RateCardJson = z.output<typeof rateCardSchema>;
export type TrustedMeasurementJson = z.output<typeof trustedMeasurementSchema>;
