// What this CP verifies quotes against right now: its own trust anchors and measurement policy (from its flags),
// or, on a federation dc that applied the master's desired state, the master's policy (while the master has one)
// and the master's trust roots (docs/federation.md "Desired state"). Registration and re-attestation read the
// getters on every quote, so a change applies from the next one; an agent already admitted is judged by it at its
// next re-attestation. Imports attestation/ and lib/log (type).
import type { MeasurementPolicy } from "../attestation/policy.ts";
import { type TrustAnchors, trustIntelAnd } from "../attestation/trust.ts";
import type { Logger } from "../lib/log.ts";

export interface FromMaster {
  /** The master's --policy, or null: this CP's own applies. */
  policy: MeasurementPolicy | null;
  /** The master's non-Intel roots (PEM): Intel's and these are trusted. Undefined: this CP's own anchors. */
  trustRoots: readonly string[] | undefined;
}

export class AttestationSettings {
  readonly #own: { trust: TrustAnchors; measurement: MeasurementPolicy };
  readonly #log: Logger;
  #policy: MeasurementPolicy | null = null;
  #trust: TrustAnchors | null = null;

  constructor(own: { trust: TrustAnchors; measurement: MeasurementPolicy }, log: Logger) {
    this.#own = own;
    this.#log = log;
  }

  get trust(): TrustAnchors {
    return this.#trust ?? this.#own.trust;
  }

  get measurement(): MeasurementPolicy {
    return this.#policy ?? this.#own.measurement;
  }

  /**
   * trust and measurement as getters of a plain object: safe as a prototype (extendLive), which this class is not
   * (its private fields are not reachable through a prototype chain).
   */
  live(): { readonly trust: TrustAnchors; readonly measurement: MeasurementPolicy } {
    const self = this;
    return {
      get trust() {
        return self.trust;
      },
      get measurement() {
        return self.measurement;
      },
    };
  }

  /** This CP's own anchors, whatever a master says: what a master publishes as its trust roots. */
  get ownTrust(): TrustAnchors {
    return this.#own.trust;
  }

  /**
   * Takes the master's policy and trust roots. Everything is checked before anything changes: a root that is not
   * a self-signed CA throws EE-CONFIG-INVALID and the settings stay as they were.
   */
  setFromMaster(m: FromMaster): void {
    const trust = m.trustRoots === undefined ? null : this.#sameOr(trustIntelAnd(m.trustRoots));
    const policyChanged = JSON.stringify(m.policy) !== JSON.stringify(this.#policy);
    const trustChanged = trust !== this.#trust;
    this.#trust = trust;
    if (policyChanged) {
      const had = this.#policy !== null;
      this.#policy = m.policy;
      if (m.policy !== null)
        this.#log.warn(
          { modes: modesOf(m.policy) },
          had
            ? "measurement policy: the federation master's policy changed; it applies to the next registrations"
            : "measurement policy: the federation master's policy replaces this dc's own for the next registrations",
        );
      else
        this.#log.warn(
          { modes: modesOf(this.#own.measurement) },
          "measurement policy: the federation master has none; this dc's own applies again",
        );
    }
    if (trustChanged)
      this.#log.warn(
        { roots: this.trust.anchors.map((a) => ({ label: a.label, fingerprint: a.fingerprint })) },
        trust === null
          ? "attestation roots: this dc's own again"
          : "attestation roots: Intel's and the federation master's only",
      );
  }

  /** The anchor set in use when `next` holds the same roots: its verification caches stay warm. */
  #sameOr(next: TrustAnchors): TrustAnchors {
    const key = (t: TrustAnchors) =>
      t.anchors
        .map((a) => a.fingerprint)
        .sort()
        .join(",");
    return this.#trust !== null && key(this.#trust) === key(next) ? this.#trust : next;
  }
}

const modesOf = (p: MeasurementPolicy) => ({
  mrtd: p.mrtd.mode,
  rtmr: p.rtmr.mode,
  tcb: p.tcb.mode,
  td_attributes: p.td_attributes.mode,
});

/**
 * `base` with `extra` on top, `base` linked as the prototype rather than copied: a spread would read its getters
 * (AttestationSettings' trust and measurement) once and freeze them.
 */
export function extendLive<B extends object, E extends object>(base: B, extra: E): B & E {
  return Object.assign(Object.create(base) as B, extra);
}
