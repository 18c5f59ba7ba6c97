// Compose workloads the deployment tests run, and the REST calls that deploy them and wait on them. webCompose is
// busybox httpd serving "ok" on container port WEB_PORT (no host port: the agent reaches it), logging a `started` line first and every request after (-v), so tests
// can gate on health and read logs.
import type { DeploymentJson } from "../../contract/rest-responses.ts";
import { type CpApi, waitFor } from "./cluster.ts";
import { BUSYBOX_IMAGE } from "./images.ts";

export type { DeploymentJson };

/** The container port webCompose serves on: the health.port of its deploys. */
export const WEB_PORT = 8080;
/** How long webCompose's /cgi-bin/slow takes to answer. */
export const SLOW_S = 3;
/** A container port nothing listens on: a health spec on it never passes. */
export const DEAF_PORT = 8081;

/**
 * One `web` service (the busybox image must be built, see busyboxImage) serving `text` (default "ok") on container
 * port WEB_PORT; with `delayS` it starts serving only after that many seconds (a deploy still gating when a test
 * cuts it short). Another `text` is another version of the app (an update in place). /cgi-bin/slow answers
 * `text` after SLOW_S seconds: a request still in flight when something stops the container.
 */
export function webCompose({ delayS = 0, text = "ok" }: { delayS?: number; text?: string } = {}): string {
  return [
    "services:",
    "  web:",
    `    image: ${BUSYBOX_IMAGE}`,
    `    command: ["sh", "-c", "${delayS ? `sleep ${delayS}; ` : ""}mkdir -p /www/cgi-bin && echo ${text} > /www/index.html && ${slowCgi(text)} && echo started && exec httpd -f -v -p ${WEB_PORT} -h /www"]`,
  ].join("\n");
}

function slowCgi(text: string): string {
  // CRLF after the header: Node's HTTP parser refuses a bare LF. Escaped for YAML's double-quoted string.
  const header = String.raw`printf \"Content-Type: text/plain\r\n\r\n\"`;
  const script = ["#!/bin/sh", `sleep ${SLOW_S}`, header, `echo ${text}`];
  return `${script.map((line, i) => `echo '${line}' ${i === 0 ? ">" : ">>"} /www/cgi-bin/slow`).join(" && ")} && chmod +x /www/cgi-bin/slow`;
}

/** One `app` service that sleeps: with no health spec it passes the gate once up for the settle period. */
export const SLEEP_COMPOSE = `services:\n  app:\n    image: ${BUSYBOX_IMAGE}\n    command: ["sleep", "300"]\n`;

/** POSTs `body` as JSON; `badRequest` when the body is off the document on purpose. */
export function postJson<T = unknown>(
  api: CpApi,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  opts: { badRequest?: boolean } = {},
): Promise<{ status: number; body: T }> {
  return api<T>(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    ...opts,
  });
}

/** POSTs `body` as JSON with `token` as the bearer (an account's key; default the admin token). */
export function postAs<T = unknown>(
  api: CpApi,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; body: T }> {
  return api<T>(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(token !== undefined ? { token } : {}),
  });
}

/** Polls the deployment until its status is one of `statuses` and returns it. */
export function deploymentIn(
  api: CpApi,
  id: string,
  statuses: string[],
  timeoutMs = 30_000,
): Promise<DeploymentJson> {
  return waitFor(
    `deployment ${id} to be ${statuses.join(" or ")}`,
    async () => {
      const r = await api<DeploymentJson>(`/api/v2/deployments/${id}`);
      return r.status === 200 && statuses.includes(r.body.status) ? r.body : undefined;
    },
    timeoutMs,
  );
}
