// How a failed Docker Engine API call reads (dockerode's errors): its message and HTTP status. Shared by the
// runtime and its pulls. Imports nothing.

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
