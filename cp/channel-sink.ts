// What the agent channel hands each validated frame to: the ChannelSink that routes frames to the actors (nonces
// and the registration gate, enrollment, the supervisor, re-attestation, deployments, relayed requests, the
// refusal audit). Routing only; every decision is the actors'. Imports actors/ and the sink's type.
import type { AgentRequests } from "../actors/agent-requests.ts";
import type { Enrollments } from "../actors/business/enrollment.ts";
import type { Identity } from "../actors/business/identity.ts";
import type { Deployments } from "../actors/deployments.ts";
import type { NonceBook } from "../actors/nonce-book.ts";
import type { Reattestor } from "../actors/reattestation.ts";
import type { RefusalAudit } from "../actors/refusal-audit.ts";
import { gateRegister } from "../actors/registration.ts";
import type { Supervisor } from "../actors/supervisor.ts";
import { agentIdFromPubkey } from "../attestation/agent-key.ts";
import type { Logger } from "../lib/log.ts";
import { EeError } from "../spec/errors.ts";
import type { ChannelSink } from "../transport/ws-server.ts";

export interface SinkTargets {
  nonces: NonceBook;
  enrollments: Enrollments;
  identity: Identity;
  supervisor: Supervisor;
  reattestor: Reattestor;
  deployments: Deployments;
  requests: AgentRequests;
  refusals: RefusalAudit;
  log: Logger;
}

export function channelSink(o: SinkTargets): ChannelSink {
  const { nonces, enrollments, identity, supervisor, reattestor, deployments, requests, refusals, log } = o;
  return {
    opened: (connId, at) => {
      const { nonce, expiresAt } = nonces.issue(connId, at);
      return { nonce, expires_at: expiresAt, server_time: at };
    },
    registerFrame: (connId, sessionId, body, at) => {
      gateRegister(nonces, connId, body, at);
      // After the gate: the agent proved it holds the key its id comes from, so the token binds that agent.
      const agentId = agentIdFromPubkey(body.agent_pubkey);
      try {
        enrollments.register(body.enrollment_token, agentId, at);
      } catch (err) {
        identity
          .audit({
            principal: "anonymous",
            action: "agent.enroll",
            target: `agent:${agentId}`,
            outcome: err instanceof EeError ? err.code : "EE-INTERNAL",
          })
          .catch((e: unknown) => log.error({ err: e }, "audit record write failed"));
        throw err;
      }
      return supervisor.register({ connId, sessionId, nonce: body.nonce, body, at });
    },
    heartbeat: (agentId, connId, env) =>
      supervisor.heartbeat(agentId, connId, env.id, env.body.seq, env.body.workload),
    attestation: (agentId, connId, env) => reattestor.answer(agentId, connId, env.re, env.body),
    deployStatus: (agentId, _connId, env) => deployments.status(agentId, env.body),
    reply: (agentId, _connId, env) => {
      if (!requests.reply(agentId, env.re, env.body.result))
        log.warn({ agent_id: agentId, re: env.re }, "reply to no pending request");
    },
    logChunk: (agentId, _connId, env) => {
      if (!requests.chunk(agentId, env.re, env.body))
        log.debug({ agent_id: agentId, re: env.re }, "log chunk for no pending request");
    },
    agentError: (agentId, _connId, env) => {
      if (requests.error(agentId, env.re, env.body)) return;
      log.warn({ agent_id: agentId, code: env.body.code, re: env.re }, "agent reported an error");
    },
    closed: (connId, agentId) => {
      nonces.forget(connId);
      if (agentId === null) return;
      reattestor.forget(agentId, connId);
      requests.forget(agentId, connId);
      supervisor.disconnected(agentId, connId);
    },
    refused: (connId, code, remote) => refusals.refused(connId, code, remote),
  };
}
