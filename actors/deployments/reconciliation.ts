// Keeping records true to the agents when an agent's session changes: an agent lost mid-deploy fails its
// in-flight deployments; one that re-registers without a deployment gets a grace period for its deploy_status to
// explain, then the record ends the way the deployment did; one back from a blip while its deployment was being
// undeployed is sent the undeploy again. Imports the read model's transition type and this folder.
import type { DeploymentStatus } from "../../machines/deployment.ts";
import type { Transition } from "../agent-index.ts";
import type { DeploymentsCore } from "./live.ts";

export const IN_FLIGHT: ReadonlySet<DeploymentStatus> = new Set(["pending", "deploying"]);
const LOST_STATES = new Set(["stale", "gone", "rejected"]);

export class Reconciler {
  readonly #core: DeploymentsCore;
  readonly #graceMs: number;

  constructor(core: DeploymentsCore, graceMs: number) {
    this.#core = core;
    this.#graceMs = graceMs;
  }

  /** A transition of an agent's session, from the read model. */
  onAgentTransition(t: Transition): void {
    const { live } = this.#core;
    const at = this.#core.now();
    for (const id of live.ofAgent(t.agent_id)) {
      const one = live.get(id);
      if (!one) continue;
      const status = live.status(one);
      if (LOST_STATES.has(t.to) && IN_FLIGHT.has(status)) {
        one.actor.send({ type: "AGENT_LOST", at, reason: `the agent became ${t.to} during the deployment` });
      } else if (
        t.from === "challenged" &&
        (t.to === "registered" || t.to === "healthy" || t.to === "deploying") &&
        (IN_FLIGHT.has(status) || status === "healthy")
      ) {
        // It re-registered saying it runs nothing, or another deployment (an update's old one, after a restart
        // mid-update). Its deploy_status (sent right after registering) carries the real outcome, so give it a
        // moment before concluding the workload is simply gone.
        const timer = setTimeout(() => this.settleMissing(id, t.agent_id), this.#graceMs);
        timer.unref();
      } else if (status === "undeploying" && (t.from === "stale" || t.from === "challenged")) {
        // Back after a blip: it may have missed the undeploy.
        this.#core.commands.send(t.agent_id, "undeploy", { deployment_id: id });
      }
    }
  }

  /** The agent re-registered without `id` and has not reported it since: end the record the way it ended. */
  settleMissing(id: string, agentId: string): void {
    const { live } = this.#core;
    const one = live.get(id);
    const session = this.#core.supervisor.get(agentId)?.getSnapshot().context;
    if (!one || session?.deploymentId === id) return;
    const at = this.#core.now();
    const status = live.status(one);
    if (IN_FLIGHT.has(status)) {
      one.actor.send({ type: "AGENT_LOST", at, reason: "the agent re-registered without the deployment" });
    } else if (status === "healthy") {
      one.actor.send({
        type: "STEP",
        step: "failed",
        at,
        code: "EE-WORKLOAD-NONE",
        message: "the agent re-registered without this workload",
      });
    }
  }
}
