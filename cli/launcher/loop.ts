// The launcher's loop (`parallel` workers): claim an open order for its datacenter (and node size), report
// `provisioning`, hand it to the provider, and report `failed` with the reason when the launch fails; poll when
// there is nothing to claim. Runs until its signal aborts. Talks to the CP only through the REST client.
// Imports cli/ (and transport/ types).
import { setTimeout as sleep } from "node:timers/promises";
import type { LaunchOrderJson } from "../../contract/rest-responses.ts";
import { type RestClient, RestError } from "../rest-client.ts";
import type { Provider, SizePresetJson } from "./providers.ts";

export interface LauncherOptions {
  client: RestClient;
  provider: Provider;
  datacenter: string;
  nodeSize?: string;
  pollMs: number;
  /** Orders launched at once: each worker claims and launches its own, claims being atomic on the CP. */
  parallel: number;
  signal: AbortSignal;
  say: (line: string) => void;
}

export async function runLauncher(o: LauncherOptions): Promise<void> {
  const presets = await sizePresets(o.client, o.say);
  await Promise.all(Array.from({ length: o.parallel }, () => worker(o, presets)));
}

/** The CP's node-size presets, for exec commands' environment; none if the CP cannot say (logged). */
async function sizePresets(client: RestClient, say: (line: string) => void) {
  try {
    const { sizes } = await client.get<{ sizes: ({ node_size: string } & SizePresetJson)[] }>(
      "/api/v2/capacity/sizes",
    );
    return new Map(sizes.map(({ node_size, ...preset }) => [node_size, preset]));
  } catch (err) {
    say(`node-size presets unavailable: ${(err as Error).message}`);
    return new Map<string, SizePresetJson>();
  }
}

async function worker(o: LauncherOptions, presets: ReadonlyMap<string, SizePresetJson>): Promise<void> {
  const { client, signal, say } = o;
  while (!signal.aborted) {
    let claimed: { order: LaunchOrderJson | null; bootstrap_token?: string };
    try {
      claimed = await client.post("/api/v2/capacity/orders/claim", {
        datacenter: o.datacenter,
        ...(o.nodeSize ? { node_size: o.nodeSize } : {}),
      });
    } catch (err) {
      // A refusal of the launcher itself (a bad token, a bad datacenter) will not change by asking again.
      if (err instanceof RestError && err.status < 500) throw err;
      // The CP restarting or briefly unreachable is not the launcher's end: it asks again.
      say(`claim failed: ${(err as Error).message}; retrying`);
      await pause(o.pollMs, signal);
      continue;
    }
    const order = claimed.order;
    if (!order || !claimed.bootstrap_token) {
      await pause(o.pollMs, signal);
      continue;
    }
    const id = order.order_id;
    say(`order ${id}: claimed (${order.datacenter} ${order.node_size})`);
    const progress = (status: "provisioning" | "failed", reason?: string) =>
      client.post<LaunchOrderJson>(`/api/v2/capacity/orders/${id}/progress`, {
        status,
        ...(reason ? { reason } : {}),
      });
    try {
      await progress("provisioning");
      const { detail } = await o.provider.launch({
        order,
        preset: presets.get(order.node_size),
        bootstrapToken: claimed.bootstrap_token,
        cpUrl: client.base,
        registered: () => untilRegistered(client, id, o.pollMs, signal),
        note: (line) => say(`order ${id}: ${line}`),
      });
      say(`order ${id}: launched (${detail})`);
    } catch (err) {
      if (signal.aborted) break;
      const reason = `EE-CAP-LAUNCH-FAILED: ${(err as Error).message}`.slice(0, 2048);
      say(`order ${id}: failed: ${reason}`);
      await progress("failed", reason).catch((e: Error) =>
        say(`order ${id}: reporting failure: ${e.message}`),
      );
    }
  }
}

/** Resolves when the order's agent registered; rejects if the order ended otherwise (its lease lost). */
async function untilRegistered(client: RestClient, id: string, pollMs: number, signal: AbortSignal) {
  for (;;) {
    const { orders } = await client.get<{ orders: LaunchOrderJson[] }>("/api/v2/capacity/orders");
    const order = orders.find((x) => x.order_id === id);
    if (order?.status === "registered" || order?.status === "fulfilled") return;
    if (!order || order.status === "failed" || order.status === "open")
      throw new Error(`the order is ${order?.status ?? "gone"}${order?.reason ? `: ${order.reason}` : ""}`);
    await pause(pollMs, signal);
    if (signal.aborted) throw new Error("the launcher stopped");
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => {});
}
