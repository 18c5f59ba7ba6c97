// The ISO 9660 subset a config drive uses, both ways: finding one file in the root directory of an image
// (primary volume descriptor, root directory, ISO names like `CONFIG.JSON;1` or Rock Ridge names) and writing a
// minimal image (one volume, files in the root) that Linux mounts. Joliet is not read; its images carry a
// primary volume too. Pure byte work: imports nothing.

export const SECTOR = 2048;
const FIRST_DESCRIPTOR_SECTOR = 16;
// A volume descriptor set ends with a terminator; this bounds the walk on images that never say so.
const MAX_DESCRIPTORS = 32;
const MAX_ROOT_DIRECTORY = 1024 * 1024;
const MAX_FILE = 1024 * 1024;
const STANDARD_ID = "CD001";
const TYPE_PRIMARY = 1;
const TYPE_TERMINATOR = 255;
const FLAG_DIRECTORY = 0x02;

/** Reads up to `length` bytes at `offset`; fewer (or none) past the end of the image. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

export type IsoLookup =
  | { found: "not-iso" }
  | { found: "other-label"; label: string }
  | { found: "no-file" }
  | { found: "damaged"; reason: string }
  | { found: "file"; data: Uint8Array };

export function bufferReader(image: Uint8Array): ReadAt {
  return async (offset, length) => image.subarray(offset, offset + length);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

/**
 * Looks for `name` (compared case-insensitively, without an ISO `;version` or trailing dot) in the root
 * directory of the image, but only on a volume labelled `label`.
 */
export async function findRootFile(read: ReadAt, label: string, name: string): Promise<IsoLookup> {
  let pvd: Uint8Array | null = null;
  for (let i = 0; i < MAX_DESCRIPTORS && !pvd; i++) {
    const d = await read((FIRST_DESCRIPTOR_SECTOR + i) * SECTOR, SECTOR);
    if (d.length < SECTOR || ascii(d, 1, 6) !== STANDARD_ID) break;
    if (d[0] === TYPE_PRIMARY) pvd = d;
    else if (d[0] === TYPE_TERMINATOR) break;
  }
  if (!pvd) return { found: "not-iso" };
  const volumeId = ascii(pvd, 40, 72).replace(/[ \0]+$/, "");
  if (volumeId !== label) return { found: "other-label", label: volumeId };

  const blockSize = view(pvd).getUint16(128, true);
  if (blockSize < 512 || blockSize > SECTOR || (blockSize & (blockSize - 1)) !== 0) {
    return { found: "damaged", reason: `logical block size ${blockSize} is not 512, 1024 or 2048` };
  }
  const root = view(pvd);
  const rootExtent = root.getUint32(156 + 2, true);
  const rootSize = root.getUint32(156 + 10, true);
  if (rootSize > MAX_ROOT_DIRECTORY) return { found: "damaged", reason: "root directory too large" };
  const dir = await read(rootExtent * blockSize, rootSize);
  if (dir.length < rootSize) return { found: "damaged", reason: "image truncated in the root directory" };

  const entry = findEntry(dir, blockSize, name.toLowerCase());
  if (entry === "damaged") return { found: "damaged", reason: "malformed root directory record" };
  if (!entry) return { found: "no-file" };
  if (entry.size > MAX_FILE) return { found: "damaged", reason: `${name} is larger than ${MAX_FILE} bytes` };
  const data = await read(entry.extent * blockSize, entry.size);
  if (data.length < entry.size) return { found: "damaged", reason: `image truncated in ${name}` };
  return { found: "file", data };
}

function findEntry(
  dir: Uint8Array,
  blockSize: number,
  wanted: string,
): { extent: number; size: number } | null | "damaged" {
  const v = view(dir);
  let at = 0;
  while (at < dir.length) {
    const len = dir[at]!;
    // Records never cross a block boundary: a zero length pads the rest of the block.
    if (len === 0) {
      at = (Math.floor(at / blockSize) + 1) * blockSize;
      continue;
    }
    if (len < 34 || at + len > dir.length) return "damaged";
    const nameLen = dir[at + 32]!;
    if (33 + nameLen > len) return "damaged";
    const flags = dir[at + 25]!;
    const isoName = ascii(dir, at + 33, at + 33 + nameLen);
    const systemUse = dir.subarray(at + 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0), at + len);
    const names = [isoName.replace(/;\d+$/, "").replace(/\.$/, ""), rockRidgeName(systemUse)];
    if (!(flags & FLAG_DIRECTORY) && names.some((n) => n?.toLowerCase() === wanted)) {
      return { extent: v.getUint32(at + 2, true), size: v.getUint32(at + 10, true) };
    }
    at += len;
  }
  return null;
}

/** The Rock Ridge alternate name (NM entries, possibly continued) in a record's system use area. */
function rockRidgeName(area: Uint8Array): string | null {
  let name: string | null = null;
  let at = 0;
  while (at + 4 <= area.length) {
    const len = area[at + 2]!;
    if (len < 4 || at + len > area.length) break;
    if (area[at] === 0x4e && area[at + 1] === 0x4d && len >= 5) {
      name = (name ?? "") + new TextDecoder().decode(area.subarray(at + 5, at + len));
    }
    at += len;
  }
  return name;
}

// Writing. Fixed timestamps keep the image a function of its contents: the same config gives the same bytes.

export interface IsoFile {
  /** An ISO 9660 level 2 name (d-characters and one dot), stored as `NAME;1`. */
  name: string;
  data: Uint8Array;
}

const D_CHARS = /^[A-Z0-9_]+(\.[A-Z0-9_]*)?$/;

function both32(b: DataView, at: number, value: number): void {
  b.setUint32(at, value, true);
  b.setUint32(at + 4, value, false);
}

function both16(b: DataView, at: number, value: number): void {
  b.setUint16(at, value, true);
  b.setUint16(at + 2, value, false);
}

function putText(b: Uint8Array, at: number, width: number, text: string): void {
  b.fill(0x20, at, at + width);
  for (let i = 0; i < text.length; i++) b[at + i] = text.charCodeAt(i);
}

const EPOCH_RECORD_DATE = [70, 1, 1, 0, 0, 0, 0]; // years since 1900, month, day, h, m, s, GMT offset
const EPOCH_VOLUME_DATE = "1970010100000000";

function directoryRecord(name: Uint8Array, extent: number, size: number, flags: number): Uint8Array {
  const len = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const r = new Uint8Array(len);
  const v = view(r);
  r[0] = len;
  both32(v, 2, extent);
  both32(v, 10, size);
  r.set(EPOCH_RECORD_DATE, 18);
  r[25] = flags;
  both16(v, 28, 1);
  r[32] = name.length;
  r.set(name, 33);
  return r;
}

function pathTable(rootExtent: number, littleEndian: boolean): Uint8Array {
  const t = new Uint8Array(10);
  const v = view(t);
  t[0] = 1;
  v.setUint32(2, rootExtent, littleEndian);
  v.setUint16(6, 1, littleEndian);
  return t;
}

/** A single-volume ISO 9660 image labelled `label` with `files` in its root directory. */
export function writeIso9660(label: string, unsorted: readonly IsoFile[]): Uint8Array {
  if (!/^[A-Z0-9_]{1,32}$/.test(label)) throw new RangeError(`bad ISO volume label ${label}`);
  // Directory records are kept in name order.
  const files = [...unsorted].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = files.map((f) => {
    if (!D_CHARS.test(f.name) || f.name.length > 30) throw new RangeError(`bad ISO file name ${f.name}`);
    return new TextEncoder().encode(`${f.name};1`);
  });
  const selfName = Uint8Array.of(0);
  const parentName = Uint8Array.of(1);
  // Layout: system area, PVD (16), terminator (17), L and M path tables (18, 19), root directory (20), files.
  const rootExtent = 20;
  const rootSize = SECTOR;
  let next = rootExtent + 1;
  const extents = files.map((f) => {
    const at = next;
    next += Math.max(1, Math.ceil(f.data.length / SECTOR));
    return at;
  });
  const image = new Uint8Array(next * SECTOR);
  const v = view(image);

  const pvd = 16 * SECTOR;
  image[pvd] = TYPE_PRIMARY;
  putText(image, pvd + 1, 5, STANDARD_ID);
  image[pvd + 6] = 1;
  putText(image, pvd + 8, 32, "LINUX");
  putText(image, pvd + 40, 32, label);
  both32(v, pvd + 80, next);
  both16(v, pvd + 120, 1);
  both16(v, pvd + 124, 1);
  both16(v, pvd + 128, SECTOR);
  both32(v, pvd + 132, 10);
  v.setUint32(pvd + 140, 18, true);
  v.setUint32(pvd + 148, 19, false);
  image.set(directoryRecord(selfName, rootExtent, rootSize, FLAG_DIRECTORY), pvd + 156);
  putText(image, pvd + 190, 128 * 4 + 37 * 3, "");
  putText(image, pvd + 574, 128, "EASYENCLAVE");
  for (const at of [813, 830, 864]) {
    putText(image, pvd + at, 16, EPOCH_VOLUME_DATE);
    image[pvd + at + 16] = 0;
  }
  putText(image, pvd + 847, 16, "0000000000000000");
  image[pvd + 881] = 1;

  const term = 17 * SECTOR;
  image[term] = TYPE_TERMINATOR;
  putText(image, term + 1, 5, STANDARD_ID);
  image[term + 6] = 1;

  image.set(pathTable(rootExtent, true), 18 * SECTOR);
  image.set(pathTable(rootExtent, false), 19 * SECTOR);

  let at = rootExtent * SECTOR;
  const records = [
    directoryRecord(selfName, rootExtent, rootSize, FLAG_DIRECTORY),
    directoryRecord(parentName, rootExtent, rootSize, FLAG_DIRECTORY),
    ...files.map((f, i) => directoryRecord(names[i]!, extents[i]!, f.data.length, 0)),
  ];
  for (const r of records) {
    if (at + r.length > (rootExtent + 1) * SECTOR)
      throw new RangeError("too many files for one directory block");
    image.set(r, at);
    at += r.length;
  }
  files.forEach((f, i) => {
    image.set(f.data, extents[i]! * SECTOR);
  });
  return image;
}
