// What the agent says to the control plane on its machines' behalf: register (quote bound to the CP's nonce,
// proof of possession, the snapshot of its workload), heartbeats carrying the workload's step, re-attestation
// answers (quote bound to the running workload) and their failures, and refusals of unexpected frames. This is
// the ClientPort the provided machines (machines.ts) call through their actor system. May import attestation/,
// machines/ (types), spec/ and lib/log (types).
import { signPop } from "../../attestation/agent-key.ts";
import type { QuoteProvider } from "../../attestation/providers/provider.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import type { Logger } from "../../lib/log.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import type { CpCommands } from "../cp-commands.ts";
import type { AgentIdentity } from "../identity.ts";
import { bindQuote } from "../quote-binding.ts";
import type { ClientPort } from "./machines.ts";
import type { CpSocket, SocketEvents } from "./socket.ts";

/** What the agent says about itself: the part of the CP client's options (agent/cp-client.ts) this port uses. */
export interface OutboundOptions {
  identity: Pick<AgentIdentity, "agentId" | "publicKey" | "privateKey">;
  registration: Pick<
    MessageBody<"register">,
    "vm_name" | "node_size" | "datacenter" | "bootstrap_token" | "enrollment_token"
  >;
  quoteProvider: QuoteProvider;
  /** When the agent process started (ms epoch): `started_at` in the register snapshot. */
  startedAt: number;
  agentVersion: string;
  log: Logger;
  /** Answers the CP's workload requests and reports the workload in heartbeats; none: the agent runs nothing. */
  commands?: CpCommands;
}

/** The port of one client: frames go out on `socket`, which reports to `events` once the machine opens it. */
export function clientPort(opts: OutboundOptions, socket: CpSocket, events: SocketEvents): ClientPort {
  const { identity, log } = opts;
  const { send } = socket;
  return {
    async registerQuote(nonce) {
      try {
        return await opts.quoteProvider.getQuote(reportDataFor("register", nonce, identity.publicKey));
      } catch (err) {
        log.error(
          { provider: opts.quoteProvider.name, err: (err as Error).message },
          "quote provider failed",
        );
        throw err;
      }
    },
    open: () => socket.open(events),
    close: (p) => socket.close(p.code, p.reason),
    register(p) {
      send(
        "register",
        {
          ...opts.registration,
          agent_pubkey: new Uint8Array(identity.publicKey),
          nonce: new Uint8Array(p.nonce),
          quote: new Uint8Array(p.quote),
          pop: signPop(identity.privateKey, p.nonce),
          agent_version: opts.agentVersion,
          snapshot: {
            workload: opts.commands?.report() ?? null,
            heartbeat_seq: p.heartbeatSeq,
            started_at: opts.startedAt,
          },
        },
        p.re === undefined ? { id: socket.nextId() } : { id: socket.nextId(), re: p.re },
      );
    },
    heartbeat: (seq) =>
      send(
        "heartbeat",
        { seq, sent_at: Date.now(), workload: opts.commands?.report() ?? null },
        { id: socket.nextId() },
      ),
    rejectUnexpected(p) {
      log.warn({ code: "EE-PROTO-UNEXPECTED", type: p.type }, "unexpected frame from the control plane");
      socket.sendError(
        "EE-PROTO-UNEXPECTED",
        `"${p.type}" is not expected in the agent's current state`,
        p.id,
      );
    },
    async refreshQuote(request) {
      const { reportData, ...binds } = bindQuote(
        "refresh",
        request.nonce,
        identity.publicKey,
        opts.commands?.running() ?? undefined,
      );
      return { quote: await opts.quoteProvider.getQuote(reportData), ...binds };
    },
    sendAttestation: (p) =>
      send(
        "attestation",
        {
          quote: new Uint8Array(p.answer.quote),
          purpose: p.answer.purpose,
          ...(p.answer.compose_hash ? { compose_hash: p.answer.compose_hash } : {}),
          ...(p.answer.workload_hash ? { workload_hash: p.answer.workload_hash } : {}),
        },
        p.re === undefined ? {} : { re: p.re },
      ),
    sendFailure(p) {
      log.warn({ code: p.code }, "re-attestation failed");
      socket.sendError(p.code, p.message, p.re);
    },
  };
}
