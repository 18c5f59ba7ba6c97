// The REST side of the composition root: the CpView the read endpoints see and the REST app over the actors'
// ports (deployments, or federation's when the CP is a master; relayed agent reads; inspection). Wiring only.
// Imports actors/, billing/, spec/openapi and transport/ (the REST app and its port types).
import type Koa from "koa";
import type { AdminToken } from "../actors/admin-token.ts";
import type { AgentIndex } from "../actors/agent-index.ts";
import type { AgentRequests } from "../actors/agent-requests.ts";
import type { Enrollments } from "../actors/business/enrollment.ts";
import type { Identity } from "../actors/business/identity.ts";
import { oidcExchangePort } from "../actors/business/oidc-port.ts";
import type { BusinessState } from "../actors/business/open.ts";
import type { Capacity } from "../actors/capacity/capacity.ts";
import type { Deployments } from "../actors/deployments.ts";
import type { Drains } from "../actors/drains.ts";
import type { Federation } from "../actors/federation/federation.ts";
import type { Readiness } from "../actors/readiness.ts";
import type { RefusalAudit } from "../actors/refusal-audit.ts";
import type { EventLog } from "../actors/store/event-log.ts";
import type { Supervisor } from "../actors/supervisor.ts";
import type { TrustedMeasurements } from "../actors/trusted-measurements.ts";
import type { Ledger } from "../billing/ledger.ts";
import type { AgentReadsPort } from "../contract/agents.ts";
import { NotFoundError } from "../spec/errors.ts";
import { statelyObserver } from "../transport/inspection.ts";
import { createRestApp } from "../transport/rest/app.ts";
import { toPlainJson } from "../transport/rest/json.ts";
import { loadOpenApi } from "../transport/rest/openapi.ts";
import type { CpView } from "../transport/rest/view.ts";
import type { AgentChannel } from "../transport/ws-server.ts";
import { cpMetrics } from "./metrics.ts";
import type { ControlPlaneOptions } from "./options.ts";

export interface RestParts {
  opts: ControlPlaneOptions;
  admin: AdminToken;
  readiness: Readiness;
  federation: Federation | undefined;
  index: AgentIndex;
  supervisor: Supervisor;
  drains: Drains;
  /** This CP's own agents' reads and live machines (a master relays its dc agents' instead). */
  localReads: AgentReadsPort;
  machineOf: (agentId: string) => Record<string, unknown> | undefined;
  events: EventLog;
  deployments: Deployments;
  requests: AgentRequests;
  channel: AgentChannel;
  refusals: RefusalAudit;
  capacity: Capacity;
  identity: Identity;
  enrollments: Enrollments;
  business: BusinessState["business"];
  trusted: TrustedMeasurements;
  ledger: Ledger;
  webhookSecret: Buffer | null;
  startedAt: number;
}

export function restApp(p: RestParts): Koa {
  const { opts, admin, readiness, federation, index, supervisor, drains, events, deployments, requests } = p;
  const { channel, refusals, capacity, identity, enrollments, business, trusted, ledger, webhookSecret } = p;
  const { log } = opts;
  const startedAt = p.startedAt;
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
    machine: federation?.relayed?.machine ?? p.machineOf,
    onTransition: (listener) => index.onTransition(listener),
    events: (q) => events.list(q),
    followEvents: (listener) => events.follow(listener),
    metrics: () => [
      ...cpMetrics({ index, deployments, requests, channel, refusals, startedAt }),
      ...capacity.metrics(),
      ...(federation?.metrics?.() ?? []),
    ],
  };
  return createRestApp({
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
    agentReads: federation?.relayed?.reads ?? p.localReads,
    billing: { ledger, account: (id) => business.account(id), webhookSecret },
    capacity,
    inspection: {
      agent: async (id, emit, end) => supervisor.inspect(id, await statelyObserver(emit), end),
      deployment: async (id, emit, end) => deployments.inspect(id, await statelyObserver(emit), end),
    },
  });
}

/**
 * This CP's own agents' relayed reads (404 for an agent it does not know) and live machines as plain JSON: served
 * here, or relayed to a master by a dc.
 */
export function localAgentReads(index: AgentIndex, supervisor: Supervisor, requests: AgentRequests) {
  const knownAgent = (agentId: string): string => {
    if (!index.get(agentId))
      throw new NotFoundError("EE-NOT-FOUND", `agent ${agentId} is not known to this control plane`);
    return agentId;
  };
  const localReads: AgentReadsPort = {
    request: (agentId, type) => requests.request(knownAgent(agentId), type),
    logs: (agentId, body, onChunk, signal) => requests.logs(knownAgent(agentId), body, onChunk, signal),
  };
  const machineOf = (id: string) => {
    const snap = supervisor.get(id)?.getSnapshot();
    return snap
      ? (toPlainJson({ value: snap.value, context: snap.context }) as Record<string, unknown>)
      : undefined;
  };
  return { localReads, machineOf };
}
