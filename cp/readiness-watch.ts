// What the CP tells about its readiness: the live agent set checkpointed for the next start's readiness rule, and
// log lines while it is not ready yet. Imports actors/ (read model, readiness, checkpoint store), lib/log and
// machines/agent-session (which states are live).
import type { AgentIndex } from "../actors/agent-index.ts";
import type { Readiness } from "../actors/readiness.ts";
import type { RuntimeCheckpoint } from "../actors/store/checkpoint.ts";
import type { Logger } from "../lib/log.ts";

import { LIVE_STATES } from "../machines/agent-session.ts";
import type { Component } from "./components.ts";

function writeCheckpoint(checkpoint: RuntimeCheckpoint, index: AgentIndex, log: Logger): void {
  const live: string[] = [];
  for (const r of index.values()) if (r.connected && LIVE_STATES.has(r.state)) live.push(r.agent_id);
  try {
    checkpoint.write(live, Date.now());
  } catch (err) {
    log.error({ err }, "writing the runtime checkpoint failed");
  }
}

/** Logs why the CP is not ready yet (every few seconds) and, once, that it is: operators see it in the log. */
export function watchReadiness(readiness: Readiness, log: Logger): NodeJS.Timeout {
  let lastLog = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const s = readiness.status(now);
    if (s.ready) {
      clearInterval(timer);
      log.info({ rule: s.rule, back: s.back, known_before: s.known_before }, `ready: ${s.reason}`);
    } else if (now - lastLog >= 5_000) {
      lastLog = now;
      log.info({ rule: s.rule, back: s.back, needed: s.needed }, `not ready yet: ${s.reason}`);
    }
  }, 100);
  timer.unref();
  return timer;
}

/** The live agent set checkpointed every `everyMs` and once more when stopping (while agents are still connected). */
export function checkpointing(
  checkpoint: RuntimeCheckpoint,
  index: AgentIndex,
  log: Logger,
  everyMs: number,
): Component<NodeJS.Timeout> {
  return {
    name: "checkpoint",
    start: () => {
      const timer = setInterval(() => writeCheckpoint(checkpoint, index, log), everyMs);
      timer.unref();
      return timer;
    },
    stop: (timer) => {
      clearInterval(timer);
      writeCheckpoint(checkpoint, index, log);
    },
  };
}
