// The master CP's side of federation. A dc makes itself known with a hello (core NATS, over the leaf link); the
// master then creates, on the hub, the mirror of that dc's EE_UP (keeping the dc's sequence numbers) and the dc's
// command stream EE_DOWN_<dc>, and reads the mirror in order into the FederatedView. A hello from a dc whose view
// has gone stale re-applies the mirror's unchanged config (the "kick" nats-server 2.10 needs after a leaf
// reconnects; harmless on 2.9), backing off 5 s × 2^failures up to 2 min. Mirrors found on the hub at start are
// replayed from their first message, so a restarted master rebuilds its view without a store of its own. The
// master's own log (dc `master`, mixed mode) is read the same way from its stream on the hub (followOwn).
// Imports actors/ types, spec/errors, lib/log, contract/metrics types, and this folder.

import type { MetricFamily } from "../../contract/metrics.ts";
import type { Logger } from "../../lib/log.ts";
import { FederationError } from "../../spec/errors.ts";
import type { FederationBus, StreamSpec } from "./bus.ts";
import type { DatacenterView, FederatedView } from "./federated-view.ts";
import { LAG_WARN_DEFAULT_MS, lagMetrics, lagTransitions } from "./lag-guardrail.ts";
import { type DeployCommand, decodeJson, encodeJson, upMessageSchema } from "./messages.ts";
import {
  checkDcId,
  downSubject,
  downSubjects,
  HELLO_WILDCARD,
  hubDownStream,
  hubUpMirror,
  jsApi,
  UP_STREAM,
  upDeliver,
} from "./topology.ts";

export interface MasterLinkOptions {
  bus: FederationBus;
  view: FederatedView;
  log: Logger;
  /** A dc whose newest state is older than this is degraded (and skipped by placement). Default 30 s. */
  degradedAfterMs?: number;
  /** Sync lag above this is a warn line (once on crossing, an info line on recovery) and a metric. Default 60 s. */
  lagWarnMs?: number;
  now?: () => number;
}

const DESCRIPTION = "EasyEnclave dc ";
const DAY_MS = 86_400_000;
const KICK_BASE_MS = 5_000;
const KICK_MAX_MS = 120_000;

interface DcLinkState {
  stopFollow: () => void;
  kickAt: number;
  kickFailures: number;
  /** The mirror's own figures, refreshed on each hello: messages behind, error. */
  pending: number | null;
}

export class MasterLink {
  readonly #o: Required<MasterLinkOptions>;
  readonly #dcs = new Map<string, DcLinkState>();
  readonly #creating = new Map<string, Promise<void>>();
  #stopServe: () => void = () => {};
  #lagWarned: ReadonlySet<string> = new Set();
  #lagTimer: NodeJS.Timeout | undefined;

  constructor(o: MasterLinkOptions) {
    this.#o = {
      degradedAfterMs: 30_000,
      lagWarnMs: LAG_WARN_DEFAULT_MS,
      now: Date.now,
      ...o,
    };
  }

  get degradedAfterMs(): number {
    return this.#o.degradedAfterMs;
  }

  /** Follows every dc whose mirror is on the hub already (a restarted master), then answers hellos. */
  async start(): Promise<void> {
    for (const description of await this.#o.bus.streamDescriptions()) {
      const dc = /^EasyEnclave dc ([a-z0-9-]+)$/.exec(description)?.[1];
      if (dc !== undefined) await this.#ensure(dc);
    }
    this.#stopServe = this.#o.bus.serve(HELLO_WILDCARD, (subject) => {
      const dc = checkDcId(subject.slice(subject.lastIndexOf(".") + 1), "hello");
      this.#hello(dc);
      return encodeJson({ ok: true });
    });
    // On a timer, not on hellos: a dead dc sends none. A quarter of the threshold keeps the line timely.
    this.#lagTimer = setInterval(() => this.#checkLag(), Math.min(5_000, this.#o.lagWarnMs / 4));
    this.#lagTimer.unref();
  }

  #checkLag(): void {
    const t = lagTransitions(this.#lagWarned, this.datacenters(), this.#o.lagWarnMs);
    this.#lagWarned = t.above;
    for (const d of t.crossed)
      this.#o.log.warn(
        { dc_id: d.dc_id, lag_s: d.lag_s, threshold_s: this.#o.lagWarnMs / 1000 },
        "federation: sync lag above the guardrail",
      );
    for (const d of t.recovered)
      this.#o.log.info({ dc_id: d.dc_id, lag_s: d.lag_s }, "federation: sync lag back under the guardrail");
  }

  /** Per-dc lag, guardrail and degraded gauges for the master's /metrics. */
  metrics(): MetricFamily[] {
    return lagMetrics(this.datacenters(), this.#o.lagWarnMs);
  }

  #hello(dc: string): void {
    const known = this.#dcs.get(dc);
    if (!known) {
      void this.#ensure(dc).catch((err: unknown) =>
        this.#o.log.warn(
          { err: (err as Error).message, dc_id: dc },
          "federation: cannot set up the dc's streams",
        ),
      );
      return;
    }
    const now = this.#o.now();
    void this.#o.bus.streamState(hubUpMirror(dc)).then((s) => {
      known.pending = s?.mirror?.lag ?? null;
    });
    const healthy = this.#o.view.isHealthy(dc, now, Math.min(this.#o.degradedAfterMs, 10_000));
    if (healthy) {
      known.kickFailures = 0;
      return;
    }
    if (now < known.kickAt) return;
    known.kickAt = now + Math.min(KICK_MAX_MS, KICK_BASE_MS * 2 ** known.kickFailures++);
    this.#o.log.info({ dc_id: dc }, "federation: dc says hello but its mirror is behind; kicking the mirror");
    this.#o.bus
      .putStream(this.#upMirror(dc))
      .catch((err: unknown) =>
        this.#o.log.warn({ err: (err as Error).message, dc_id: dc }, "federation: mirror kick failed"),
      );
  }

  /** Creates the dc's streams on the hub (once; concurrent hellos share the work) and starts reading its mirror. */
  #ensure(dc: string): Promise<void> {
    const pending = this.#creating.get(dc);
    if (pending) return pending;
    const work = (async () => {
      const { bus } = this.#o;
      await bus.putStream(this.#upMirror(dc));
      await bus.putStream({
        name: hubDownStream(dc),
        description: `${DESCRIPTION}${dc} commands`,
        subjects: [downSubjects(dc)],
        maxAgeMs: 7 * DAY_MS,
        discardNew: true,
        duplicateWindowMs: 120_000,
      });
      this.#follow(dc);
    })();
    this.#creating.set(dc, work);
    work.catch(() => this.#creating.delete(dc));
    return work;
  }

  /**
   * Mixed mode: the master's own log, which its DcLink writes into EE_UP_<dc> on the hub itself, read into the
   * view like any dc's mirror (nothing to create, nothing to kick, no commands).
   */
  followOwn(dc: string): void {
    this.#follow(dc);
  }

  #follow(dc: string): void {
    const { bus, view } = this.#o;
    view.know(dc);
    const stopFollow = bus.follow(hubUpMirror(dc), view.resumeSeq(dc), (m) => {
      const parsed = upMessageSchema.safeParse(decodeJson(m.data));
      if (!parsed.success) {
        this.#o.log.warn(
          { dc_id: dc, seq: m.seq },
          "federation: a message from the dc does not validate; skipped",
        );
        return;
      }
      view.apply(dc, m.seq, parsed.data);
    });
    this.#dcs.set(dc, { stopFollow, kickAt: 0, kickFailures: 0, pending: null });
    this.#o.log.info({ dc_id: dc }, "federation: following dc");
  }

  #upMirror(dc: string): StreamSpec {
    return {
      name: hubUpMirror(dc),
      description: `${DESCRIPTION}${dc}`,
      maxAgeMs: 7 * DAY_MS,
      mirror: { stream: UP_STREAM, api: jsApi(dc), deliver: upDeliver(dc) },
    };
  }

  datacenters(): (DatacenterView & { pending: number | null })[] {
    return this.#o.view
      .datacenters(this.#o.now(), this.#o.degradedAfterMs)
      .map((d) => ({ ...d, pending: this.#dcs.get(d.dc_id)?.pending ?? null }));
  }

  /** Queues a command on the dc's stream; the hub keeps it until the dc's mirror takes it. */
  async send(
    dc: string,
    command: "deploy" | "undeploy",
    body: DeployCommand | { deployment_id: string; issued_at: number },
  ): Promise<void> {
    try {
      await this.#ensure(dc);
      await this.#o.bus.publish(
        downSubject(dc, command),
        encodeJson(body),
        `master:${body.deployment_id}:${command}:${body.issued_at}`,
      );
    } catch (err) {
      throw new FederationError(
        "EE-FED-UNAVAILABLE",
        `the ${command} for dc ${dc} could not be queued on the hub: ${(err as Error).message}`,
      );
    }
  }

  stop(): void {
    this.#stopServe();
    clearInterval(this.#lagTimer);
    for (const s of this.#dcs.values()) s.stopFollow();
  }
}
