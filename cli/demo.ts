// The demo workload `npm start` offers (and the tests' busybox image is built from): a build context made of the
// host's static busybox and a Dockerfile installing its applets, FROM scratch — only Debian's busybox-static
// needed. Plus a Compose file serving a page with busybox httpd, from that image pulled from a registry or built
// from the context.
import { existsSync, readFileSync } from "node:fs";
import { packTar } from "../agent/runtime/build-context.ts";

const HOST_BUSYBOX = "/bin/busybox";

/** Whether the host has the busybox the demo needs. */
export function hasHostBusybox(): boolean {
  return existsSync(HOST_BUSYBOX);
}

/**
 * A build context: the static busybox and a Dockerfile installing its applets, then `dockerfileExtra`; both files
 * under the prefix `dir` (such as "app/") when given.
 */
export function busyboxContext(dockerfileExtra = "", dir = ""): Promise<Uint8Array> {
  // Exec form: the image has no shell until busybox installs one.
  const dockerfile = [
    "FROM scratch",
    "COPY busybox /bin/busybox",
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    dockerfileExtra,
  ].join("\n");
  return packTar([
    { name: `${dir}Dockerfile`, data: `${dockerfile}\n` },
    { name: `${dir}busybox`, data: readFileSync(HOST_BUSYBOX), mode: 0o755 },
  ]);
}

/** The container port the demo serves on: its deploy's --health-port; no host port is published. */
export const DEMO_PORT = 8080;

/**
 * A Compose file serving "hello from a TD" on container port DEMO_PORT: from the pulled image `image` (a
 * reference by tag or digest), or built from the context above when no image is given.
 */
export function demoCompose(image?: string): string {
  return `services:
  web:
    ${image ? `image: ${image}` : "build: ."}
    command: ["sh", "-c", "mkdir -p /www && echo 'hello from a TD' > /www/index.html && exec httpd -f -v -p ${DEMO_PORT} -h /www"]
`;
}
