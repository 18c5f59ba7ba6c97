// `npm start`'s local registry: Debian's docker-registry on 127.0.0.1:EE_REGISTRY_PORT (default 5000) with its
// storage under EE_HOME/registry, holding the demo image `127.0.0.1:PORT/demo/hello:1` built once from the
// host's busybox and pushed there, then untagged so the engine lacks it and a deploy pulls it. A convenience of
// `npm start` only: it lives and dies with it. Environment: EE_REGISTRY_PORT (docs/environment.md).
import { createServer } from "node:net";
import { join } from "node:path";
import type Docker from "dockerode";
import { listenOn } from "../lib/listen.ts";
import { ValidationError } from "../spec/errors.ts";
import { busyboxContext } from "./demo.ts";
import { buildImage, pushImage, type RunningRegistry, serveRegistry } from "./local-registry.ts";

export interface DemoRegistry {
  /** The demo image by tag: `127.0.0.1:PORT/demo/hello:1`. */
  tagRef: string;
  /** The same image pinned by its manifest digest: `127.0.0.1:PORT/demo/hello@sha256:…`. */
  digestRef: string;
  stop(): Promise<void>;
}

const REGISTRY_SETTING = "EE_REGISTRY_PORT=PORT npm start";

function registryPort(value: string | undefined): number {
  if (!value) return 5000;
  if (!/^\d{1,5}$/.test(value) || Number(value) === 0 || Number(value) > 65_535)
    throw new ValidationError(
      "EE-CONFIG-INVALID",
      `EE_REGISTRY_PORT: expected a port number, got "${value}"`,
    );
  return Number(value);
}

/** Starts the registry under `home`/registry and pushes the demo image to it. */
export async function startDemoRegistry(docker: Docker, home: string): Promise<DemoRegistry> {
  const port = registryPort(process.env.EE_REGISTRY_PORT);
  // A busy port is the operator's EE-LISTEN-BUSY naming the variable, as for EE_PORT, not the registry's stderr.
  const probe = createServer();
  await listenOn(probe, { host: "127.0.0.1", port, setting: REGISTRY_SETTING });
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const registry: RunningRegistry = await serveRegistry({ dir: join(home, "registry"), port });
  try {
    // A local tag of this registry's own: two npm starts (on other ports) must not untag each other's build.
    const local = `ee-demo/hello:${port}`;
    await buildImage(docker, await busyboxContext(), local);
    const { ref, digest } = await pushImage(docker, registry, local, "demo/hello:1");
    // 409: a running container (an earlier demo deploy) holds the image; the registry's tag is off it all the same.
    await docker
      .getImage(local)
      .remove({ noprune: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 409) throw err;
      });
    return { tagRef: ref, digestRef: `${registry.host}/demo/hello@${digest}`, stop: registry.kill };
  } catch (err) {
    await registry.kill();
    throw err;
  }
}
