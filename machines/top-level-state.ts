// The top-level state of a snapshot value, read one way for every machine. Each machine module binds it to its own
// state union (`export const topLevelState: (value: StateValue) => XState = topLevelStateOf`), which
// test/machines/state-unions.test.ts keeps equal to the machine's resting top-level states. Imports xstate types.
import type { StateValue } from "xstate";

/** The value itself for an atomic state, its one key for a compound one. */
export function topLevelStateOf<S extends string>(value: StateValue): S {
  return (typeof value === "string" ? value : Object.keys(value)[0]) as S;
}
