// Where a deployment goes: readiness first (before its agents are back the CP would place onto agents that run
// something it forgot), then placement over the read model (one named agent, or all), an update in place kept on
// the agent of the deployment it replaces, and the message when nothing fits. Imports contract/ types,
// actors/placement, spec/errors and this folder.

import type { Placement, PlacementRequest } from "../../contract/deployments.ts";
import { ConflictError, NotReadyError, ValidationError } from "../../spec/errors.ts";
import type { AgentIndex } from "../agent-index.ts";
import { place } from "../placement.ts";
import type { DeploymentRow } from "../store/deployment-store.ts";
import type { Supervisor } from "../supervisor.ts";
import type { LiveDeployments } from "./live.ts";

export interface PlacerOptions {
  index: AgentIndex;
  live: LiveDeployments;
  supervisor: Pick<Supervisor, "get">;
  readiness: () => { ready: boolean; reason: string };
  now: () => number;
  attestationMaxAgeMs: number;
  placementSecret: Uint8Array;
  dedicatedTo: (agentId: string) => string | undefined;
  drained: (agentId: string) => boolean;
}

export class Placer {
  readonly #o: PlacerOptions;

  constructor(o: PlacerOptions) {
    this.#o = o;
  }

  place(req: PlacementRequest, explain: boolean, deploymentId: string, replacingOn?: string): Placement {
    const { index } = this.#o;
    const ready = this.#o.readiness();
    if (!ready.ready) throw new NotReadyError("EE-NOT-READY", ready.reason);
    const named = req.agent_id === undefined ? undefined : index.get(req.agent_id);
    // Naming an agent is the common CI case: judge that one agent instead of scanning all of them.
    const agents = req.agent_id === undefined ? index.values() : named ? [named] : [];
    return place(req, agents, {
      now: this.#o.now(),
      attestationMaxAgeMs: this.#o.attestationMaxAgeMs,
      explain,
      secret: this.#o.placementSecret,
      deploymentId,
      ...(replacingOn ? { replacingOn } : {}),
      dedicatedTo: this.#o.dedicatedTo,
      drained: this.#o.drained,
    });
  }

  /**
   * The deployment `row` an update may replace: healthy, of app `name`, on the agent the request names (if any),
   * with no other update under way on its agent. Throws EE-CONFLICT-STATE or EE-REQ-INVALID.
   */
  replaceable(row: DeploymentRow, name: string, req: PlacementRequest): DeploymentRow {
    const id = row.deployment_id;
    const live = this.#o.live.get(id);
    const status = live ? this.#o.live.status(live) : row.status;
    if (status !== "healthy")
      throw new ConflictError(
        "EE-CONFLICT-STATE",
        `deployment ${id} is ${status}: only a healthy deployment can be replaced`,
      );
    if (row.app !== name)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `replaces: deployment ${id} runs app ${row.app}, not ${name}; an update keeps the app name`,
      );
    if (req.agent_id !== undefined && req.agent_id !== row.agent_id)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `replaces: deployment ${id} runs on agent ${row.agent_id}; an update goes to that agent`,
      );
    if (this.#o.supervisor.get(row.agent_id)?.getSnapshot().context.replacing)
      throw new ConflictError(
        "EE-CONFLICT-STATE",
        `an update of deployment ${id} is already under way on agent ${row.agent_id}`,
      );
    return row;
  }

  /**
   * A deploy of an app already running (any version), naming no agent, updates it in place: the id of the one
   * healthy deployment of that app name. None, or several (the app runs on more than one agent, so which one to
   * replace is ambiguous), is undefined: the deploy is placed as a new one.
   */
  soleHealthy(app: string): string | undefined {
    const { live } = this.#o;
    let found: string | undefined;
    for (const [id, one] of live.entries()) {
      if (one.row.app !== app || live.status(one) !== "healthy") continue;
      if (found !== undefined) return undefined;
      found = id;
    }
    return found;
  }
}

export function describeNoFit(p: Placement): string {
  if (p.considered === 0) return "no agent fits: no agents are connected";
  const counts = Object.entries(p.counts)
    .map(([code, n]) => `${n} ${code}`)
    .join(", ");
  return `no agent fits among ${p.considered} considered (${counts})`;
}
