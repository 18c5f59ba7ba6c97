// Test images without a registry: a busybox image built FROM scratch out of the host's static busybox
// (Debian's busybox-static), once per engine.
import { Readable } from "node:stream";
import type Docker from "dockerode";
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
