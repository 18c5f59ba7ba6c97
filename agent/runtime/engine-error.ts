// How a failed Docker Engine API call reads (dockerode's errors): its message and HTTP status, and the one mapping
// from such a failure to the WorkloadRuntime port's EE-WORKLOAD-* codes. Shared by the runtime and its pulls.
// Imports spec/errors only.
import { type CodeOf, WorkloadError } from "../../spec/errors.ts";

type WorkloadCode = CodeOf<"EE-WORKLOAD-">;
const PORT_IN_USE = /port is already allocated|address already in use/i;

interface EngineError {
  statusCode?: number;
  json?: { message?: string } | null;
  reason?: string;
  message?: string;
}

export function engineMessage(err: unknown): string {
  const e = err as EngineError;
  return (e.json?.message ?? e.message ?? String(err)).trim();
}

export function statusOf(err: unknown): number | undefined {
  return (err as EngineError).statusCode;
}

/**
 * The one mapping from an engine failure to the port's codes: port clashes by their text, other 4xx to
 * `clientCode` (what the caller was doing), everything else (connection refused, 5xx) to EE-WORKLOAD-ENGINE.
 */
export function toWorkloadError(err: unknown, what: string, clientCode: WorkloadCode): WorkloadError {
  if (err instanceof WorkloadError) return err;
  const message = engineMessage(err);
  if (PORT_IN_USE.test(message)) {
    const addr = /(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]):(\d+)/i.exec(message);
    const port = addr ? `${addr[1]}:${addr[2]}` : "a published port";
    return new WorkloadError("EE-WORKLOAD-PORT-CONFLICT", `${what}: host port ${port} is already in use`);
  }
  const status = statusOf(err);
  const code = status !== undefined && status >= 400 && status < 500 ? clientCode : "EE-WORKLOAD-ENGINE";
  return new WorkloadError(code, `${what}: ${message}`);
}

export async function engine<T>(
  what: string,
  fn: () => Promise<T>,
  clientCode: WorkloadCode = "EE-WORKLOAD-ENGINE",
) {
  try {
    return await fn();
  } catch (err) {
    throw toWorkloadError(err, what, clientCode);
  }
}

/** Removal is idempotent: gone (404), already stopped (304) or already being removed (409) is success. */
export async function tolerateGone(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const status = statusOf(err);
    if (status === 404 || status === 304 || status === 409) return;
    throw toWorkloadError(err, what, "EE-WORKLOAD-ENGINE");
  }
}
