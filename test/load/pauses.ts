// Where a benchmark process stalls: the event loop's worst delay and the longest GC pause since the last read.
// The CP and the load generators both report them, so a latency tail can be told apart from the side that caused it.
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";

export interface Pauses {
  loop_max_ms: number;
  gc_max_ms: number;
}

/** Starts watching; the returned function reads the worst pauses since the previous read and resets them. */
export function watchPauses(): () => Pauses {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let gcMax = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration);
  }).observe({ entryTypes: ["gc"] });
  return () => {
    const out = { loop_max_ms: loop.max / 1e6, gc_max_ms: gcMax };
    loop.reset();
    gcMax = 0;
    return out;
  };
}
