// Pulling one image through the Docker Engine API: credentials for its registry, progress summed over its layers,
// transient failures retried with a bounded p-retry backoff (the engine's own layer retries cut short), permanent
// ones mapped at once to stable codes; and the digest a pulled or present image resolves to.
// Imports dockerode (types), p-retry, spec/ (images, errors), lib/log.ts and this folder.
import type { Readable } from "node:stream";
import type Docker from "dockerode";
import pRetry from "p-retry";
import { pinnedDigest, registryOf } from "../../compose/images.ts";
import type { Logger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";
import { engineMessage, statusOf } from "./engine-error.ts";
import type { PullOptions } from "./runtime.ts";

const MAX_MESSAGE = 500;

/** Retries of a pull after a transient failure (registry away, 5xx, reset), and the backoff between them. */
export const PULL_RETRY = { retries: 3, minTimeoutMs: 500, maxTimeoutMs: 4000 } as const;

interface PullEvent {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * A failed pull by what the engine said: an unknown manifest is a missing image (or, for a pinned reference, a
 * digest the registry does not have), a refused login is bad credentials, a verification failure is content
 * that does not match its digest; anything else (registry away, 5xx, reset, timeout) is transient and retried.
 */
function pullError(service: string, ref: string, message: string, status: number | undefined): WorkloadError {
  const what = `service ${service}: pulling ${ref}: ${message}`.slice(0, MAX_MESSAGE);
  if (/unauthorized|authentication required|denied|no basic auth credentials/i.test(message))
    return new WorkloadError("EE-WORKLOAD-PULL-AUTH", what);
  if (/digest mismatch|verification failed|does not match/i.test(message))
    return new WorkloadError("EE-WORKLOAD-DIGEST-MISMATCH", what);
  if (status === 404 || /manifest unknown|not found|name unknown/i.test(message)) {
    const code = pinnedDigest(ref) ? "EE-WORKLOAD-DIGEST-MISMATCH" : "EE-WORKLOAD-IMAGE-MISSING";
    return new WorkloadError(code, what);
  }
  return new WorkloadError("EE-WORKLOAD-PULL-FAILED", what);
}

/** The name part of a reference: without its digest or tag. */
const repoOf = (ref: string): string => {
  const name = ref.replace(/@.*$/, "");
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
};

/**
 * The digest a reference runs: the pinned one, else the registry manifest digest recorded for its repository,
 * else (an image only ever built or loaded here) the image id.
 */
export function digestOf(ref: string, info: Docker.ImageInspectInfo): string {
  const pinned = pinnedDigest(ref);
  if (pinned) return pinned;
  const repo = repoOf(ref);
  const names = new Set([repo, `docker.io/${repo}`, `docker.io/library/${repo}`]);
  for (const rd of info.RepoDigests ?? []) {
    const at = rd.lastIndexOf("@");
    if (names.has(rd.slice(0, at))) return rd.slice(at + 1);
  }
  return info.Id;
}

/** One pull of `ref`, transient failures retried with a bounded backoff; progress summed over its layers. */
export async function pullImage(
  docker: Docker,
  log: Logger,
  service: string,
  ref: string,
  opts: PullOptions,
): Promise<void> {
  const host = registryOf(ref);
  const cred = opts.auth?.[host];
  const authconfig = cred
    ? { username: cred.username, password: cred.password, serveraddress: host }
    : undefined;
  const retry = opts.retry ?? PULL_RETRY;
  await pRetry(
    async () => {
      const layers = new Map<string, { done: number; total: number }>();
      const report = () => {
        let done = 0;
        let total = 0;
        for (const l of layers.values()) {
          done += l.done;
          total += l.total;
        }
        opts.onProgress?.({ service, ref, done_bytes: done, total_bytes: total });
      };
      let failure: string | null = null;
      try {
        const stream = await docker.pull(ref, {
          ...(authconfig ? { authconfig } : {}),
          ...(opts.signal ? { abortSignal: opts.signal } : {}),
        });
        await new Promise<void>((resolve, reject) =>
          docker.modem.followProgress(
            stream,
            (err) => (err ? reject(err) : resolve()),
            (e: PullEvent) => {
              if (e.error || e.errorDetail) failure ??= e.errorDetail?.message ?? e.error ?? "failed";
              else if (e.status?.startsWith("Retrying in")) {
                // The engine's own layer retries wait up to ~50 s: cut short, so one bounded policy applies.
                failure ??= `a layer download was interrupted (${e.status})`;
                (stream as Readable).destroy();
              } else if (e.id && e.status === "Downloading" && e.progressDetail?.total) {
                layers.set(e.id, { done: e.progressDetail.current ?? 0, total: e.progressDetail.total });
                report();
              } else if (e.id && e.status === "Download complete") {
                const l = layers.get(e.id);
                if (l) l.done = l.total;
                report();
              }
            },
          ),
        );
      } catch (err) {
        opts.signal?.throwIfAborted();
        throw pullError(service, ref, engineMessage(err), statusOf(err));
      }
      if (failure !== null) throw pullError(service, ref, failure, undefined);
    },
    {
      retries: retry.retries,
      minTimeout: retry.minTimeoutMs,
      maxTimeout: retry.maxTimeoutMs,
      factor: 2,
      ...(opts.signal ? { signal: opts.signal } : {}),
      // Only a transient failure is tried again; the rest would fail the same way.
      shouldRetry: ({ error }) => error instanceof WorkloadError && error.code === "EE-WORKLOAD-PULL-FAILED",
      onFailedAttempt: ({ error, attemptNumber }) =>
        log.warn({ service, ref, attempt: attemptNumber, err: error.message }, "image pull failed"),
    },
  );
}
