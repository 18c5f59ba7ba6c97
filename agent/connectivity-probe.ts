// The optional connectivity probe (config `connectivity_probe`): a GET of a URL on the path the agent depends on
// (a tunnel, a gateway) every interval. Any HTTP answer below 500 counts as reachable; a network error, a timeout
// or a 5xx does not. After `failure_threshold` failures in a row the action runs once: `log` warns, `exit` makes
// the agent give up (it exits non-zero and its service manager or VM decides what next). May import lib/, spec/.
import type { Logger } from "../lib/log.ts";
import { AgentExitError } from "../spec/errors.ts";
import type { AgentConfig } from "./config.ts";

export type ProbeConfig = NonNullable<AgentConfig["connectivity_probe"]>;

export interface ProbeState {
  consecutiveFailures: number;
  lastOkAt: number | null;
  lastError: string | null;
}

export interface ConnectivityProbe {
  state(): ProbeState;
  stop(): void;
}

export function startConnectivityProbe(
  cfg: ProbeConfig,
  o: { log: Logger; onExit: (err: AgentExitError) => void; now?: () => number },
): ConnectivityProbe {
  const now = o.now ?? Date.now;
  const origin = new URL(cfg.url).origin;
  const state: ProbeState = { consecutiveFailures: 0, lastOkAt: null, lastError: null };
  let busy = false;

  async function probe(): Promise<void> {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(cfg.url, { signal: AbortSignal.timeout(cfg.timeout_ms), redirect: "manual" });
      await res.body?.cancel();
      if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
      if (state.consecutiveFailures >= cfg.failure_threshold)
        o.log.info({ probe: origin }, "connectivity back");
      state.consecutiveFailures = 0;
      state.lastOkAt = now();
      state.lastError = null;
    } catch (err) {
      state.consecutiveFailures++;
      state.lastError = (err as Error).message;
      // Once per run of failures: the one that reaches the threshold acts; a success starts a new run.
      if (state.consecutiveFailures === cfg.failure_threshold) {
        const message = `connectivity probe to ${origin} failed ${state.consecutiveFailures} times in a row (${state.lastError})`;
        if (cfg.action === "exit") o.onExit(new AgentExitError("EE-AGENT-CONNECTIVITY", message));
        else o.log.warn({ probe: origin, failures: state.consecutiveFailures }, message);
      }
    } finally {
      busy = false;
    }
  }

  const timer = setInterval(() => void probe(), cfg.interval_ms);
  timer.unref();
  void probe();
  return { state: () => ({ ...state }), stop: () => clearInterval(timer) };
}
