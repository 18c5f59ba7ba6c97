// The control plane's start and stop as one ordered list: each component starts after the ones before it and stops
// before them, so the stop order is the start order reversed by construction rather than kept by hand, and a start
// that fails stops what had started. cp/control-plane.ts declares the list; tests read `started` and `stopped`.
// Imports nothing.

/** One part of the CP with a lifetime: `start` makes or starts it (its value is what later components use). */
export interface Component<T> {
  name: string;
  start(): T | Promise<T>;
  /** Undoes `start` (timers, sockets, files); absent when there is nothing to undo. */
  stop?(value: T): unknown;
}

interface Started {
  name: string;
  stop: (() => unknown) | undefined;
}

export class Components {
  readonly #running: Started[] = [];
  readonly #started: string[] = [];
  readonly #stopped: string[] = [];
  readonly #onStopError: (name: string, err: unknown) => void;

  /** A component whose stop throws is reported here and the ones before it still stop. */
  constructor(onStopError: (name: string, err: unknown) => void) {
    this.#onStopError = onStopError;
  }

  /** Names in the order they started. */
  get started(): readonly string[] {
    return this.#started;
  }

  /** Names in the order they stopped. */
  get stopped(): readonly string[] {
    return this.#stopped;
  }

  /** Starts one component and returns its value; if its start throws, stops all started so far and rethrows. */
  async start<T>(component: Component<T>): Promise<T> {
    let value: T;
    try {
      value = await component.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    const { stop } = component;
    this.#running.push({ name: component.name, stop: stop && (() => stop.call(component, value)) });
    this.#started.push(component.name);
    return value;
  }

  /** Stops every running component, newest first. */
  async stop(): Promise<void> {
    for (let c = this.#running.pop(); c; c = this.#running.pop()) {
      try {
        await c.stop?.();
      } catch (err) {
        this.#onStopError(c.name, err);
      }
      this.#stopped.push(c.name);
    }
  }
}
