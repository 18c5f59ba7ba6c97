// Every XState machine of the product, by the name `eectl machines export` takes, each loaded on demand: the one
// list of machines a tool may show (the Stately inspector reads their definitions), kept in the composition root so
// eectl reaches machines/ through it. Imports xstate types and machines/ (lazily).
import type { AnyStateMachine } from "xstate";

/** Every machine in machines/, by the name `machines export` takes. */
export const MACHINES: Record<string, { side: string; load: () => Promise<AnyStateMachine> }> = {
  "agent-session": {
    side: "control plane: one per agent",
    load: async () => (await import("../machines/agent-session.ts")).agentSessionMachine,
  },
  deployment: {
    side: "control plane: one per live deployment",
    load: async () => (await import("../machines/deployment.ts")).deploymentMachine,
  },
  "agent-connection": {
    side: "agent: its link to the control plane",
    load: async () => (await import("../machines/agent-connection.ts")).agentConnectionMachine,
  },
  "attestation-refresh": {
    side: "agent: answers re-attestation requests",
    load: async () => (await import("../machines/attestation-refresh.ts")).attestationRefreshMachine,
  },
  "deploy-gate": {
    side: "agent: one per deployment it runs",
    load: async () => (await import("../machines/deploy-gate.ts")).deployGateMachine,
  },
};
