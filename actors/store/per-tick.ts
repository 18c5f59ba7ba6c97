// The write-behind queues' clock (event log, deployment rows, measurement baselines): whatever a tick queues is
// written in one transaction after it, so a registration storm or a burst of status changes costs one commit
// per batch instead of one per change.

/** Returns a scheduler that runs `flush` once after the current tick, however often it is called during it. */
export function perTick(flush: () => void): () => void {
  let scheduled = false;
  return () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flush();
    });
  };
}
