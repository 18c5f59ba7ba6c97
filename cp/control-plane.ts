// The control plane's composition root: cp/ sits above every layer and may import all of them. It builds the
// stores, trust anchors, the supervisor and read model, the deploy coordinator and the REST API as one ordered list
// of components (cp/components.ts) and serves the agent channel and REST on one HTTP server. Bootstrap state (admin
// token digest, trust roots, the CP identity key) comes from flags and files here; runtime state lives only in the
// actors.
import { join } from "node:path";
import { resolveAdminToken, watchAdminToken } from "../actors/admin-token.ts";
import { AgentIndex } from "../actors/agent-index.ts";
import { AgentRequests } from "../actors/agent-requests.ts";
import { AttestationSettings, extendLive } from "../actors/attestation-settings.ts";
import { loadOrCreateSecret, PLACEMENT_SECRET_FILE } from "../actors/bootstrap-secret.ts";
import { Capacity } from "../actors/capacity/capacity.ts";
import { warnExpiredCollateral, warnUncoveredPlatforms } from "../actors/collateral-warnings.ts";
import { BILLING_DEFAULTS, CP_DEFAULTS, heartbeatFor, REST_TIMEOUTS } from "../actors/cp-defaults.ts";
import { Deployments } from "../actors/deployments.ts";
import { Drains } from "../actors/drains.ts";
import type { Federation } from "../actors/federation/federation.ts";
import { chooseMeasurementPolicy, logMeasurementChoice } from "../actors/measurement-default.ts";
import { NonceBook } from "../actors/nonce-book.ts";
import { READINESS_DEFAULTS, Readiness } from "../actors/readiness.ts";
import { Reattestor } from "../actors/reattestation.ts";
import { RefusalAudit } from "../actors/refusal-audit.ts";
import { DEFAULT_NODE_SIZES } from "../actors/registration.ts";
import { RuntimeCheckpoint } from "../actors/store/checkpoint.ts";
import { Supervisor } from "../actors/supervisor.ts";
import { loadDevRootPem } from "../attestation/dev-pki.ts";
import { createTrustAnchors } from "../attestation/trust.ts";
import { Ledger } from "../billing/ledger.ts";
import { ownerParties } from "../billing/parties.ts";
import { loadWebhookSecret } from "../billing/webhook.ts";
import { ensureDataDir } from "../lib/data-dir.ts";
import { loadServerTls } from "../lib/tls-files.ts";
import { LIVE_STATES } from "../machines/agent-session.ts";
import { ValidationError } from "../spec/errors.ts";
import { AgentChannel } from "../transport/ws-server.ts";
import { billingCharger } from "./billing-wiring.ts";
import { channelSink } from "./channel-sink.ts";
import { type Component, Components } from "./components.ts";
import { CP_IDENTITY_FILE, collateralSource, envelopeSigner, loadOrCreateCpKey } from "./cp-identity.ts";
import { serveHttp } from "./http-server.ts";
import type { ControlPlane, ControlPlaneOptions } from "./options.ts";
import { checkpointing, watchReadiness } from "./readiness-watch.ts";
import { localAgentReads, restApp } from "./rest-wiring.ts";
import { startStores } from "./stores.ts";

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
  // Read once: the envelope signer's key is also the federation master's desired-state signing key.
  const identityKey = loadOrCreateCpKey(join(opts.dataDir, CP_IDENTITY_FILE));
  const envelope = await envelopeSigner(identityKey, opts);

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

  // From here on every part with a lifetime is a component: it stops before the ones started before it, and a
  // start that throws stops what had started.
  const components = new Components((name, err) => log.error({ err, component: name }, "stopping failed"));
  const start = <T>(c: Component<T>) => components.start(c);
  // A throw between components stops what had started, as a component's own failing start does.
  try {
    const measurement = measurementChoice.policy;
    logMeasurementChoice(log, measurementChoice);
    const nodeSizes = new Set(opts.nodeSizes ?? DEFAULT_NODE_SIZES);
    const stores = await startStores(start, { ...opts, adminDigest: admin.digest, nodeSizes });
    const { db, state, identity, enrollments, events, deploymentStore, trusted } = stores;
    const business = state.business;
    const refusals = await start({
      name: "refusal-audit",
      start: () => {
        const r = new RefusalAudit({
          append: (event) => events.append(event),
          intervalMs: opts.refusalAuditMs ?? CP_DEFAULTS.refusalAuditMs,
        });
        r.start();
        return r;
      },
      stop: (r) => r.stop(),
    });

    const index = new AgentIndex({ staleAfterMs });
    const drains = new Drains({ db, events });
    const nonces = new NonceBook({ ttlMs: opts.challengeTtlMs ?? CP_DEFAULTS.challengeTtlMs });
    // Made now (the actors send through it), serving only once the HTTP server listens.
    const channel = new AgentChannel({
      log,
      handshake: {
        deadlineMs: CP_DEFAULTS.handshakeMs,
        maxPendingPerAddress: CP_DEFAULTS.maxPendingPerAddress,
        maxPending: CP_DEFAULTS.maxPending,
        ...opts.handshake,
      },
    });
    // What registration and re-attestation verify quotes against; trust and measurement stay live getters, since a
    // federation dc takes the master's (attestation-settings.ts).
    const attestation = new AttestationSettings({ trust, measurement }, log);
    const quotePolicy = extendLive(attestation.live(), { ...(collateral ? { collateral } : {}), trusted });
    const reattestMs = opts.reattestMs ?? CP_DEFAULTS.reattestMs;
    // One missed re-attestation round is tolerated (the request may still be in flight); two are not.
    const attestationMaxAgeMs = 2 * reattestMs + 60_000;
    // Capacity (targets, reservations, orders, token digests) is durable business state: the DB-wipe drill leaves
    // it intact. Its timers start once the CP serves (the "capacity" component below).
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
    const supervisor = await start({
      name: "supervisor",
      start: () =>
        new Supervisor({
          link: channel,
          index,
          events,
          log,
          heartbeatMs,
          staleAfterMs,
          forgetAfterMs,
          policy: extendLive(quotePolicy, {
            nodeSizes,
            consumeBootstrap: (
              token: string,
              agent: Parameters<Capacity["consumeBootstrap"]>[1],
              at: number,
            ) => capacity.consumeBootstrap(token, agent, at),
          }),
          cpPubkey: envelope.publicKey,
        }),
      // Runtime state is not persisted: agents re-register with the next CP.
      stop: (s) => s.stopAll(),
    });

    const startedAt = Date.now();
    const checkpoint = new RuntimeCheckpoint(db);
    const readiness = new Readiness({
      ...READINESS_DEFAULTS,
      ...opts.readiness,
      knownBefore: checkpoint.read(),
      startedAt,
    });
    await start({
      name: "readiness",
      start: () =>
        index.onTransition((t) => {
          if (t.from === "challenged" && LIVE_STATES.has(t.to)) readiness.registered(t.agent_id, t.at);
        }),
      stop: (off) => off(),
    });
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
    // Set once federation starts (below); the deploy coordinator asks it about the master's catalog.
    let federation: Federation | undefined;
    // Follows the read model from here (an agent's transitions reach its deployments); its actors resume once the
    // CP serves (the "deployments" component below).
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
    const charger = billingCharger({ opts, ledger, parties, deployments, index, identity });
    channel.bind(
      channelSink({
        nonces,
        enrollments,
        identity,
        supervisor,
        reattestor,
        deployments,
        requests,
        refusals,
        log,
      }),
    );

    const { localReads, machineOf } = localAgentReads(index, supervisor, requests);
    const federationOptions = opts.federation;
    federation = federationOptions
      ? await start({
          name: "federation",
          start: async () => {
            const { startFederation } = await import("../actors/federation/federation.ts");
            return startFederation(federationOptions, {
              index,
              events,
              deployments,
              log,
              placementSecret,
              attestationMaxAgeMs,
              trusted,
              apps: () => business.apps(),
              identityKey,
              dataDir: opts.dataDir,
              drains,
              attestation,
              policy: opts.policy ?? null,
              reads: localReads,
              machine: machineOf,
            });
          },
          stop: (f) => f.stop(),
        })
      : undefined;
    const app = restApp({
      opts,
      admin,
      readiness,
      federation,
      index,
      supervisor,
      drains,
      localReads,
      machineOf,
      events,
      deployments,
      requests,
      channel,
      refusals,
      capacity,
      identity,
      enrollments,
      business,
      trusted,
      ledger,
      webhookSecret,
      startedAt,
    });
    // Agents and REST on one port. No checkpoint when this fails: this start saw no agent, and an empty checkpoint
    // would mislead the next start's readiness rule. Its stop says goodbye to every agent (1001) before the
    // components started before it stop, and the components after it stop while agents are still connected.
    const http = await start({
      name: "http-server",
      start: () =>
        serveHttp(
          {
            host: opts.host,
            port: opts.port,
            setting: opts.settings?.listen ?? "--listen HOST:PORT",
            timeouts: { ...REST_TIMEOUTS, ...opts.restTimeouts },
            tls: tls && opts.tls ? { loaded: tls, files: opts.tls } : null,
          },
          app.callback(),
          channel,
        ),
      stop: (h) => h.close(),
    });
    // The components below start without awaiting anything (no frame or request is handled in between).
    const port = http.port;
    await start({
      name: "cp-events",
      start: () =>
        events.append({
          at: Date.now(),
          kind: "cp.started",
          data: {
            port,
            dev_attestation: devRootPem !== undefined,
            cp_pubkey: Buffer.from(envelope.publicKey).toString("hex"),
            cp_attestation: opts.quoteProvider?.name ?? null,
          },
        }),
      stop: () => events.append({ at: Date.now(), kind: "cp.stopped", data: {} }),
    });
    await start({
      name: "deployments",
      start: () => {
        const resumed = deployments.resume();
        if (resumed > 0) log.info({ deployments: resumed }, "resumed deployments from the store");
      },
      stop: () => deployments.stop(),
    });
    await start({ name: "reattestor", start: () => reattestor.start(), stop: () => reattestor.stop() });
    await start({
      name: "readiness-log",
      start: () => watchReadiness(readiness, log),
      stop: (timer) => clearInterval(timer),
    });
    await start({ name: "charger", start: () => charger.start(), stop: () => charger.stop() });
    await start({ name: "capacity", start: () => capacity.start(), stop: () => capacity.stop() });
    await start({
      name: "admin-token",
      start: () => {
        admin.persist();
        return watchAdminToken(admin, (err) =>
          err
            ? log.error(
                { err, file: admin.file },
                "the admin token file changed but cannot be read; the old token stays",
              )
            : log.warn({ file: admin.file }, "admin token rotated: the previous token no longer works"),
        );
      },
      stop: (unwatch) => unwatch(),
    });
    // Last, so it is the first to stop: the final checkpoint is written while the agents are still connected.
    await start(checkpointing(checkpoint, index, log, opts.checkpointMs ?? 5_000));
    const hostForUrl = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
    log.info(
      {
        port,
        data_dir: opts.dataDir,
        tls: tls ? { serial: tls.serial, fingerprint256: tls.fingerprint256 } : null,
      },
      "control plane serving",
    );

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
      reloadTls: http.reloadTls,
      components,
      stop: () => components.stop(),
    };
  } catch (err) {
    await components.stop();
    throw err;
  }
}
