// Starts a CP's federation role (docs/federation.md): connects to the local nats-server and runs the dc link or
// the master link, and gives the composition root (control-plane.ts) what changes for the REST side: the agent
// listing with dc ids, the master's deployments port and its datacenters. Standalone CPs never load this.
// Imports actors/, transport/ types, lib/, this folder.
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import type { DatacentersPort } from "../../contract/datacenters.ts";
import type { DeploymentsPort } from "../../contract/deployments.ts";
import type { Logger } from "../../lib/log.ts";
import { EeError, FederationError } from "../../spec/errors.ts";
import type { MetricFamily } from "../../transport/rest/metrics.ts";
import type { AgentIndex, AgentRecord } from "../agent-index.ts";
import type { Deployments } from "../deployments.ts";
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
  /** Dc: health summaries and hellos this often (default 2 s). */
  summaryMs?: number;
}

/** A dc's record of the desired-state snapshot it applied (refuses rollbacks across restarts). */
const DESIRED_STATE_FILE = "fed-desired.json";

export interface Federation {
  agents(): Iterable<AgentRecord & { dc_id: string }>;
  /** Replaces the CP's own deployments port on a master. */
  deployments?: DeploymentsPort;
  datacenters?: DatacentersPort;
  /** Master: per-dc sync lag gauges for /metrics. */
  metrics?: () => MetricFamily[];
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
  },
): Promise<Federation> {
  const localDc = o.role === "dc" ? o.dcId! : MASTER_DC;
  // Checked before connecting: a bad key is a configuration error, not a link failure.
  const masterKey = o.masterKey === undefined ? undefined : masterPublicKey(o.masterKey);
  const bus: FederationBus = await connectBus({ ...o.nats, name: `easyenclave-${localDc}`, log: cp.log });
  const local = function* () {
    for (const r of cp.index.values()) yield { ...r, dc_id: localDc };
  };
  try {
    if (o.role === "dc") {
      const link = new DcLink({
        dcId: localDc,
        bus,
        events: cp.events,
        index: cp.index,
        deployments: cp.deployments,
        log: cp.log,
        ...(o.summaryMs ? { summaryMs: o.summaryMs } : {}),
      });
      await link.start();
      const desired = masterKey
        ? new DesiredFollower({
            dcId: localDc,
            bus,
            masterKey,
            stateFile: join(cp.dataDir, DESIRED_STATE_FILE),
            trusted: cp.trusted,
            events: cp.events,
            log: cp.log,
          })
        : undefined;
      if (desired) await desired.start();
      else cp.log.warn("federation: no --master-key, so this dc applies no desired state from the master");
      return {
        agents: local,
        stop: async () => {
          desired?.stop();
          link.stop();
          await bus.close();
        },
      };
    }
    const view = new FederatedView();
    const link = new MasterLink({
      bus,
      view,
      log: cp.log,
      ...(o.degradedAfterMs ? { degradedAfterMs: o.degradedAfterMs } : {}),
      ...(o.lagWarnMs ? { lagWarnMs: o.lagWarnMs } : {}),
    });
    await link.start();
    const publisher = new DesiredPublisher({
      bus,
      key: cp.identityKey,
      events: cp.events,
      apps: cp.apps,
      measurements: () => cp.trusted.list(),
      log: cp.log,
    });
    await publisher.start();
    return {
      agents: function* () {
        yield* local();
        // A dc cannot shadow a direct agent: the master's own connection is the truth for those ids.
        for (const a of view.agents()) if (!cp.index.get(a.agent_id)) yield a;
      },
      deployments: federatedDeployments({
        local: cp.deployments,
        view,
        link,
        placementSecret: cp.placementSecret,
        attestationMaxAgeMs: cp.attestationMaxAgeMs,
        isDirect: (agentId) => cp.index.get(agentId) !== undefined,
      }),
      datacenters: { list: () => link.datacenters() },
      metrics: () => link.metrics(),
      stop: async () => {
        publisher.stop();
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
