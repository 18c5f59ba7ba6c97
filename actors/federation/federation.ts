// Starts a CP's federation role (docs/federation.md): connects to the local nats-server and runs the dc link or
// the master link, and gives the composition root (control-plane.ts) what changes for the REST side: the agent
// listing with dc ids, the master's deployments port and its datacenters. Standalone CPs never load this.
// Imports actors/, transport/ types, lib/, this folder.
import type { Logger } from "../../lib/log.ts";
import { EeError, FederationError } from "../../spec/errors.ts";
import type { DatacentersPort } from "../../transport/rest/datacenters.ts";
import type { DeploymentsPort } from "../../transport/rest/deployments.ts";
import type { MetricFamily } from "../../transport/rest/metrics.ts";
import type { AgentIndex, AgentRecord } from "../agent-index.ts";
import type { Deployments } from "../deployments.ts";
import type { EventLog } from "../store/event-log.ts";
import { type BusOptions, connectBus, type FederationBus } from "./bus.ts";
import { DcLink } from "./dc-link.ts";
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
  /** Dc: health summaries and hellos this often (default 2 s). */
  summaryMs?: number;
}

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
  },
): Promise<Federation> {
  const localDc = o.role === "dc" ? o.dcId! : MASTER_DC;
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
      return {
        agents: local,
        stop: async () => {
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
