// Test images without a registry: a busybox image built FROM scratch out of the host's static busybox
// (Debian's busybox-static), once per engine; and a build context that is a gzip bomb.
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type { Readable, Writable } from "node:stream";
import { createGzip } from "node:zlib";
import type Docker from "dockerode";
import { packTar } from "../../agent/runtime/build-context.ts";
import { busyboxContext } from "../../cli/demo.ts";
import { buildImage } from "../../cli/local-registry.ts";

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
    await buildImage(docker, await busyboxContext(), BUSYBOX_IMAGE);
    return BUSYBOX_IMAGE;
  })();
  built.catch(() => {
    built = null;
  });
  return built;
}

const tar = createRequire(import.meta.url)("tar-stream") as {
  pack(): Readable & {
    entry(header: { name: string; size: number }, cb: (err?: Error) => void): Writable;
    finalize(): void;
  };
};

/** A gzip of a tar holding one file of `size` zero bytes, built streaming so the test holds no large buffer. */
export async function gzipBomb(size: number): Promise<Buffer> {
  const MiB = 1024 * 1024;
  const pack = tar.pack();
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => gzip.on("end", resolve));
  pack.pipe(gzip);
  const entry = pack.entry({ name: "zeros", size }, () => pack.finalize());
  const zeros = Buffer.alloc(MiB);
  for (let left = size; left > 0; left -= MiB) {
    if (!entry.write(zeros.subarray(0, Math.min(MiB, left))))
      await new Promise((r) => entry.once("drain", r));
  }
  entry.end();
  await done;
  return Buffer.concat(chunks);
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
  await buildImage(docker, context, tag);
  return tag;
}
