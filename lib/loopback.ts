// Whether a URL's host is this machine's loopback: 127.0.0.0/8, ::1 or `localhost`. Traffic to it never leaves
// the host, which is what lets the agent speak plain ws:// there without allow_insecure_transport. Any other
// name is not loopback, even one that resolves to it today: DNS can change. Imports node:net.
import { BlockList, isIPv4, isIPv6 } from "node:net";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** `hostname` as `URL.hostname` gives it (IPv6 in brackets, already normalised by the URL parser). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost") return true;
  if (isIPv4(host)) return LOOPBACK.check(host, "ipv4");
  if (isIPv6(host)) return LOOPBACK.check(host, "ipv6");
  return false;
}
