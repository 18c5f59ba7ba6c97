// How long a freshly started agent version gets to prove it runs, and how long install waits for it to register:
// the installer's defaults, in a module of their own so `eectl install … --help` can show them without loading
// the installer. Imports nothing.

/** How long a freshly started version gets to show a process, and how long that process must then stay up. */
export interface StartCheck {
  timeoutMs: number;
  settleMs: number;
}

export const DEFAULT_START_CHECK: StartCheck = { timeoutMs: 20_000, settleMs: 5_000 };

/** How long `eectl install agent` waits by default: generous, since the first start also makes the agent key. */
export const DEFAULT_WAIT_MS = 120_000;
