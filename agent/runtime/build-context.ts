// Build contexts are tar archives: pack one from files in memory, and re-root one to a service's build.context
// (keep the entries under that folder, with the folder stripped) before it goes to the engine.
// Imports node:zlib, node:stream and tar-stream (untyped: its small surface is declared here).
import { createRequire } from "node:module";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { gunzipSync } from "node:zlib";

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
};
const tar = createRequire(import.meta.url)("tar-stream") as { pack(): TarPack; extract(): TarExtract };

export interface ContextFile {
  name: string;
  data: Buffer | string;
  mode?: number;
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
  const bytes = Buffer.from(context);
  // Docker accepts gzip-compressed contexts, so callers may send one.
  const archive = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
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
    const input = new PassThrough();
    input.pipe(extract);
    input.end(archive);
  });
  pack.finalize();
  return out;
}
