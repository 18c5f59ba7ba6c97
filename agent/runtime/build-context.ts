// Build contexts are tar archives: pack one from files in memory, bound one by what it unpacks to (streamed, never
// held whole), and re-root one to a service's build.context (keep the entries under that folder, with the folder
// stripped) before it goes to the engine.
// Imports node:zlib, node:stream, spec/errors.ts and tar-stream (untyped: its small surface is declared here).
import { createRequire } from "node:module";
import { Readable, type Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { ComposeError } from "../../spec/errors.ts";

interface TarHeader {
  name: string;
  size?: number;
  mode?: number;
  mtime?: Date;
  type?: string;
  linkname?: string;
}
interface TarPack extends Readable {
  entry(header: TarHeader, data: Buffer | string, cb?: (err?: Error) => void): Writable;
  entry(header: TarHeader, cb: (err?: Error) => void): Writable;
  finalize(): void;
}
type TarExtract = Writable & {
  on(event: "entry", fn: (header: TarHeader, stream: Readable, next: () => void) => void): TarExtract;
  on(event: string, fn: (...args: never[]) => void): TarExtract;
};
const tar = createRequire(import.meta.url)("tar-stream") as { pack(): TarPack; extract(): TarExtract };

export interface ContextFile {
  name: string;
  data: Buffer | string;
  mode?: number;
}

/** What a build context may unpack to: the upload cap alone lets a small gzip inflate to gigabytes. */
export const CONTEXT_LIMITS = {
  /** Bytes of the tar archive once decompressed. */
  bytes: 64 * 1024 * 1024,
  entries: 10_000,
} as const;

const isGzip = (b: Uint8Array): boolean => b[0] === 0x1f && b[1] === 0x8b;

/** The context as a stream of tar bytes: gunzipped on the fly when it is gzip (Docker accepts either). */
function tarStream(context: Uint8Array): Readable {
  const raw = Readable.from([Buffer.from(context.buffer, context.byteOffset, context.byteLength)]);
  if (!isGzip(context)) return raw;
  const gunzip = createGunzip();
  raw.on("error", (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

function tooLarge(message: string): ComposeError {
  return new ComposeError("EE-COMPOSE-CONTEXT-TOO-LARGE", `the build context ${message}`);
}

/**
 * Streams the context through gunzip and the tar parser, counting what it unpacks to; refuses it with
 * EE-COMPOSE-CONTEXT-TOO-LARGE as soon as a limit is passed, having held one chunk at a time.
 * A context that is not a tar archive is EE-COMPOSE-INVALID.
 */
export function checkContext(
  context: Uint8Array,
  limits: { bytes: number; entries: number } = CONTEXT_LIMITS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const input = tarStream(context);
    const extract = tar.extract();
    let bytes = 0;
    let entries = 0;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      input.unpipe(extract);
      input.destroy();
      extract.destroy();
      reject(err);
    };
    input.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limits.bytes) fail(tooLarge(`unpacks to more than ${limits.bytes} bytes`));
    });
    input.on("error", (err) =>
      fail(new ComposeError("EE-COMPOSE-INVALID", `the build context is not valid gzip: ${err.message}`)),
    );
    extract.on("entry", (_header, stream, next) => {
      entries++;
      if (entries > limits.entries) return fail(tooLarge(`has more than ${limits.entries} entries`));
      stream.on("end", next);
      stream.resume();
    });
    extract.on("error", (err) =>
      fail(new ComposeError("EE-COMPOSE-INVALID", `the build context is not a tar archive: ${err.message}`)),
    );
    extract.on("finish", () => {
      if (!failed) resolve();
    });
    input.pipe(extract);
  });
}

function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

/** A tar archive of the given files (mtime fixed so equal files give equal bytes). */
export function packTar(files: ContextFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = collect(pack);
  for (const f of files) pack.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: new Date(0) }, f.data);
  pack.finalize();
  return done;
}

/** The entries of `context` under `dir` (a relative path without `..`), re-rooted so `dir` becomes the root. */
export async function rerootContext(context: Uint8Array, dir: string): Promise<Buffer> {
  const prefix = `${dir.replace(/\/+$/, "")}/`;
  const strip = (name: string): string | null => {
    const n = name.replace(/^(\.\/)+/, "");
    return n.startsWith(prefix) && n.length > prefix.length ? n.slice(prefix.length) : null;
  };
  const extract = tar.extract();
  const pack = tar.pack();
  const out = collect(pack);
  await new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const name = strip(header.name);
      if (name === null) {
        stream.on("end", next);
        stream.resume();
        return;
      }
      const linkname = header.type === "link" && header.linkname ? strip(header.linkname) : header.linkname;
      stream.pipe(
        pack.entry({ ...header, name, linkname: linkname ?? undefined }, (err) =>
          err ? reject(err) : next(),
        ),
      );
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
    const input = tarStream(context);
    input.on("error", reject);
    input.pipe(extract);
  });
  pack.finalize();
  return out;
}
