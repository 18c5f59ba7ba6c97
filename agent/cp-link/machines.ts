// The CP client's two machines (machines/agent-connection.ts, machines/attestation-refresh.ts), provided once per
// process: their effects find their own client's port through their actor system, since provide() rebuilds every
// state node (about 0.1 ms), which a load generator running thousands of clients in one process would otherwise
// pay for each of them (test/load). May import machines/ and xstate.
import { type ActorSystem, fromPromise } from "xstate";
import {
  agentConnectionMachine,
  type CloseParams,
  type RegisterParams,
  type UnexpectedParams,
} from "../../machines/agent-connection.ts";
import {
  attestationRefreshMachine,
  type RefreshAnswer,
  type RefreshRequest,
} from "../../machines/attestation-refresh.ts";

/** What one client's machines do to the world: its socket, its quote provider. */
export interface ClientPort {
  registerQuote(nonce: Uint8Array): Promise<Uint8Array>;
  open(): void;
  close(p: CloseParams): void;
  register(p: RegisterParams): void;
  heartbeat(seq: number): void;
  rejectUnexpected(p: UnexpectedParams): void;
  refreshQuote(request: RefreshRequest): Promise<RefreshAnswer>;
  sendAttestation(p: { re: number | undefined; answer: RefreshAnswer }): void;
  sendFailure(p: { re: number | undefined; code: string; message: string }): void;
}

// biome-ignore lint/suspicious/noExplicitAny: any actor system, as xstate's own AnyActorSystem (not exported).
type AnySystem = ActorSystem<any>;
const ports = new WeakMap<AnySystem, ClientPort>();

/** Gives the actor's machines `port`; call before the actor starts. */
export function attachPort(actor: { system: AnySystem }, port: ClientPort): void {
  ports.set(actor.system, port);
}

function portOf(system: AnySystem): ClientPort {
  const port = ports.get(system);
  if (!port) throw new Error("a CP client machine is running without its client");
  return port;
}

export const connectionMachine = agentConnectionMachine.provide({
  actors: {
    quote: fromPromise<Uint8Array, { nonce: Uint8Array }>(({ input, system }) =>
      portOf(system).registerQuote(input.nonce),
    ),
  },
  actions: {
    openSocket: ({ system }) => portOf(system).open(),
    closeSocket: ({ system }, p) => portOf(system).close(p),
    sendRegister: ({ system }, p) => portOf(system).register(p),
    sendHeartbeat: ({ system }, p) => portOf(system).heartbeat(p.seq),
    rejectUnexpected: ({ system }, p) => portOf(system).rejectUnexpected(p),
  },
});

export const refreshMachine = attestationRefreshMachine.provide({
  actors: {
    quote: fromPromise<RefreshAnswer, RefreshRequest>(({ input, system }) =>
      portOf(system).refreshQuote(input),
    ),
  },
  actions: {
    sendAttestation: ({ system }, p) => portOf(system).sendAttestation(p),
    sendFailure: ({ system }, p) => portOf(system).sendFailure(p),
  },
});
