// One wrapper for every call the manager makes to the workload runtime: typed errors pass through, anything
// untyped becomes EE-WORKLOAD-ENGINE with its text kept in the agent log only (an engine's message may name host
// paths), and an abort (the gate leaving a step on undeploy) passes through unlogged. May import spec/errors and
// lib/log (types).
import type { Logger } from "../../lib/log.ts";
import { EeError, WorkloadError } from "../../spec/errors.ts";

/** Runs `call` on behalf of deployment `deploymentId`; `what` completes "the engine failed to …". */
export type EngineCall = <T>(deploymentId: string, what: string, call: () => Promise<T>) => Promise<T>;

export function engineCall(log: Logger): EngineCall {
  return async (deploymentId, what, call) => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof EeError || (err instanceof Error && err.name === "AbortError")) throw err;
      log.error({ deployment_id: deploymentId, err }, `workload ${what} failed`);
      throw new WorkloadError("EE-WORKLOAD-ENGINE", `the engine failed to ${what}; see the agent log`);
    }
  };
}
