// The source a connection counts against for per-address limits and aggregated audit rows: an IPv4 address as
// is (also when it arrives IPv4-mapped, ::ffff:a.b.c.d), an IPv6 address by its /64, since one host is routinely
// handed a whole /64 and could otherwise pick a fresh address per connection. Imports node:net only.
import { isIPv6 } from "node:net";

export function sourceOf(remote: string | undefined): string {
  if (remote === undefined) return "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1]!;
  if (!isIPv6(remote)) return remote;
  return `${expandIPv6(remote).slice(0, 4).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros (a zone id, %eth0, is dropped). */
function expandIPv6(addr: string): string[] {
  const [head = "", tail] = addr.split("%")[0]!.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...fill, ...right].map((g) => Number.parseInt(g, 16).toString(16));
}
