// How long a freshly started agent version gets to prove it runs: the installer's default, in a module of its
// own so `eectl install … --help` can show it without loading the installer. Imports nothing.

/** How long a freshly started version gets to show a process, and how long that process must then stay up. */
export interface StartCheck {
  timeoutMs: number;
  settleMs: number;
}

export const DEFAULT_START_CHECK: StartCheck = { timeoutMs: 20_000, settleMs: 5_000 };
