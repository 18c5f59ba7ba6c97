// Stately-inspector events from XState actors, for operators: XState's inspection events converted by
// @statelyai/inspect (the shapes its WebSocket inspector sends: `@xstate.actor`, `@xstate.snapshot`,
// `@xstate.event`), then scrubbed to plain JSON without secrets. The CP attaches this to one live actor on request
// (actors/actor-watchers.ts watchActor); the agent passes it as its actors' `inspect` option under `eectl agent --inspect`.
// @statelyai/inspect is loaded on first use (about 100 ms), so a process nobody inspects never loads it.
import type { InspectionEvent, Observer } from "xstate";
import { plainValue } from "./rest/json.ts";

/** One Stately inspection event as plain JSON (what `eectl inspect --jsonl` prints, one a line). */
export interface StatelyEvent {
  type: "@xstate.actor" | "@xstate.snapshot" | "@xstate.event";
  sessionId: string;
  [key: string]: unknown;
}

export type InspectionObserver = Observer<InspectionEvent>;

/**
 * Keys whose values never leave the process: the session's api_secret (in the agent's `registered` frame), tokens
 * (bootstrap tokens, registry credentials) and anything named like a password or private key.
 */
const SECRET_KEY = /secret|token|passw(or)?d|authori[sz]ation|registry_auth|credential|private_?key/i;
/** Compose texts can carry environment values (passwords, keys): only their size is shown. */
const TEXT_KEYS = new Set(["compose"]);
const MAX_DEPTH = 16;
export const SCRUBBED = "[scrubbed]";

/**
 * A deep copy of `value` as plain JSON data: secret keys replaced by SCRUBBED, compose texts by their size, bytes
 * as hex (large blobs such as quotes by their size), functions dropped, objects with toJSON (snapshots, actor refs)
 * by what it gives, depth bounded.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return undefined;
  if (value instanceof Uint8Array) return plainValue("", value);
  if (depth >= MAX_DEPTH) return "[too deep]";
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return scrub(toJSON.call(value), depth + 1);
  if (Array.isArray(value) || value instanceof Set) return [...value].map((v) => scrub(v, depth + 1) ?? null);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const key = String(k);
    if (SECRET_KEY.test(key)) out[key] = SCRUBBED;
    else if (TEXT_KEYS.has(key) && typeof v === "string") out[key] = `[${Buffer.byteLength(v)} bytes]`;
    else {
      const s = scrub(v, depth + 1);
      if (s !== undefined) out[key] = s;
    }
  }
  return out;
}

let statelyInspect: Promise<typeof import("@statelyai/inspect")> | undefined;

/**
 * An observer for XState's inspection events (an actor's `inspect` option, or `system.inspect`) that hands each
 * one to `emit` as a scrubbed StatelyEvent. @statelyai/inspect converts on a later turn of the event loop, in order;
 * transitions, microsteps and actions are not forwarded (the inspector shows snapshots and events).
 */
export async function statelyObserver(emit: (event: StatelyEvent) => void): Promise<InspectionObserver> {
  statelyInspect ??= import("@statelyai/inspect");
  const { createInspector } = await statelyInspect;
  const inspector = createInspector({ send: (event) => emit(scrub(event) as StatelyEvent) });
  return inspector.inspect;
}

/** Runs `fn` after every event statelyObserver has queued so far (its conversions are timers, run in order). */
export function afterQueuedEvents(fn: () => void): void {
  setTimeout(fn, 0);
}
