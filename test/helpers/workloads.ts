// Compose workloads the deployment tests run: busybox httpd serving "ok" on a host port, logging a `started`
// line first and every request after (-v), so tests can gate on health and read logs. Imports test/helpers only.
import { BUSYBOX_IMAGE } from "./images.ts";

/**
 * One `web` service (the busybox image must be built, see busyboxImage) published on host `port`; with `delayS`
 * it starts serving only after that many seconds (a deploy still gating when a test cuts it short).
 */
export function webCompose(port: number, delayS = 0): string {
  return [
    "services:",
    "  web:",
    `    image: ${BUSYBOX_IMAGE}`,
    `    command: ["sh", "-c", "${delayS ? `sleep ${delayS}; ` : ""}mkdir -p /www && echo ok > /www/index.html && echo started && exec httpd -f -v -p 8080 -h /www"]`,
    "    ports:",
    `      - "${port}:8080"`,
  ].join("\n");
}
