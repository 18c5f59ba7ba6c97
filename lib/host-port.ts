// `host:port` for listen addresses (IPv6 hosts in brackets, port 0 meaning "any free port"): the one parser
// behind the agent's api_listen and the control plane's --listen.

/** The parsed address, or null when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !Number.isInteger(port) || port > 65_535) return null;
  return { host, port };
}
