// The live deployments: one deployment actor (machines/deployment.ts) per deployment that has not ended, with its
// row, indexed by agent so an agent's transition reaches its deployments without a scan, and the inspector
// streams that follow them. Starting one always starts from its row (new, resumed or adopted); an actor that ends
// or crashes is retired. Imports xstate, machines/deployment and the store's row type.

import { type Actor, createActor } from "xstate";
import type { Logger } from "../../lib/log.ts";
import { type DeploymentStatus, type deploymentMachine, statusOf } from "../../machines/deployment.ts";
import { ActorWatchers, type InspectionObserver } from "../actor-watchers.ts";
import type { DeploymentRow, DeploymentStore } from "../store/deployment-store.ts";
import type { EventLog } from "../store/event-log.ts";
import type { Supervisor } from "../supervisor.ts";
import type { AgentCommands } from "./commands.ts";

export type DeploymentActor = Actor<typeof deploymentMachine>;

export interface Live {
  actor: DeploymentActor;
  row: DeploymentRow;
}

export class LiveDeployments {
  readonly #live = new Map<string, Live>();
  readonly #byAgent = new Map<string, Set<string>>();
  /** Inspector streams (GET /api/v2/deployments/{id}/inspect), by deployment id. */
  readonly #watchers = new ActorWatchers();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get(deploymentId: string): Live | undefined {
    return this.#live.get(deploymentId);
  }

  status(live: Live): DeploymentStatus {
    return statusOf(live.actor.getSnapshot().value);
  }

  entries(): IterableIterator<[string, Live]> {
    return this.#live.entries();
  }

  /** The ids of the agent's live deployments (a copy: retiring one while iterating is safe). */
  ofAgent(agentId: string): string[] {
    return [...(this.#byAgent.get(agentId) ?? [])];
  }

  /** Runs `machine` for `row`, resuming it in the row's status with its progress so far. */
  start(row: DeploymentRow, machine: typeof deploymentMachine, ackTimeoutMs: number): void {
    const resume = {
      status: row.status,
      context: {
        deploymentId: row.deployment_id,
        app: row.app,
        agentId: row.agent_id,
        code: row.code,
        message: row.message,
        composeHash: row.compose_hash,
        images: row.images,
        progress: row.progress,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      },
    };
    const actor = createActor(machine, {
      input: {
        deploymentId: row.deployment_id,
        app: row.app,
        agentId: row.agent_id,
        at: row.created_at,
        ackTimeoutMs,
        resume,
      },
    });
    this.#live.set(row.deployment_id, { actor, row });
    this.#watchers.started(row.deployment_id, actor);
    const ids = this.#byAgent.get(row.agent_id) ?? new Set<string>();
    this.#byAgent.set(row.agent_id, ids);
    ids.add(row.deployment_id);
    actor.subscribe({
      next: (snap) => {
        if (snap.status === "done") this.#retire(row.deployment_id);
      },
      error: (err) => {
        this.#log.error({ err, deployment_id: row.deployment_id }, "deployment actor crashed");
        this.#retire(row.deployment_id);
      },
    });
    actor.start();
  }

  /** Streams a live deployment's inspection events; undefined when it has no actor. */
  watch(deploymentId: string, observer: InspectionObserver, end: () => void): (() => void) | undefined {
    const live = this.#live.get(deploymentId);
    return live && this.#watchers.watch(deploymentId, live.actor, observer, end);
  }

  stopAll(): void {
    this.#watchers.endAll();
    for (const live of this.#live.values()) live.actor.stop();
    this.#live.clear();
    this.#byAgent.clear();
  }

  #retire(deploymentId: string): void {
    const live = this.#live.get(deploymentId);
    if (!live) return;
    this.#live.delete(deploymentId);
    this.#watchers.ended(deploymentId);
    const ids = this.#byAgent.get(live.row.agent_id);
    ids?.delete(deploymentId);
    if (ids?.size === 0) this.#byAgent.delete(live.row.agent_id);
    live.actor.stop();
  }
}

/** What the coordinator's jobs (status routing, reconciliation, effects) share. */
export interface DeploymentsCore {
  live: LiveDeployments;
  store: DeploymentStore;
  supervisor: Pick<Supervisor, "get" | "send">;
  events: Pick<EventLog, "append">;
  log: Logger;
  now: () => number;
  commands: AgentCommands;
  /** Starts a live actor for the row, with the machine the effects are provided to. */
  start(row: DeploymentRow): void;
}
