// Test images without a registry: a busybox image built FROM scratch out of the host's static busybox
// (Debian's busybox-static), once per engine.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { packTar } from "../../agent/runtime/build-context.ts";
import { busyboxContext } from "../../cli/demo.ts";

export { busyboxContext };

export const BUSYBOX_IMAGE = "ee-test/busybox:1";
let built: Promise<string> | null = null;

/** The busybox image's tag, built when the engine lacks it (parallel processes may both build: that is fine). */
export function busyboxImage(docker: Docker): Promise<string> {
  built ??= (async () => {
    const present = await docker
      .getImage(BUSYBOX_IMAGE)
      .inspect()
      .then(() => true)
      .catch(() => false);
    if (present) return BUSYBOX_IMAGE;
    const stream = await docker.buildImage(
      // dockerode takes a stream of the tar; a Buffer wrapped as a one-chunk stream does.
      Readable.from([Buffer.from(await busyboxContext())]),
      { t: BUSYBOX_IMAGE, rm: true, forcerm: true },
    );
    const events = await new Promise<{ error?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
    );
    const failed = events.find((e) => e.error);
    if (failed) throw new Error(`building ${BUSYBOX_IMAGE} failed: ${failed.error}`);
    return BUSYBOX_IMAGE;
  })();
  built.catch(() => {
    built = null;
  });
  return built;
}

/**
 * An image with a layer of `bytes` random (incompressible, never seen before) bytes on top of busybox, so pulling
 * it has to download that much. Returns its local tag; the caller removes it once pushed.
 */
export async function bigImage(docker: Docker, bytes: number): Promise<string> {
  const tag = `ee-test/big-${randomBytes(4).toString("hex")}:1`;
  const context = await packTar([
    { name: "Dockerfile", data: `FROM ${await busyboxImage(docker)}\nCOPY big /big\n` },
    { name: "big", data: randomBytes(bytes) },
  ]);
  const stream = await docker.buildImage(Readable.from([context]), { t: tag, rm: true, forcerm: true });
  const events = await new Promise<{ error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`building ${tag} failed: ${failed.error}`);
  return tag;
}
