// Commands to agents: deploy and undeploy frames, signed with the CP's envelope for the agent they go to (at send
// time, so every resend gets its own nonce and issued_at), and registry credentials sealed to the agent's attested
// key for one deployment. Sent by agent id through AgentLink. Imports attestation/ (envelope, seal), spec/.
import type { EnvelopeCommand, EnvelopedType, EnvelopeSigner } from "../../attestation/cp-envelope.ts";
import { type Sealed, seal } from "../../attestation/seal.ts";
import { PlacementError } from "../../spec/errors.ts";
import type { RegistryAuth } from "../../spec/images.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import type { AgentLink } from "../agent-link.ts";
import type { Supervisor } from "../supervisor.ts";

export class AgentCommands {
  readonly #link: AgentLink;
  readonly #supervisor: Pick<Supervisor, "connOf" | "get">;
  readonly #envelope: EnvelopeSigner | null;

  constructor(
    link: AgentLink,
    supervisor: Pick<Supervisor, "connOf" | "get">,
    envelope: EnvelopeSigner | null,
  ) {
    this.#link = link;
    this.#supervisor = supervisor;
    this.#envelope = envelope;
  }

  /** The CP's envelope signer, if it signs commands (adopting a deployment checks its origin against it). */
  get envelope(): EnvelopeSigner | null {
    return this.#envelope;
  }

  /** Sends a deploy/undeploy frame to the agent's current connection, if it has one. */
  send<T extends EnvelopedType>(agentId: string, type: T, body: EnvelopeCommand<T>): void {
    const conn = this.#supervisor.connOf(agentId);
    if (conn === null) return;
    const envelope = this.#envelope?.sign(type, body, agentId);
    const signed = (envelope ? { ...body, envelope } : body) as MessageBody<T>;
    this.#link.send(agentId, type, signed, { id: this.#link.nextFrameId(), conn });
  }

  /** Seals registry credentials to the agent's attested identity key, for this deployment only. */
  sealAuth(auth: RegistryAuth, agentId: string, deploymentId: string): Sealed {
    const pubkey = this.#supervisor.get(agentId)?.getSnapshot().context.facts?.agent_pubkey;
    if (!pubkey)
      throw new PlacementError("EE-PLACE-NO-AGENT", `agent ${agentId} has no known key to seal to`);
    return seal(Buffer.from(JSON.stringify(auth)), Buffer.from(pubkey, "hex"), agentId, deploymentId);
  }
}
