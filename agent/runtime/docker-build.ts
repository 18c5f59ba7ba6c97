// Building a service's image from the deployment's build context (the service's subfolder of it re-rooted first,
// build-context.ts), with the builder's failure as EE-WORKLOAD-BUILD-FAILED in at most MAX_BUILD_MESSAGE
// characters. May import dockerode, spec/ and this folder.
import { Readable } from "node:stream";
import type Docker from "dockerode";
import type { ComposeService } from "../../compose/compose.ts";
import type { Logger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { ImageRef } from "../../spec/images.ts";
import { rerootContext } from "./build-context.ts";
import { imageRef } from "./docker-objects.ts";
import { engine, toWorkloadError } from "./engine-error.ts";
import type { WorkloadSpec } from "./runtime.ts";

const MAX_BUILD_MESSAGE = 500;

/** Builds service `s` from the deployment's context (tagged imageRef); its image id is the digest it reports. */
export async function buildService(
  docker: Docker,
  log: Logger,
  labels: Record<string, string>,
  spec: WorkloadSpec,
  s: ComposeService,
  build: NonNullable<ComposeService["build"]>,
  signal?: AbortSignal,
): Promise<ImageRef> {
  const fail = (message: string) =>
    new WorkloadError(
      "EE-WORKLOAD-BUILD-FAILED",
      `service ${s.name}: ${message}`.slice(0, MAX_BUILD_MESSAGE),
    );
  if (!spec.context) throw fail("the service needs a build context, and the deployment has none");
  const context =
    build.context === "." ? Buffer.from(spec.context) : await rerootContext(spec.context, build.context);
  const tag = imageRef(spec.deploymentId, s);
  const what = `build of service ${s.name}`;
  const stream = await engine(
    what,
    () =>
      docker.buildImage(Readable.from([context]), {
        t: tag,
        dockerfile: build.dockerfile,
        labels,
        rm: true,
        forcerm: true,
        abortSignal: signal,
      }),
    "EE-WORKLOAD-BUILD-FAILED",
  );
  const failure = await new Promise<string | null>((resolve, reject) => {
    let error: string | null = null;
    docker.modem.followProgress(
      stream,
      (err) => (err ? reject(toWorkloadError(err, what, "EE-WORKLOAD-BUILD-FAILED")) : resolve(error)),
      (event: { error?: string; errorDetail?: { message?: string }; stream?: string }) => {
        if (event.errorDetail || event.error) error ??= event.errorDetail?.message ?? event.error ?? "failed";
        else if (event.stream?.trim()) log.debug({ service: s.name, build: event.stream.trim() }, "build");
      },
    );
  });
  if (failure !== null) throw fail(failure.trim());
  const image = await engine(`image ${tag}`, () => docker.getImage(tag).inspect());
  log.info({ deployment: spec.deploymentId, service: s.name, tag, image: image.Id }, "image built");
  return { service: s.name, ref: tag, digest: image.Id };
}
