// Who inspects which live actor (the CP's inspect endpoints): a watcher is keyed by agent id or deployment id,
// follows its key across actor restarts, and ends when the key has no actor any more. Owners call started/ended
// when they create and remove actors, never per event: with nobody watching each is one Map lookup, and no actor
// carries an inspection observer (XState then skips inspection entirely).
import type { AnyActorRef, InspectionEvent, Observer } from "xstate";

/** What sees an actor's inspection events (transport/inspection.ts statelyObserver makes one for the inspector). */
export type InspectionObserver = Observer<InspectionEvent>;

interface Watcher {
  observer: InspectionObserver;
  end: () => void;
  detach: () => void;
}

export class ActorWatchers {
  readonly #byKey = new Map<string, Set<Watcher>>();

  /** Starts inspecting `actor` for `key`; `end` is called once the key's actor is gone. Returns the detach function. */
  watch(key: string, actor: AnyActorRef, observer: InspectionObserver, end: () => void): () => void {
    const watcher: Watcher = { observer, end, detach: watchActor(actor, observer) };
    const set = this.#byKey.get(key) ?? new Set<Watcher>();
    this.#byKey.set(key, set);
    set.add(watcher);
    return () => {
      watcher.detach();
      set.delete(watcher);
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
    };
  }

  /** The key's actor was (re)created: its watchers move to it. */
  started(key: string, actor: AnyActorRef): void {
    const set = this.#byKey.get(key);
    if (!set) return;
    for (const w of set) {
      w.detach();
      w.detach = watchActor(actor, w.observer);
    }
  }

  /** The key's actor is gone for good: its watchers end. */
  ended(key: string): void {
    const set = this.#byKey.get(key);
    if (!set) return;
    this.#byKey.delete(key);
    // XState sends an actor's final snapshot to inspection after its observers hear it is done (which is when
    // owners call this), so the watchers detach once that call stack is over.
    queueMicrotask(() => {
      for (const w of set) {
        w.detach();
        w.end();
      }
    });
  }

  endAll(): void {
    for (const key of [...this.#byKey.keys()]) this.ended(key);
  }
}

/**
 * Inspects a live root actor: first where it is now (its `@xstate.actor`, those of its running children, and a
 * `@xstate.snapshot` of its present snapshot), then every event as it happens. Returns the detach function.
 * Nothing is added to an actor nobody watches: its system has no inspection observer and XState skips the work.
 */
export function watchActor(actor: AnyActorRef, observer: InspectionObserver): () => void {
  const rootId = actor.sessionId;
  const snapshot = actor.getSnapshot();
  observer.next?.({ type: "@xstate.actor", actorRef: actor, rootId });
  const children = (snapshot as { children?: Record<string, AnyActorRef | undefined> }).children ?? {};
  for (const child of Object.values(children))
    if (child) observer.next?.({ type: "@xstate.actor", actorRef: child, rootId });
  observer.next?.({
    type: "@xstate.snapshot",
    actorRef: actor,
    rootId,
    snapshot,
    event: { type: "ee.inspector.attached" },
  });
  const subscription = actor.system.inspect(observer);
  return () => subscription.unsubscribe();
}
