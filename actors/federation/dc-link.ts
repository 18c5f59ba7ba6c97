// A datacenter CP's side of federation. The hot loops stay local (agents, attestation, deploys); this module
// only reports and obeys: it publishes the CP's event log (the outbox) into the dc's own stream EE_UP with
// Nats-Msg-Id `<dc>:<event id>`, each event with the current state of its agent or deployment, plus a health
// summary every few seconds; it mirrors its command stream from the hub (EE_DOWN) and runs each deploy or
// undeploy through the local deployments coordinator; and it says hello to the master, which creates the hub side
// and kicks a stalled mirror. When the local nats-server or the hub is away the CP keeps serving its agents: the
// outbox waits in SQLite (what was published is recovered from the stream itself at start) and EE_UP buffers on
// disk until the hub's mirror catches up. The master runs the same link as dc `master` (mixed mode): its own log
// goes into EE_UP_MASTER on the hub, which its MasterLink reads like any dc's mirror; it takes no commands and
// says no hello.
// Imports actors/ (types and the coordinator's API), spec/errors, lib/log, and this folder.
import type { Logger } from "../../lib/log.ts";
import { toEeError } from "../../spec/errors.ts";
import type { AgentIndex } from "../agent-index.ts";
import type { Deployments } from "../deployments.ts";
import type { EventLog, EventRecord } from "../store/event-log.ts";
import type { FederationBus } from "./bus.ts";
import {
  COMMAND_REFUSED,
  decodeJson,
  deployCommandSchema,
  encodeJson,
  type UpEvent,
  type UpHealth,
  undeployCommandSchema,
} from "./messages.ts";
import {
  DOWN_CONSUMER,
  DOWN_STREAM,
  downDeliver,
  HUB_DOMAIN,
  helloSubject,
  hubDownStream,
  hubUpMirror,
  jsApi,
  UP_STREAM,
  upEventSubject,
  upHealthSubject,
  upSubjects,
} from "./topology.ts";

export interface DcLinkOptions {
  dcId: string;
  bus: FederationBus;
  events: EventLog;
  index: AgentIndex;
  deployments: Deployments;
  log: Logger;
  /**
   * The master publishing its own log (mixed mode): into EE_UP_<dcId> on its own server, the hub, where a dc's
   * mirror would be, so there is nothing to mirror; no command stream, no hello.
   */
  onHub?: boolean;
  /** Health summaries (and hellos) this often; the master's lag figure is at most about this when in sync. */
  summaryMs?: number;
  now?: () => number;
}

/** EE_UP's limits: discard new, so a buffer that fills is a loud publish failure, never silent loss. */
export const UP_LIMITS = { maxBytes: 1024 ** 3, maxAgeMs: 7 * 86_400_000 };
/** Events published per read of the log. */
const BATCH = 500;

export class DcLink {
  readonly #o: Required<DcLinkOptions>;
  /** The newest event id the stream has acknowledged. */
  #published = 0;
  #pumping = false;
  #again = false;
  #stopped = false;
  #failures = 0;
  readonly #stops: (() => void)[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(o: DcLinkOptions) {
    this.#o = { summaryMs: 2_000, now: Date.now, onHub: false, ...o };
  }

  get #stream(): string {
    return this.#o.onHub ? hubUpMirror(this.#o.dcId) : UP_STREAM;
  }

  async start(): Promise<void> {
    const { bus, dcId } = this.#o;
    await bus.putStream({
      name: this.#stream,
      description: `EasyEnclave dc ${dcId}: outbox events and health summaries`,
      subjects: [upSubjects(dcId)],
      ...UP_LIMITS,
      discardNew: true,
      duplicateWindowMs: 120_000,
    });
    if (!this.#o.onHub)
      await bus.putStream({
        name: DOWN_STREAM,
        description: `EasyEnclave dc ${dcId}: commands from the master (mirror of the hub's ${hubDownStream(dcId)})`,
        mirror: { stream: hubDownStream(dcId), api: jsApi(HUB_DOMAIN), deliver: downDeliver(dcId) },
      });
    const last = await bus.lastMessage(this.#stream, upEventSubject(dcId));
    this.#published = last?.msgId ? Number(last.msgId.slice(dcId.length + 1)) || 0 : 0;
    this.#o.log.info({ dc_id: dcId, published: this.#published }, "federation: dc link up");
    this.#stops.push(this.#o.events.follow(() => this.#pump()));
    if (!this.#o.onHub)
      this.#stops.push(bus.work(DOWN_STREAM, DOWN_CONSUMER, (m) => this.#command(m.subject, m.data)));
    this.#timer = setInterval(() => this.#tick(), this.#o.summaryMs);
    this.#timer.unref();
    this.#tick();
  }

  #tick(): void {
    this.#pump();
    this.#publishHealth();
    const { bus, dcId } = this.#o;
    if (this.#o.onHub) return;
    bus.request(helloSubject(dcId), encodeJson({ dc_id: dcId, at: this.#o.now() }), 2_000).catch(() => {
      // The master or the hub is away: the next tick says hello again.
    });
  }

  #publishHealth(): void {
    const byState: Record<string, number> = {};
    let total = 0;
    let connected = 0;
    for (const r of this.#o.index.values()) {
      total++;
      if (r.connected) connected++;
      byState[r.state] = (byState[r.state] ?? 0) + 1;
    }
    const msg: UpHealth = {
      type: "health",
      at: this.#o.now(),
      outbox_seq: this.#published,
      agents: { total, connected, by_state: byState },
    };
    this.#o.bus
      .publish(upHealthSubject(this.#o.dcId), encodeJson(msg))
      .catch((err: unknown) => this.#failed(err));
  }

  /** Publishes what the log holds past #published, in order; one pump at a time, rerun when more arrived. */
  #pump(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#drain()
      .then(
        () => {
          this.#failures = 0;
        },
        (err: unknown) => this.#failed(err),
      )
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.#pump();
        }
      });
  }

  /**
   * A batch is published pipelined (one connection keeps the order) and #published advances over the acked
   * prefix; anything after a failure is published again later under the same Nats-Msg-Id, which the stream's
   * duplicate window stores once (and the master skips by event id beyond it).
   */
  async #drain(): Promise<void> {
    const { bus, dcId, events } = this.#o;
    for (;;) {
      const batch = events.list({ after: this.#published, limit: BATCH });
      if (batch.length === 0 || this.#stopped) return;
      const acks = await Promise.allSettled(
        batch.map((e) =>
          bus.publish(upEventSubject(dcId), encodeJson(this.#eventMessage(e)), `${dcId}:${e.id}`),
        ),
      );
      for (const [i, ack] of acks.entries()) {
        if (ack.status === "rejected") throw ack.reason;
        this.#published = batch[i]!.id;
      }
    }
  }

  #eventMessage(e: EventRecord): UpEvent {
    const deploymentId = typeof e.data.deployment_id === "string" ? e.data.deployment_id : null;
    let deployment: UpEvent["deployment"] = null;
    if (deploymentId !== null && (e.kind.startsWith("deployment.") || e.kind === COMMAND_REFUSED)) {
      try {
        const { compose: _c, ...row } = this.#o.deployments.get(deploymentId);
        deployment = row;
      } catch {
        deployment = null;
      }
    }
    return {
      type: "event",
      seq: e.id,
      at: e.at,
      kind: e.kind,
      agent_id: e.agent_id,
      agent: e.agent_id === null ? null : (this.#o.index.get(e.agent_id) ?? null),
      deployment,
      data: e.data,
    };
  }

  #failed(err: unknown): void {
    // Once, then every 30th time: an outage of the local server must not flood the log.
    if (this.#failures++ % 30 === 0)
      this.#o.log.warn(
        { err: (err as Error).message },
        "federation: publishing to the dc stream failed; retrying",
      );
  }

  /** Runs one command from the master. Throwing leaves it for redelivery (the CP is not ready yet). */
  async #command(subject: string, data: Uint8Array): Promise<void> {
    const { deployments, log, events } = this.#o;
    const body = decodeJson(data);
    if (subject.endsWith(".undeploy")) {
      const cmd = undeployCommandSchema.parse(body);
      try {
        await deployments.undeploy(cmd.deployment_id);
      } catch (err) {
        log.info(
          { deployment_id: cmd.deployment_id, code: toEeError(err).code },
          "federation: undeploy not needed",
        );
      }
      return;
    }
    const cmd = deployCommandSchema.parse(body);
    if (deployments.has(cmd.deployment_id)) return; // redelivered: it runs already
    try {
      await deployments.create(
        {
          app: cmd.app,
          compose: cmd.compose,
          agent_id: cmd.agent_id,
          ...(cmd.health ? { health: cmd.health } : {}),
        },
        `fed:${cmd.deployment_id}`,
        cmd.deployment_id,
      );
    } catch (err) {
      const e = toEeError(err);
      if (e.code === "EE-NOT-READY") throw err;
      log.warn({ deployment_id: cmd.deployment_id, code: e.code }, "federation: deploy command refused");
      events.append({
        at: this.#o.now(),
        kind: COMMAND_REFUSED,
        agent_id: cmd.agent_id,
        data: { deployment_id: cmd.deployment_id, code: e.code, message: e.message },
      });
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const stop of this.#stops) stop();
  }
}
