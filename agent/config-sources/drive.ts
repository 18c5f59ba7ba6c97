// The config-drive source: an ISO 9660 image labelled EE_CONFIG with config.json in its root, read from a
// device (/dev/sr0) or an image file. A path that does not exist, an empty drive, another filesystem or another
// label all mean "no config here"; a drive that is ours but cannot deliver a valid config is an error.
// May import node:fs and ./iso9660, ./source.
import { type FileHandle, open } from "node:fs/promises";
import { resolve } from "node:path";
import { findRootFile, type ReadAt } from "./iso9660.ts";
import { type ConfigSource, decodeConfigJson, sourceError } from "./source.ts";

export const DRIVE_LABEL = "EE_CONFIG";
export const DRIVE_FILE = "config.json";
export const DEFAULT_DRIVES = ["/dev/sr0", "/dev/sr1", "/dev/cdrom"];

// ENOMEDIUM: a drive with no disc in it; ENXIO/ENODEV: a device node without a device behind it.
const ABSENT = new Set(["ENOENT", "ENOTDIR", "ENOMEDIUM", "ENXIO", "ENODEV"]);

export function driveSource(path: string): ConfigSource {
  const abs = resolve(path);
  const name = `drive:${abs}`;
  return {
    name,
    async read() {
      let handle: FileHandle;
      try {
        handle = await open(abs, "r");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "open failed";
        if (ABSENT.has(code)) return null;
        throw sourceError(name, `cannot open the drive (${code})`);
      }
      try {
        const read: ReadAt = async (offset, length) => {
          const buf = Buffer.alloc(length);
          try {
            const { bytesRead } = await handle.read(buf, 0, length, offset);
            return buf.subarray(0, bytesRead);
          } catch (err) {
            // The device itself fails (EIO, EISDIR): what it holds cannot be known.
            throw sourceError(
              name,
              `cannot read the drive (${(err as NodeJS.ErrnoException).code ?? "read failed"})`,
            );
          }
        };
        const found = await findRootFile(read, DRIVE_LABEL, DRIVE_FILE);
        switch (found.found) {
          case "not-iso":
          case "other-label":
            return null;
          case "no-file":
            throw sourceError(name, `volume ${DRIVE_LABEL} has no ${DRIVE_FILE} in its root directory`);
          case "damaged":
            throw sourceError(name, `volume ${DRIVE_LABEL} is damaged: ${found.reason}`);
          case "file": {
            const origin = `${name} ${DRIVE_FILE}`;
            return { raw: decodeConfigJson(found.data, origin), origin };
          }
        }
      } finally {
        await handle.close();
      }
    },
  };
}
