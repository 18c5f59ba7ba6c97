// The contract for deployments and apps as the REST layer and eectl see them: the durable deployment and app
// records (actors/store/deployment-store.ts), a deploy request and its placement (actors/placement.ts decides
// it), preflight's answer, capacity's hint when nothing fits, and the ports the REST routes call (implemented by
// actors/deployments.ts and actors/capacity/capacity.ts). Types only; may import spec/ and machines/ (the
// deployment status union) for types, and the placement reasons' type from rest-responses.ts.
import type { z } from "zod";
import type { SessionState } from "../machines/agent-session.ts";
import type { DeploymentStatus, ProgressEntry } from "../machines/deployment.ts";
import type { ImageRef, RegistryAuth } from "../spec/images.ts";
import type { HealthSpec } from "../spec/protocol.ts";
import type { AuditEntry } from "./identity.ts";
import type { placementReasonSchema } from "./rest-responses.ts";

export type { DeploymentStatus, ProgressEntry };

export interface DeploymentRequestRecord {
  node_size?: string;
  datacenter?: string;
  agent_id?: string;
  health?: HealthSpec;
  /** Size of the build context sent, when there was one (the bytes are not kept). */
  context_bytes?: number;
  /** Update in place: the deployment this one replaced (set at create). */
  replaces?: string;
  /** Set on a replaced deployment when its successor took over; kept here to need no new column. */
  replaced_by?: string;
  /** An agent reported it and this CP did not sign it (actors/deployments.ts #adopt); here to need no new column. */
  unrecognized?: true;
}

export interface DeploymentRow {
  deployment_id: string;
  app: string;
  app_version: string | null;
  agent_id: string;
  status: DeploymentStatus;
  code: string | null;
  message: string | null;
  compose_hash: string | null;
  images: ImageRef[];
  progress: ProgressEntry[];
  request: DeploymentRequestRecord;
  /** '' when rehydrated: the CP learned of the deployment from its agent after losing the record. */
  compose: string;
  created_at: number;
  updated_at: number;
  /** Recreated from an agent's report rather than from a request this CP (or its database) saw. */
  rehydrated: boolean;
}

export interface AppRow {
  name: string;
  version: string;
  compose: string;
  compose_hash: string;
  health: HealthSpec | null;
  created_at: number;
}

export interface PlacementRequest {
  node_size?: string;
  datacenter?: string;
  agent_id?: string;
  /** The tenant account asking; absent for the admin, whom no dedication turns away. */
  tenant?: string;
}

/** Why placement passed over an agent; the list is the REST contract's placementReasonSchema. */
export type PlacementReason = z.infer<typeof placementReasonSchema>;

export interface Candidate {
  agent_id: string;
  vm_name: string | null;
  node_size: string | null;
  datacenter: string | null;
  state: SessionState;
  eligible: boolean;
  reasons: PlacementReason[];
}

export interface Placement {
  chosen: Candidate | null;
  considered: number;
  /** Every agent considered, eligible ones first, each group in agent_id order; at most CANDIDATES_LISTED. */
  candidates: Candidate[];
  /** How many agents each reason excluded (an agent can count under several). */
  counts: Partial<Record<PlacementReason, number>>;
}

export interface DeploymentRequest extends PlacementRequest {
  /** `name` with `compose`, or `name@version` (or `name`, the newest version) of a registered app. */
  app: string;
  compose?: string;
  /** Build context (tar) for services with `build`. */
  context?: Uint8Array;
  health?: HealthSpec;
  /** Registry credentials: sealed to the chosen agent in the deploy frame, kept nowhere else. */
  registry_auth?: RegistryAuth;
  /** Update in place: a healthy deployment of the same app name (any version), replaced once this one is healthy. */
  replaces?: string;
  /** The tenant account deploying (placement skips agents dedicated to another); absent for the admin. */
  tenant?: string;
}

export interface PreflightResult {
  ok: boolean;
  app: string;
  app_version: string | null;
  compose_hash: string;
  services: string[];
  placement: Placement;
}

/** What preflight and a refused deploy add when no agent fits (error.details.capacity). */
export interface CapacityHint {
  code: "EE-CAP-WARM-PENDING" | "EE-CAP-NO-ELIGIBLE";
  message: string;
  orders_in_flight: number;
}

/** A deploy's answer: the deployment and its agent; `replayed` when the Idempotency-Key had been seen. */
export interface Created {
  deployment_id: string;
  agent_id: string;
  replayed: boolean;
}

/** What registering an app names (POST /api/v2/apps). */
export interface NewApp {
  name: string;
  version: string;
  compose: string;
  health?: HealthSpec;
}

/** Deployments and the app registry, as the REST routes use them (actors/deployments.ts). */
export interface DeploymentsPort {
  preflight(req: DeploymentRequest): Promise<PreflightResult>;
  /** Funds are checked first, and a federation master may have to queue the deploy for a dc: a promise. */
  create(req: DeploymentRequest, idempotencyKey?: string): Promise<Created>;
  get(id: string): DeploymentRow;
  list(opts: { status?: DeploymentStatus; limit?: number }): DeploymentRow[];
  undeploy(id: string): DeploymentRow | Promise<DeploymentRow>;
  /** Registers name@version; the audit record commits with it. */
  registerApp(app: NewApp, audit: AuditEntry | null): Promise<AppRow>;
  apps(): AppRow[];
}

/** Why no agent fits, as capacity sees it (actors/capacity/capacity.ts). */
export interface CapacityHintPort {
  hint(req: { datacenter?: string; node_size?: string }): Promise<CapacityHint>;
}
