// Which compose a deploy runs: its own `compose`, or a registered app (`name@version`, or `name` for the newest
// version) from the business store's app registry; summarized once per text (hash, services, unpinned images),
// refusing unpinned images when the CP requires digests. Registering an app version lives here too.
// Imports spec/ and the business store's and event log's types.
import { ComposeError, ConflictError, NotFoundError, ValidationError } from "../../spec/errors.ts";
import type { HealthSpec } from "../../spec/protocol.ts";
import type { AuditEntry } from "../business/audit-chain.ts";
import type { AppRegistry } from "../business/store.ts";
import { ComposeSummaries } from "../compose-summary.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { EventLog } from "../store/event-log.ts";

export interface ResolvedCompose {
  name: string;
  version: string | null;
  compose: string;
  hash: string;
  services: string[];
  health: HealthSpec | null;
}

export interface AppCatalogOptions {
  apps: AppRegistry;
  events: Pick<EventLog, "append">;
  now: () => number;
  requirePinnedImages: boolean;
  /** A federation dc: the compose hash the master's catalog gives name@version, if it holds it. */
  masterApp: (name: string, version: string) => string | undefined;
}

export class AppCatalog {
  readonly #o: AppCatalogOptions;
  readonly #composes = new ComposeSummaries();

  constructor(o: AppCatalogOptions) {
    this.#o = o;
  }

  resolve(req: { app: string; compose?: string; context?: Uint8Array }): ResolvedCompose {
    const [name, version] = splitAppRef(req.app);
    let compose = req.compose;
    let health: HealthSpec | null = null;
    if (compose === undefined) {
      const app = this.#o.apps.app(name, version);
      if (!app)
        throw new NotFoundError(
          "EE-NOT-FOUND",
          version === undefined
            ? `app ${name} is not registered`
            : `app ${name}@${version} is not registered`,
        );
      compose = app.compose;
      health = app.health;
      this.#matchesMaster(name, app.version, app.compose_hash);
      return { ...this.#summarize(compose, req.context), name, version: app.version, compose, health };
    }
    if (version !== undefined)
      throw new ValidationError(
        "EE-REQ-INVALID",
        "give either compose or an app@version reference, not both",
      );
    return { ...this.#summarize(compose, req.context), name, version: null, compose, health };
  }

  /** Registers `name@version`; versions are immutable (a second put of the same version is a conflict). */
  async register(
    app: { name: string; version: string; compose: string; health?: HealthSpec },
    audit: AuditEntry | null,
  ): Promise<AppRow> {
    const row: AppRow = {
      name: app.name,
      version: app.version,
      compose: app.compose,
      compose_hash: this.#composes.summarize(app.compose).hash,
      health: app.health ?? null,
      created_at: this.#o.now(),
    };
    this.#matchesMaster(row.name, row.version, row.compose_hash);
    if (!(await this.#o.apps.putApp(row, audit)))
      throw new ConflictError("EE-CONFLICT-STATE", `app ${app.name}@${app.version} already exists`);
    this.#o.events.append({
      at: row.created_at,
      kind: "app.registered",
      data: { name: row.name, version: row.version, compose_hash: row.compose_hash },
    });
    return row;
  }

  list(): AppRow[] {
    return this.#o.apps.apps();
  }

  /** Throws EE-CONFLICT-STATE when the federation master's catalog holds name@version with another compose. */
  #matchesMaster(name: string, version: string, hash: string): void {
    const master = this.#o.masterApp(name, version);
    if (master !== undefined && master !== hash)
      throw new ConflictError(
        "EE-CONFLICT-STATE",
        `app ${name}@${version} differs from the federation master's catalog (compose hash ${master}); register another version`,
        { app: name, version, compose_hash: hash, master_compose_hash: master },
      );
  }

  /** The compose summary, refusing unpinned images when the policy says so (before anything is created). */
  #summarize(compose: string, context: Uint8Array | undefined) {
    const summary = this.#composes.summarize(compose, context);
    if (this.#o.requirePinnedImages && summary.unpinned.length > 0)
      throw new ComposeError(
        "EE-COMPOSE-UNPINNED",
        `this control plane requires images pinned by @sha256: digest; not pinned: ${summary.unpinned.join(", ")}`,
      );
    return summary;
  }
}

function splitAppRef(ref: string): [string, string | undefined] {
  const at = ref.indexOf("@");
  return at < 0 ? [ref, undefined] : [ref.slice(0, at), ref.slice(at + 1)];
}
