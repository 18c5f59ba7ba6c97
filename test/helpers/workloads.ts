// Compose workloads the deployment tests run: busybox httpd serving "ok" on a host port, logging a `started`
// line first and every request after (-v), so tests can gate on health and read logs. Imports test/helpers only.
import { BUSYBOX_IMAGE } from "./images.ts";

/** One `web` service (the busybox image must be built, see busyboxImage) published on host `port`. */
export function webCompose(port: number): string {
  return [
    "services:",
    "  web:",
    `    image: ${BUSYBOX_IMAGE}`,
    `    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && echo started && exec httpd -f -v -p 8080 -h /www"]`,
    "    ports:",
    `      - "${port}:8080"`,
  ].join("\n");
}
