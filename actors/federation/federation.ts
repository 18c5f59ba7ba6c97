// Starts a CP's federation role (docs/federation.md): connects to the local nats-server and runs the dc link or
// the master link, and gives the composition root (control-plane.ts) what changes for the REST side: the agent
// listing with dc ids, the master's deployments port and its datacenters. Standalone CPs never load this.
// Imports actors/, contract/ types, lib/, this folder.
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import type { MeasurementPolicy } from "../../attestation/policy.ts";
import { nonIntelRootPems } from "../../attestation/trust.ts";
import type { AgentReadsPort } from "../../contract/agents.ts";
import type { DatacentersPort } from "../../contract/datacenters.ts";
import type { DeploymentsPort } from "../../contract/deployments.ts";
import type { MetricFamily } from "../../contract/metrics.ts";
import type { Logger } from "../../lib/log.ts";
import { EeError, FederationError } from "../../spec/errors.ts";
import type { AgentIndex, AgentRecord } from "../agent-index.ts";
import type { AttestationSettings } from "../attestation-settings.ts";
import type { Deployments } from "../deployments.ts";
import type { Drains } from "../drains.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { EventLog } from "../store/event-log.ts";
import type { TrustedMeasurements } from "../trusted-measurements.ts";
import { type BusOptions, connectBus, type FederationBus } from "./bus.ts";
import { DcLink } from "./dc-link.ts";
import { DesiredFollower } from "./desired-follower.ts";
import { DesiredPublisher } from "./desired-publisher.ts";
import { masterPublicKey } from "./desired-state.ts";
import { federatedDeployments } from "./federated-deployments.ts";
import { FederatedView } from "./federated-view.ts";
import { MasterLink } from "./master-link.ts";
import { RelayClient } from "./relay-client.ts";
import { RelayServer } from "./relay-server.ts";
import { type MachineJson, type RelayedReads, relayedReads } from "./relayed-reads.ts";
import { MASTER_DC } from "./topology.ts";

export interface FederationOptions {
  role: "master" | "dc";
  /** With role dc. */
  dcId?: string;
  nats: Omit<BusOptions, "log" | "name">;
  /** Master: a dc silent this long is degraded (default 30 s). */
  degradedAfterMs?: number;
  /** Master: sync lag above this is a warn log line and `ee_federation_dc_lag_above_threshold` (default 60 s). */
  lagWarnMs?: number;
  /** Dc: the master's CP identity public key (64 hex digits); without it the dc applies no desired state. */
  masterKey?: string;
  /** Health summaries (and a dc's hellos) this often (default 2 s); the master publishes its own as dc `master`. */
  summaryMs?: number;
}

/** A dc's record of the desired-state snapshot it applied (refuses rollbacks across restarts). */
const DESIRED_STATE_FILE = "fed-desired.json";

export interface Federation {
  agents(): Iterable<AgentRecord & { dc_id: string }>;
  /** Replaces the CP's own deployments port on a master. */
  deployments?: DeploymentsPort;
  datacenters?: DatacentersPort;
  /** Master: its direct agents and its dcs' (with dc_id), one at a time. */
  agent?: (agentId: string) => AgentRecord | undefined;
  /** Master: the agent reads and live machine, a dc's agent's relayed to its dc (relay-client.ts). */
  relayed?: RelayedReads;
  /** Master: per-dc sync lag gauges for /metrics. */
  metrics?: () => MetricFamily[];
  /** Dc: the compose hash the master's catalog (applied desired state) gives name@version, if it holds it. */
  masterApp?: (name: string, version: string) => string | undefined;
  stop(): Promise<void>;
}

export async function startFederation(
  o: FederationOptions,
  cp: {
    index: AgentIndex;
    events: EventLog;
    deployments: Deployments;
    log: Logger;
    placementSecret: Uint8Array;
    attestationMaxAgeMs: number;
    trusted: TrustedMeasurements;
    apps: () => readonly AppRow[];
    /** The CP identity key: signs the master's desired state. */
    identityKey: KeyObject;
    dataDir: string;
    drains: Drains;
    /** Master: its own trust roots are published; dc: takes the master's policy and roots. */
    attestation: AttestationSettings;
    /** The CP's --policy (null: none): what a master publishes. */
    policy: MeasurementPolicy | null;
    /** The CP's own agent reads and live machines (plain JSON): a dc serves relayed reads with them. */
    reads: AgentReadsPort;
    machine: (agentId: string) => MachineJson | undefined;
  },
): Promise<Federation> {
  const localDc = o.role === "dc" ? o.dcId! : MASTER_DC;
  // Checked before connecting: a bad key is a configuration error, not a link failure.
  const masterKey = o.masterKey === undefined ? undefined : masterPublicKey(o.masterKey);
  const bus: FederationBus = await connectBus({ ...o.nats, name: `easyenclave-${localDc}`, log: cp.log });
  const local = function* () {
    for (const r of cp.index.values()) yield { ...r, dc_id: localDc };
  };
  /** This CP's outbox onto the bus: a dc's to its leaf, or the master's own (dc `master`) straight on the hub. */
  const dcLink = (dcId: string, onHub: boolean) =>
    new DcLink({
      dcId,
      onHub,
      bus,
      events: cp.events,
      index: cp.index,
      deployments: cp.deployments,
      log: cp.log,
      ...(o.summaryMs ? { summaryMs: o.summaryMs } : {}),
    });
  try {
    if (o.role === "dc") {
      const link = dcLink(localDc, false);
      await link.start();
      const relay = new RelayServer({
        dcId: localDc,
        bus,
        reads: cp.reads,
        machine: cp.machine,
        log: cp.log,
      });
      relay.start();
      const desired = masterKey
        ? new DesiredFollower({
            dcId: localDc,
            bus,
            masterKey,
            stateFile: join(cp.dataDir, DESIRED_STATE_FILE),
            trusted: cp.trusted,
            drains: cp.drains,
            attestation: cp.attestation,
            events: cp.events,
            log: cp.log,
          })
        : undefined;
      if (desired) await desired.start();
      else cp.log.warn("federation: no --master-key, so this dc applies no desired state from the master");
      return {
        agents: local,
        ...(desired
          ? {
              masterApp: (name: string, version: string) =>
                desired.apps().find((a) => a.name === name && a.version === version)?.compose_hash,
            }
          : {}),
        stop: async () => {
          desired?.stop();
          relay.stop();
          link.stop();
          await bus.close();
        },
      };
    }
    const view = new FederatedView({ own: MASTER_DC });
    const link = new MasterLink({
      bus,
      view,
      log: cp.log,
      ...(o.degradedAfterMs ? { degradedAfterMs: o.degradedAfterMs } : {}),
      ...(o.lagWarnMs ? { lagWarnMs: o.lagWarnMs } : {}),
    });
    await link.start();
    // Mixed mode: the master is dc `master` on the same path, so its direct agents reach the view (and the
    // listing) through the same outbox, stream and apply as every dc's.
    const own = dcLink(MASTER_DC, true);
    await own.start();
    link.followOwn(MASTER_DC);
    const publisher = new DesiredPublisher({
      bus,
      key: cp.identityKey,
      events: cp.events,
      apps: cp.apps,
      measurements: () => cp.trusted.list(),
      drains: () => cp.drains.own(),
      policy: cp.policy,
      trustRoots: nonIntelRootPems(cp.attestation.ownTrust),
      log: cp.log,
    });
    await publisher.start();
    // A direct agent (connected here, or reported as dc `master`) is never relayed.
    const dcAgent = (agentId: string) => {
      const a = cp.index.get(agentId) ? undefined : view.agent(agentId);
      return a?.dc_id === MASTER_DC ? undefined : a;
    };
    const relay = new RelayClient({ bus, log: cp.log });
    return {
      agents: () => view.agents(),
      deployments: federatedDeployments({
        local: cp.deployments,
        view,
        link,
        placementSecret: cp.placementSecret,
        attestationMaxAgeMs: cp.attestationMaxAgeMs,
        isDirect: (agentId) => cp.index.get(agentId) !== undefined,
        drained: (agentId) => cp.drains.has(agentId),
      }),
      datacenters: { list: () => link.datacenters() },
      agent: (agentId) => cp.index.get(agentId) ?? dcAgent(agentId),
      relayed: relayedReads({
        local: cp.reads,
        localMachine: cp.machine,
        dcOf: (agentId) => dcAgent(agentId)?.dc_id,
        client: relay,
      }),
      metrics: () => link.metrics(),
      stop: async () => {
        publisher.stop();
        relay.stop();
        own.stop();
        link.stop();
        await bus.close();
      },
    };
  } catch (err) {
    await bus.close();
    // A server without JetStream, or a stream that exists with another config: coded, the CP does not start.
    if (err instanceof EeError) throw err;
    throw new FederationError(
      "EE-FED-UNAVAILABLE",
      `setting up the ${o.role} streams on the nats-server failed: ${(err as Error).message}`,
    );
  }
}
