// Registered apps as both business-store adapters (SQLite and PostgreSQL) keep them: the stored row, its compose
// sealed under the store key and bound to `app NAME@VERSION`, and the health spec as JSON text. Imports types only.
import type { AppRow } from "../store/deployment-store.ts";
import type { TextSealer } from "../store/sealed-text.ts";

export type RawApp = Omit<AppRow, "health"> & { health: string | null };

/** What a sealed app compose is bound to (the same context the runtime DB's apps table used). */
const appContext = (name: string, version: string) => `app ${name}@${version}`;

export const sealAppCompose = (app: AppRow, sealer: TextSealer): string =>
  sealer.seal(app.compose, appContext(app.name, app.version));

export const openApp = (r: RawApp, sealer: TextSealer): AppRow => ({
  ...r,
  compose: sealer.open(r.compose, appContext(r.name, r.version)),
  health: r.health ? JSON.parse(r.health) : null,
});
