// The control plane's timing defaults, in a module of their own so `eectl control-plane --help` can show them
// without loading the control plane (cli/commands/ import heavy modules only when they run). Imports nothing.
export const CP_DEFAULTS = {
  heartbeatMs: 5_000,
  staleAfterMs: 15_000,
  forgetAfterMs: 24 * 3600_000,
  challengeTtlMs: 30_000,
  reattestMs: 600_000,
};
