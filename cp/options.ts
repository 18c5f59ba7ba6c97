// What startControlPlane takes (flags and files, as the CLI and tests give them) and what it returns.
// Imports types only.

import type { AgentIndex } from "../actors/agent-index.ts";
import type { Identity } from "../actors/business/identity.ts";
import type { Capacity } from "../actors/capacity/capacity.ts";
import type { CapacityTimings } from "../actors/capacity/defaults.ts";
import type { SizePreset } from "../actors/capacity/sizes.ts";
import type { REST_TIMEOUTS } from "../actors/cp-defaults.ts";
import type { Deployments } from "../actors/deployments.ts";
import type { FederationOptions } from "../actors/federation/federation.ts";
import type { READINESS_DEFAULTS } from "../actors/readiness.ts";
import type { EventLog } from "../actors/store/event-log.ts";
import type { Supervisor } from "../actors/supervisor.ts";
import type { FileCollateral } from "../attestation/collateral-store.ts";
import type { MeasurementPolicy } from "../attestation/policy.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import type { Charger } from "../billing/charger.ts";
import type { OidcVerifierConfig } from "../identity/oidc-verifier.ts";
import type { Logger } from "../lib/log.ts";
import type { ServerTls, ServerTlsFiles } from "../lib/tls-files.ts";
import type { HandshakeLimits } from "../transport/ws-server.ts";
import type { Components } from "./components.ts";

export interface ControlPlaneOptions {
  host: string;
  port: number;
  dataDir: string;
  /** `postgres://…`: business state in PostgreSQL; else SQLite business.db under dataDir. */
  businessDb?: string;
  log: Logger;
  /** Else EE_ADMIN_TOKEN (read by the CLI), else the digest stored in the data dir, else generated. */
  adminToken?: string;
  /** Trust the development root in this directory (created by `eectl attest dev-init`). */
  devAttestationDir?: string;
  /** The heartbeat interval asked of agents (`registered.heartbeat_ms`); default heartbeatFor(staleAfterMs). */
  heartbeatMs?: number;
  staleAfterMs?: number;
  forgetAfterMs?: number;
  challengeTtlMs?: number;
  /** The handshake deadline and pending-connection caps (CP_DEFAULTS: handshakeMs, maxPending…). */
  handshake?: Partial<HandshakeLimits>;
  /** The interval refused connections are audited in aggregate over (CP_DEFAULTS.refusalAuditMs). */
  refusalAuditMs?: number;
  /** Re-attest every registered agent this often (purpose `refresh`). */
  reattestMs?: number;
  /** How long an agent has to answer a re-attestation; default the interval, at most 30 s. */
  reattestTimeoutMs?: number;
  nodeSizes?: readonly string[];
  /** Measurement policy (from `--policy FILE`); when absent, chooseMeasurementPolicy's default for the mode. */
  policy?: MeasurementPolicy;
  /** `--refuse-unknown-measurements`: without `policy`, refuse unapproved MRTD/RTMRs even in dev mode. */
  refuseUnknownMeasurements?: boolean;
  /** Collateral (`--collateral PATH`) for the platforms it covers: CRLs, TCB info, QE identity, TCB status. */
  collateral?: FileCollateral;
  /** PCCS/PCS base URL (`--collateral-url`): asked after `collateral`, cached in DATA_DIR/collateral-cache. */
  collateralUrl?: string;
  /** How long an agent has to report the first step of a deployment (default 30 s). */
  deployAckTimeoutMs?: number;
  /** `--require-pinned-images`: refuse images not pinned by `@sha256:` digest (EE-COMPOSE-UNPINNED). */
  requirePinnedImages?: boolean;
  /** The readiness rule's knobs (READINESS_DEFAULTS). */
  readiness?: Partial<typeof READINESS_DEFAULTS>;
  /** How often the live agent set is checkpointed for the next start's readiness rule. */
  checkpointMs?: number;
  /**
   * This CP's own quote provider (`--attestation`): quoted once at start over its identity key, the quote rides
   * in every deploy/undeploy envelope so agents can check which TD sends them commands. None: signature only.
   */
  quoteProvider?: QuoteProvider;
  /**
   * How the operator names the listen address and the data dir (defaults `--listen HOST:PORT`, `--data-dir`), so
   * a busy port or an unusable directory says what to change: `npm start` names its environment variables.
   */
  settings?: { listen?: string; dataDir?: string };
  /** `--role master|dc`: the NATS JetStream link (actors/federation/); absent, a standalone CP. */
  federation?: FederationOptions;
  /** The HTTP server's request deadlines (REST_TIMEOUTS); tests lower them to see a slow client cut. */
  restTimeouts?: Partial<typeof REST_TIMEOUTS>;
  /** `--oidc-issuer/--oidc-audience/--oidc-jwks`: exchange GitHub Actions tokens at POST /api/v2/auth/oidc. */
  oidc?: OidcVerifierConfig;
  /** `--tls-cert/--tls-key`: serve https and wss with this pair (read at start and again by reloadTls). */
  tls?: ServerTlsFiles;
  /** Capacity: the reconciler's period (`--reconcile-ms`), a launcher's lease, the grace of registered orders. */
  capacity?: Partial<CapacityTimings>;
  /** Node-size presets (vCPU, memory, GPU) over DEFAULT_SIZE_PRESETS. */
  sizePresets?: Record<string, SizePreset>;
  billing?: BillingOptions;
}

export interface BillingOptions {
  /** `--billing-period-s` (default 3600): the charging period. */
  periodS?: number;
  /** `--billing-grace-s` (default 3600): how long a dry tenant's deployment keeps running before it is undeployed. */
  graceS?: number;
  /** `--billing-webhook-secret-file`: the payment webhook's HMAC key; without it the webhook refuses everything. */
  webhookSecretFile?: string;
  /** The billing clock (tests drive it); default Date.now. */
  now?: () => number;
  /** How often the charger looks at the clock (default 1000 ms). */
  tickMs?: number;
}

export interface ControlPlane {
  /** https:// and wss:// when serving TLS. */
  url: string;
  wsUrl: string;
  port: number;
  /** Set only when this start generated the token: it is shown once and stored as a digest. */
  generatedAdminToken: string | null;
  /** Set when no token was given and the stored digest applies: the digest file's path. */
  storedAdminTokenFile: string | null;
  supervisor: Supervisor;
  index: AgentIndex;
  events: EventLog;
  deployments: Deployments;
  /** Closes billing periods; `tick()` looks at the billing clock now (tests that drive the clock call it). */
  charger: Charger;
  capacity: Capacity;
  /** Accounts, keys, ownership and the audit chain; `issueAccessToken` is what an OIDC exchange mints with. */
  identity: Identity;
  /**
   * Reads the TLS files again and serves the new pair to new connections; connections already open (agents)
   * keep theirs. A pair that does not load throws EE-TLS-INVALID and the old one stays. Null without TLS.
   */
  reloadTls: (() => ServerTls) | null;
  /** The CP's parts in the order they started (and, after stop, the order they stopped: the reverse). */
  components: Pick<Components, "started" | "stopped">;
  /** Stops every component, newest first. */
  stop(): Promise<void>;
}
