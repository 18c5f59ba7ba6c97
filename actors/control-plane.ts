// Composition root of the control plane: opens the store, builds trust anchors, the supervisor and read model,
// wires the agent channel and the REST API onto one HTTP server. Bootstrap state (admin token digest, trust
// roots, the CP identity key) comes from flags and files here; runtime state lives only in the actors.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { agentIdFromPubkey } from "../attestation/agent-key.ts";
import {
  type CollateralSource,
  chainCollateralSources,
  type FileCollateral,
} from "../attestation/collateral-store.ts";
import { createEnvelopeSigner, type EnvelopeSigner, quoteCpKey } from "../attestation/cp-envelope.ts";
import { loadDevRootPem } from "../attestation/dev-pki.ts";
import { PccsCollateralSource } from "../attestation/pccs.ts";
import type { MeasurementPolicy } from "../attestation/policy.ts";
import type { QuoteProvider } from "../attestation/providers/provider.ts";
import { createTrustAnchors } from "../attestation/trust.ts";
import { Charger } from "../billing/charger.ts";
import { Ledger } from "../billing/ledger.ts";
import { ownerParties } from "../billing/parties.ts";
import { loadWebhookSecret } from "../billing/webhook.ts";
import type { OidcVerifierConfig } from "../identity/oidc-verifier.ts";
import { ensureDataDir } from "../lib/data-dir.ts";
import { listenOn } from "../lib/listen.ts";
import type { Logger } from "../lib/log.ts";
import { loadServerTls, type ServerTls, type ServerTlsFiles } from "../lib/tls-files.ts";
import { LIVE_STATES } from "../machines/agent-session.ts";
import { EeError, NotFoundError, ValidationError } from "../spec/errors.ts";
import { statelyObserver } from "../transport/inspection.ts";
import { createRestApp } from "../transport/rest/app.ts";
import type { AgentReadsPort } from "../transport/rest/deployments.ts";
import { toPlainJson } from "../transport/rest/json.ts";
import type { MetricFamily } from "../transport/rest/metrics.ts";
import { loadOpenApi } from "../transport/rest/openapi.ts";
import type { CpView } from "../transport/rest/view.ts";
import { AgentChannel, type ChannelSink, type HandshakeLimits } from "../transport/ws-server.ts";
import { resolveAdminToken, watchAdminToken } from "./admin-token.ts";
import { AgentIndex } from "./agent-index.ts";
import { AgentRequests } from "./agent-requests.ts";
import { AttestationSettings, extendLive } from "./attestation-settings.ts";
import { loadOrCreateSecret, PLACEMENT_SECRET_FILE, STORE_KEY_FILE } from "./bootstrap-secret.ts";
import { Enrollments } from "./business/enrollment.ts";
import { Identity } from "./business/identity.ts";
import { oidcExchangePort } from "./business/oidc-port.ts";
import { openBusinessState } from "./business/open.ts";
import { Capacity } from "./capacity/capacity.ts";
import type { CapacityTimings } from "./capacity/defaults.ts";
import type { SizePreset } from "./capacity/sizes.ts";
import { warnExpiredCollateral, warnUncoveredPlatforms } from "./collateral-warnings.ts";
import { BILLING_DEFAULTS, CP_DEFAULTS, heartbeatFor, REST_TIMEOUTS } from "./cp-defaults.ts";
import { Deployments } from "./deployments.ts";
import { Drains } from "./drains.ts";
import type { Federation, FederationOptions } from "./federation/federation.ts";
import { chooseMeasurementPolicy, logMeasurementChoice } from "./measurement-default.ts";
import { NonceBook } from "./nonce-book.ts";
import { READINESS_DEFAULTS, Readiness } from "./readiness.ts";
import { Reattestor } from "./reattestation.ts";
import { RefusalAudit } from "./refusal-audit.ts";
import { DEFAULT_NODE_SIZES, gateRegister } from "./registration.ts";
import { RuntimeCheckpoint } from "./store/checkpoint.ts";
import { openDatabase } from "./store/db.ts";
import { DeploymentStore } from "./store/deployment-store.ts";
import { EventLog } from "./store/event-log.ts";
import { TextSealer } from "./store/sealed-text.ts";
import { Supervisor } from "./supervisor.ts";
import { TrustedMeasurements } from "./trusted-measurements.ts";

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
  stop(): Promise<void>;
}

const CP_IDENTITY_FILE = "cp-identity.key";

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const { log } = opts;
  const staleAfterMs = opts.staleAfterMs ?? CP_DEFAULTS.staleAfterMs;
  const heartbeatMs = opts.heartbeatMs ?? heartbeatFor(staleAfterMs);
  const forgetAfterMs = opts.forgetAfterMs ?? CP_DEFAULTS.forgetAfterMs;
  if (staleAfterMs <= heartbeatMs) {
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `heartbeat-ms (${heartbeatMs}) must be less than stale-after-ms (${staleAfterMs}): agents heartbeating that seldom would always be stale`,
    );
  }
  const measurementChoice = chooseMeasurementPolicy({
    ...(opts.policy ? { policy: opts.policy } : {}),
    dev: opts.devAttestationDir !== undefined,
    refuseUnknown: opts.refuseUnknownMeasurements === true,
  });
  // Before anything is made: an unusable certificate or key must leave no data dir, store or port behind.
  const tls = opts.tls ? loadServerTls(opts.tls) : null;
  ensureDataDir(opts.dataDir, opts.settings?.dataDir ?? "--data-dir");
  // Written to the data dir only once the CP serves: a failed first start must not store a token nobody saw.
  const admin = resolveAdminToken(opts.dataDir, opts.adminToken);
  const envelope = await envelopeSigner(opts);

  let devRootPem: string | undefined;
  if (opts.devAttestationDir) {
    devRootPem = loadDevRootPem(opts.devAttestationDir);
    log.warn(
      { dir: opts.devAttestationDir },
      "DEV ATTESTATION ENABLED: quotes signed by a development root are trusted. Never use this in production.",
    );
  }
  const trust = createTrustAnchors(devRootPem === undefined ? {} : { devRootPem });
  if (opts.collateral) warnExpiredCollateral(log, opts.collateral, new Date());
  const webhookSecret = opts.billing?.webhookSecretFile
    ? loadWebhookSecret(opts.billing.webhookSecretFile)
    : null;
  const configured = collateralSource(opts);
  const collateral = configured && warnUncoveredPlatforms(configured, log);

  const db = openDatabase(opts.dataDir);
  // Compose texts are sealed at rest in both databases under the one store key.
  const sealer = new TextSealer(loadOrCreateSecret(opts.dataDir, STORE_KEY_FILE));
  // Durable business state (accounts, keys, owners, apps, the audit chain, the ledger, capacity) in its own file or
  // in PostgreSQL: the runtime DB above may be lost (the DB-wipe drill) without touching it.
  const state = await openBusinessState({
    dataDir: opts.dataDir,
    ...(opts.businessDb ? { url: opts.businessDb } : {}),
    sealer,
    onError: (err) => log.error({ err }, "business store write failed"),
  }).catch((err) => {
    db.close();
    throw err;
  });
  log.info({ business_db: state.where }, "business state opened");
  const business = state.business;
  const identity = new Identity({ store: business, adminDigest: admin.digest, log });
  const enrollments = new Enrollments({ store: business, log });
  await enrollments.load();
  const events = new EventLog(db, (err) => log.error({ err }, "event log write failed"));
  const index = new AgentIndex({ staleAfterMs });
  const drains = new Drains({ db, events });
  const nonces = new NonceBook({ ttlMs: opts.challengeTtlMs ?? CP_DEFAULTS.challengeTtlMs });
  const channel = new AgentChannel({
    log,
    handshake: {
      deadlineMs: CP_DEFAULTS.handshakeMs,
      maxPendingPerAddress: CP_DEFAULTS.maxPendingPerAddress,
      maxPending: CP_DEFAULTS.maxPending,
      ...opts.handshake,
    },
  });
  const refusals = new RefusalAudit({
    append: (event) => events.append(event),
    intervalMs: opts.refusalAuditMs ?? CP_DEFAULTS.refusalAuditMs,
  });
  refusals.start();
  const measurement = measurementChoice.policy;
  logMeasurementChoice(log, measurementChoice);
  const nodeSizes = new Set(opts.nodeSizes ?? DEFAULT_NODE_SIZES);
  const trusted = new TrustedMeasurements({
    db,
    events,
    nodeSizes,
    onError: (err) => log.error({ err }, "measurement baseline write failed"),
  });
  // What registration and re-attestation verify quotes against; trust and measurement stay live getters, since a
  // federation dc takes the master's (attestation-settings.ts).
  const attestation = new AttestationSettings({ trust, measurement }, log);
  const quotePolicy = extendLive(attestation.live(), { ...(collateral ? { collateral } : {}), trusted });
  const reattestMs = opts.reattestMs ?? CP_DEFAULTS.reattestMs;
  // One missed re-attestation round is tolerated (the request may still be in flight); two are not.
  const attestationMaxAgeMs = 2 * reattestMs + 60_000;
  // Capacity (targets, reservations, orders, token digests) is durable business state: the DB-wipe drill leaves
  // it intact.
  const capacity = new Capacity({
    store: state.capacity,
    index,
    events,
    log,
    nodeSizes,
    ...(opts.sizePresets ? { sizePresets: opts.sizePresets } : {}),
    attestationMaxAgeMs,
    drained: (agentId) => drains.has(agentId),
    ...opts.capacity,
  });
  const supervisor = new Supervisor({
    link: channel,
    index,
    events,
    log,
    heartbeatMs,
    staleAfterMs,
    forgetAfterMs,
    policy: extendLive(quotePolicy, {
      nodeSizes,
      consumeBootstrap: (token: string, agent: Parameters<Capacity["consumeBootstrap"]>[1], at: number) =>
        capacity.consumeBootstrap(token, agent, at),
    }),
    cpPubkey: envelope.publicKey,
  });

  const reattestor = new Reattestor({
    supervisor,
    index,
    link: channel,
    policy: quotePolicy,
    log,
    intervalMs: reattestMs,
    timeoutMs: opts.reattestTimeoutMs ?? Math.min(30_000, reattestMs),
    expectedWorkloadHash: (agentId) => deployments.runningWorkloadHash(agentId),
  });
  reattestor.start();

  const startedAt = Date.now();
  const checkpoint = new RuntimeCheckpoint(db);
  const readiness = new Readiness({
    ...READINESS_DEFAULTS,
    ...opts.readiness,
    knownBefore: checkpoint.read(),
    startedAt,
  });
  const offReadiness = index.onTransition((t) => {
    if (t.from === "challenged" && LIVE_STATES.has(t.to)) readiness.registered(t.agent_id, t.at);
  });
  const readinessWatch = watchReadiness(readiness, log);
  const checkpointTimer = setInterval(
    () => writeCheckpoint(checkpoint, index, log),
    opts.checkpointMs ?? 5_000,
  );
  checkpointTimer.unref();
  const deploymentStore = new DeploymentStore(db, sealer, (err) =>
    log.error({ err }, "deployment record write failed"),
  );
  const parties = ownerParties(business);
  const ledger = new Ledger({
    store: state.ledger,
    periodS: opts.billing?.periodS ?? BILLING_DEFAULTS.periodS,
    ...(opts.billing?.now ? { now: opts.billing.now } : {}),
  });
  const requests = new AgentRequests({ link: channel, connOf: (id) => supervisor.connOf(id), log });
  const imported = await state.importApps(db);
  if (imported > 0)
    log.info({ apps: imported }, "registered apps copied from the runtime DB to the business store");
  const placementSecret = loadOrCreateSecret(opts.dataDir, PLACEMENT_SECRET_FILE);
  const deployments = new Deployments({
    store: deploymentStore,
    apps: business,
    index,
    supervisor,
    link: channel,
    events,
    log,
    attestationMaxAgeMs,
    ...(opts.deployAckTimeoutMs ? { ackTimeoutMs: opts.deployAckTimeoutMs } : {}),
    readiness: () => readiness.status(Date.now()),
    envelope,
    placementSecret,
    ...(opts.requirePinnedImages ? { requirePinnedImages: true } : {}),
    funds: (tenant) => ledger.fundsCheck(tenant),
    dedicatedTo: (agentId) => enrollments.dedicatedTo(agentId),
    drained: (agentId) => drains.has(agentId),
    masterApp: (name, version) => federation?.masterApp?.(name, version),
  });
  const resumed = deployments.resume();
  if (resumed > 0) log.info({ deployments: resumed }, "resumed deployments from the store");
  const charger = new Charger({
    ledger,
    parties,
    running: () =>
      deployments.healthy().map((d) => ({ ...d, node_size: index.get(d.agent_id)?.node_size ?? null })),
    undeploy: (id) => deployments.undeploy(id),
    // On the business audit chain with deposits and rate changes: a dry tenant's undeploy is a billing decision.
    audit: (kind, data) =>
      identity
        .audit({
          principal: "system",
          action: kind,
          target: `deployment:${String(data.deployment_id)}`,
          outcome: "ok",
          details: data,
        })
        .catch((err: unknown) => log.error({ err }, "audit record write failed")),
    log,
    graceS: opts.billing?.graceS ?? BILLING_DEFAULTS.graceS,
    ...(opts.billing?.now ? { now: opts.billing.now } : {}),
    ...(opts.billing?.tickMs ? { tickMs: opts.billing.tickMs } : {}),
  });

  const sink: ChannelSink = {
    opened: (connId, at) => {
      const { nonce, expiresAt } = nonces.issue(connId, at);
      return { nonce, expires_at: expiresAt, server_time: at };
    },
    registerFrame: (connId, sessionId, body, at) => {
      gateRegister(nonces, connId, body, at);
      // After the gate: the agent proved it holds the key its id comes from, so the token binds that agent.
      const agentId = agentIdFromPubkey(body.agent_pubkey);
      try {
        enrollments.register(body.enrollment_token, agentId, at);
      } catch (err) {
        identity
          .audit({
            principal: "anonymous",
            action: "agent.enroll",
            target: `agent:${agentId}`,
            outcome: err instanceof EeError ? err.code : "EE-INTERNAL",
          })
          .catch((e: unknown) => log.error({ err: e }, "audit record write failed"));
        throw err;
      }
      return supervisor.register({ connId, sessionId, nonce: body.nonce, body, at });
    },
    heartbeat: (agentId, connId, env) =>
      supervisor.heartbeat(agentId, connId, env.id, env.body.seq, env.body.workload),
    attestation: (agentId, connId, env) => reattestor.answer(agentId, connId, env.re, env.body),
    deployStatus: (agentId, _connId, env) => deployments.status(agentId, env.body),
    reply: (agentId, _connId, env) => {
      if (!requests.reply(agentId, env.re, env.body.result))
        log.warn({ agent_id: agentId, re: env.re }, "reply to no pending request");
    },
    logChunk: (agentId, _connId, env) => {
      if (!requests.chunk(agentId, env.re, env.body))
        log.debug({ agent_id: agentId, re: env.re }, "log chunk for no pending request");
    },
    agentError: (agentId, _connId, env) => {
      if (requests.error(agentId, env.re, env.body)) return;
      log.warn({ agent_id: agentId, code: env.body.code, re: env.re }, "agent reported an error");
    },
    closed: (connId, agentId) => {
      nonces.forget(connId);
      if (agentId === null) return;
      reattestor.forget(agentId, connId);
      requests.forget(agentId, connId);
      supervisor.disconnected(agentId, connId);
    },
    refused: (connId, code, remote) => refusals.refused(connId, code, remote),
  };
  channel.bind(sink);

  let federation: Federation | undefined;
  /** Stops what the start set going (timers, actors, the channel): on a failed start and on stop. */
  const release = async () => {
    await federation?.stop();
    reattestor.stop();
    await charger.stop();
    await capacity.stop();
    clearInterval(checkpointTimer);
    clearInterval(readinessWatch);
    offReadiness();
    deployments.stop();
    await channel.shutdown();
    refusals.stop();
    supervisor.stopAll();
  };
  const closeStore = async () => {
    events.flush();
    deploymentStore.flush();
    trusted.flush();
    db.close();
    identity.stop();
    await state.close();
  };
  const knownAgent = (agentId: string): string => {
    if (!index.get(agentId))
      throw new NotFoundError("EE-NOT-FOUND", `agent ${agentId} is not known to this control plane`);
    return agentId;
  };
  const localReads: AgentReadsPort = {
    request: (agentId, type) => requests.request(knownAgent(agentId), type),
    logs: (agentId, body, onChunk, signal) => requests.logs(knownAgent(agentId), body, onChunk, signal),
  };
  /** The live actor's state value and context as plain JSON: shown here, or relayed to a master by a dc. */
  const machineOf = (id: string) => {
    const snap = supervisor.get(id)?.getSnapshot();
    return snap
      ? (toPlainJson({ value: snap.value, context: snap.context }) as Record<string, unknown>)
      : undefined;
  };
  if (opts.federation) {
    const { startFederation } = await import("./federation/federation.ts");
    try {
      federation = await startFederation(opts.federation, {
        index,
        events,
        deployments,
        log,
        placementSecret,
        attestationMaxAgeMs,
        trusted,
        apps: () => business.apps(),
        // The envelope signer's key (created above): the master signs desired state with the same identity.
        identityKey: loadOrCreateCpKey(join(opts.dataDir, CP_IDENTITY_FILE)),
        dataDir: opts.dataDir,
        drains,
        attestation,
        policy: opts.policy ?? null,
        reads: localReads,
        machine: machineOf,
      });
    } catch (err) {
      await release();
      await closeStore();
      throw err;
    }
  }
  const view: CpView = {
    readiness: () => ({ ...readiness.status(Date.now()) }),
    agents: () => federation?.agents() ?? index.values(),
    // A master's dc agents too: their reads are relayed to their dc.
    agent: federation?.agent ?? ((id) => index.get(id)),
    drained: (id) => drains.has(id),
    setDrained: (id, drained, by) => {
      // A master may drain a dc's agent: the drain travels in its desired state (desired-publisher.ts).
      const rec = index.get(id) ?? [...(federation?.agents() ?? [])].find((a) => a.agent_id === id);
      if (!rec) throw new NotFoundError("EE-NOT-FOUND", `agent ${id} is not known to this control plane`);
      if (drained) drains.drain(id, by);
      else drains.undrain(id, by);
      return rec;
    },
    machine: federation?.relayed?.machine ?? machineOf,
    onTransition: (listener) => index.onTransition(listener),
    events: (q) => events.list(q),
    followEvents: (listener) => events.follow(listener),
    metrics: () => [
      ...cpMetrics({ index, supervisor, deployments, requests, channel, refusals, startedAt }),
      ...capacity.metrics(),
      ...(federation?.metrics?.() ?? []),
    ],
  };
  const app = createRestApp({
    view,
    adminTokenDigest: admin.digest,
    identity,
    enrollments,
    ...(opts.oidc ? { oidcExchange: oidcExchangePort(opts.oidc, identity, business) } : {}),
    openapi: loadOpenApi,
    log,
    measurements: trusted,
    deployments: federation?.deployments ?? deployments,
    ...(federation?.datacenters ? { datacenters: federation.datacenters } : {}),
    agentReads: federation?.relayed?.reads ?? localReads,
    billing: { ledger, account: (id) => business.account(id), webhookSecret },
    capacity,
    inspection: {
      agent: async (id, emit, end) => supervisor.inspect(id, await statelyObserver(emit), end),
      deployment: async (id, emit, end) => deployments.inspect(id, await statelyObserver(emit), end),
    },
  });
  const timeouts = { ...REST_TIMEOUTS, ...opts.restTimeouts };
  // The same request deadlines over https: a slow client must be cut there too.
  const serverOptions = {
    headersTimeout: timeouts.headersTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    connectionsCheckingInterval: timeouts.checkIntervalMs,
  };
  const httpsServer = tls
    ? createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key }, app.callback())
    : null;
  const server = httpsServer ?? createServer(serverOptions, app.callback());
  channel.attach(server);
  try {
    await listenOn(server, {
      host: opts.host,
      port: opts.port,
      setting: opts.settings?.listen ?? "--listen HOST:PORT",
      backlog: LISTEN_BACKLOG,
    });
  } catch (err) {
    // No checkpoint: this start saw no agent, and an empty one would mislead the next start's readiness rule.
    await release();
    await closeStore();
    throw err;
  }
  admin.persist();
  charger.start();
  capacity.start();
  const unwatchAdmin = watchAdminToken(admin, (err) =>
    err
      ? log.error(
          { err, file: admin.file },
          "the admin token file changed but cannot be read; the old token stays",
        )
      : log.warn({ file: admin.file }, "admin token rotated: the previous token no longer works"),
  );
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  events.append({
    at: Date.now(),
    kind: "cp.started",
    data: {
      port,
      dev_attestation: devRootPem !== undefined,
      cp_pubkey: Buffer.from(envelope.publicKey).toString("hex"),
      cp_attestation: opts.quoteProvider?.name ?? null,
    },
  });
  log.info(
    {
      port,
      data_dir: opts.dataDir,
      tls: tls ? { serial: tls.serial, fingerprint256: tls.fingerprint256 } : null,
    },
    "control plane serving",
  );
  const tlsFiles = opts.tls;
  // setSecureContext changes what new handshakes get; an open TLS connection keeps the context it was made with.
  const reloadTls =
    httpsServer && tlsFiles
      ? () => {
          const next = loadServerTls(tlsFiles);
          httpsServer.setSecureContext({ cert: next.cert, key: next.key });
          return next;
        }
      : null;

  return {
    url: `${tls ? "https" : "http"}://${hostForUrl}:${port}`,
    wsUrl: `${tls ? "wss" : "ws"}://${hostForUrl}:${port}`,
    port,
    generatedAdminToken: admin.generated,
    storedAdminTokenFile: admin.stored ? admin.file : null,
    supervisor,
    index,
    events,
    deployments,
    charger,
    capacity,
    identity,
    reloadTls,
    stop: async () => {
      unwatchAdmin();
      writeCheckpoint(checkpoint, index, log);
      await release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      events.append({ at: Date.now(), kind: "cp.stopped", data: {} });
      await closeStore();
    },
  };
}

/**
 * The CP identity key (DATA_DIR/cp-identity.key, Ed25519, 0600; bootstrap state, never in the DB) as an envelope
 * signer, with this start's quote over its public key when the CP has a quote provider.
 */
async function envelopeSigner(opts: ControlPlaneOptions): Promise<EnvelopeSigner> {
  const privateKey = loadOrCreateCpKey(join(opts.dataDir, CP_IDENTITY_FILE));
  const unquoted = createEnvelopeSigner({ privateKey });
  const pub = Buffer.from(unquoted.publicKey).toString("hex");
  if (!opts.quoteProvider) {
    opts.log.info({ cp_pubkey: pub }, "CP identity (no quote provider: envelopes are signed, not attested)");
    return unquoted;
  }
  const quote = await quoteCpKey(opts.quoteProvider, unquoted.publicKey);
  opts.log.info({ cp_pubkey: pub, provider: opts.quoteProvider.name }, "CP identity, attested");
  return createEnvelopeSigner({ privateKey, quote });
}

function loadOrCreateCpKey(file: string): KeyObject {
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" });
    try {
      // Exclusive create: a CP racing us on the same data dir keeps its key, and we read it below.
      writeFileSync(file, pem, { mode: 0o600, flag: "wx" });
      return privateKey;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, "utf8"));
  } catch {
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not an Ed25519 key`);
  return key;
}

/** Files first, then the PCCS: a file pins a platform's collateral even when a PCCS is configured. */
function collateralSource(opts: ControlPlaneOptions): CollateralSource | undefined {
  if (!opts.collateralUrl) return opts.collateral;
  const pccs = new PccsCollateralSource({
    url: opts.collateralUrl,
    cacheDir: join(opts.dataDir, "collateral-cache"),
    warn: (message, err) => opts.log.warn({ err }, message),
  });
  return opts.collateral ? chainCollateralSources([opts.collateral, pccs]) : pccs;
}

/**
 * Pending connections the kernel queues for accept (capped by net.core.somaxconn, 4096 by default on Linux).
 * Node's default of 511 overflowed in every registration storm: at 10,000 agents reconnecting at once, tens of
 * thousands of SYNs were dropped and retried a second or more later (test/load, `nstat` ListenOverflows).
 */
const LISTEN_BACKLOG = 4096;

function cpMetrics(o: {
  index: AgentIndex;
  supervisor: Supervisor;
  deployments: Deployments;
  requests: AgentRequests;
  channel: AgentChannel;
  refusals: RefusalAudit;
  startedAt: number;
}): MetricFamily[] {
  const byState = new Map<string, number>();
  let connected = 0;
  let attestationFailed = 0;
  for (const r of o.index.values()) {
    byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    if (r.connected) connected++;
    if (r.attestation_status === "failed") attestationFailed++;
  }
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return [
    {
      name: "ee_agents",
      help: "Agents known to this control plane, by session state.",
      type: "gauge",
      samples: [...byState].map(([state, value]) => ({ labels: { state }, value })),
    },
    {
      name: "ee_agents_connected",
      help: "Agents with an open WebSocket.",
      type: "gauge",
      samples: [{ value: connected }],
    },
    {
      name: "ee_agents_attestation_failed",
      help: "Agents whose latest re-attestation failed (out of placement).",
      type: "gauge",
      samples: [{ value: attestationFailed }],
    },
    {
      name: "ee_deployments_live",
      help: "Deployments with a live actor, by status.",
      type: "gauge",
      samples: Object.entries(o.deployments.liveByStatus()).map(([status, value]) => ({
        labels: { status },
        value,
      })),
    },
    {
      name: "ee_agent_requests_pending",
      help: "Relayed requests (logs, stats, snapshot) waiting for an agent.",
      type: "gauge",
      samples: [{ value: o.requests.size }],
    },
    {
      name: "ee_agent_connections_pending",
      help: "Agent WebSocket connections that have not registered yet (bounded by the handshake caps).",
      type: "gauge",
      samples: [{ value: o.channel.pendingCount }],
    },
    {
      name: "ee_agent_connections_refused_total",
      help: "Agent connections refused (upgrade caps, handshake timeouts, bad frames, gate failures), by reason.",
      type: "counter",
      samples: [...o.refusals.totals()].map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: "process_resident_memory_bytes",
      help: "Resident memory.",
      type: "gauge",
      samples: [{ value: mem.rss }],
    },
    {
      name: "process_cpu_seconds_total",
      help: "User and system CPU time.",
      type: "counter",
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    {
      name: "process_start_time_seconds",
      help: "When the control plane started.",
      type: "gauge",
      samples: [{ value: Math.floor(o.startedAt / 1000) }],
    },
  ];
}

function writeCheckpoint(checkpoint: RuntimeCheckpoint, index: AgentIndex, log: Logger): void {
  const live: string[] = [];
  for (const r of index.values()) if (r.connected && LIVE_STATES.has(r.state)) live.push(r.agent_id);
  try {
    checkpoint.write(live, Date.now());
  } catch (err) {
    log.error({ err }, "writing the runtime checkpoint failed");
  }
}

/** Logs why the CP is not ready yet (every few seconds) and, once, that it is: operators see it in the log. */
function watchReadiness(readiness: Readiness, log: Logger): NodeJS.Timeout {
  let lastLog = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const s = readiness.status(now);
    if (s.ready) {
      clearInterval(timer);
      log.info({ rule: s.rule, back: s.back, known_before: s.known_before }, `ready: ${s.reason}`);
    } else if (now - lastLog >= 5_000) {
      lastLog = now;
      log.info({ rule: s.rule, back: s.back, needed: s.needed }, `not ready yet: ${s.reason}`);
    }
  }, 100);
  timer.unref();
  return timer;
}
