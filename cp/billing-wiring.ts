// Billing's side of the composition root: the charger over the ledger, charging the healthy deployments by their
// agent's node size and undeploying a dry tenant's after the grace, audited on the business chain.
// Imports actors/ and billing/.
import type { AgentIndex } from "../actors/agent-index.ts";
import type { Identity } from "../actors/business/identity.ts";
import { BILLING_DEFAULTS } from "../actors/cp-defaults.ts";
import type { Deployments } from "../actors/deployments.ts";
import { Charger } from "../billing/charger.ts";
import type { Ledger } from "../billing/ledger.ts";
import type { ownerParties } from "../billing/parties.ts";
import type { ControlPlaneOptions } from "./options.ts";

export function billingCharger(o: {
  opts: ControlPlaneOptions;
  ledger: Ledger;
  parties: ReturnType<typeof ownerParties>;
  deployments: Deployments;
  index: AgentIndex;
  identity: Identity;
}): Charger {
  const { opts, ledger, parties, deployments, index, identity } = o;
  const { log } = opts;
  return new Charger({
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
}
