// Due times by key, in a min-heap: a periodic check takes only the keys that are due (O(due · log n)) instead of
// walking every key. A key has at most one due time; rescheduling leaves the old heap entry behind, and it is
// skipped when it surfaces. Used for re-attestation rounds and session liveness. Imports nothing.

interface Entry<K> {
  key: K;
  due: number;
}

export class DueQueue<K> {
  readonly #due = new Map<K, number>();
  readonly #heap: Entry<K>[] = [];

  /** Whether `key` has a due time (it loses it when taken by takeDue, unless scheduled again). */
  has(key: K): boolean {
    return this.#due.has(key);
  }

  /** Sets (or moves) `key`'s due time. */
  schedule(key: K, due: number): void {
    this.#due.set(key, due);
    this.#push({ key, due });
  }

  /**
   * Yields the keys due at `now`, earliest first, each removed from the queue as it is yielded; the caller may
   * schedule it again (later than `now`, or it comes back in the same pass).
   */
  *takeDue(now: number): Generator<K> {
    for (let top = this.#heap[0]; top !== undefined && top.due <= now; top = this.#heap[0]) {
      this.#pop();
      if (this.#due.get(top.key) !== top.due) continue;
      this.#due.delete(top.key);
      yield top.key;
    }
  }

  #push(e: Entry<K>): void {
    const a = this.#heap;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.due <= e.due) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = e;
  }

  #pop(): void {
    const a = this.#heap;
    const last = a.pop();
    if (a.length === 0 || last === undefined) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && a[r]!.due < a[l]!.due ? r : l;
      if (a[c]!.due >= last.due) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
  }
}
