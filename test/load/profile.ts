// Optional CPU profiling of a benchmark child process, for finding the hot spots of each step: with
// EE_BENCH_PROFILE_DIR set, the process profiles itself through the inspector and `cut(label)` writes the span
// since the previous cut as `<label>-<pid>.cpuprofile` (open in Chrome DevTools). Unset: cut does nothing.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";

export async function startProfile(): Promise<(label: string) => Promise<void>> {
  const dir = process.env.EE_BENCH_PROFILE_DIR;
  if (!dir) return async () => {};
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async (label) => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(join(dir, `${label}-${process.pid}.cpuprofile`), JSON.stringify(profile));
    await session.post("Profiler.start");
  };
}
