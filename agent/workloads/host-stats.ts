// The host's own figures reported beside a deployment's container stats (GET /stats, the CP's relayed stats).
// May import node:os only.
import { availableParallelism, freemem, loadavg, totalmem, uptime } from "node:os";
import type { HostStats } from "./types.ts";

export function hostStats(): HostStats {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return {
    cpus: availableParallelism(),
    load_avg: [one, five, fifteen],
    memory_total_bytes: totalmem(),
    memory_free_bytes: freemem(),
    uptime_s: Math.round(uptime()),
  };
}
