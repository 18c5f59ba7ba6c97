// The seeds' sync-lag guardrail on the master, pure: given each dc's lag (datacenters() of the FederatedView) and
// the set of dcs already warned about, which dcs crossed the threshold now and which recovered, so the master
// logs one line per crossing and one per recovery instead of one per check; and the per-dc Prometheus families
// for /metrics. A dc never heard from (lag null) has no lag sample and is not "above": it is degraded already,
// and a guess would page on a dc that is only being set up.
// Imports contract/metrics types and this folder's types only.
import type { MetricFamily } from "../../contract/metrics.ts";
import type { DatacenterView } from "./federated-view.ts";

export const LAG_WARN_DEFAULT_MS = 60_000;

type DcLag = Pick<DatacenterView, "dc_id" | "lag_s">;

export interface LagTransitions {
  /** Every dc above the threshold now (the next call's `warned`). */
  above: Set<string>;
  crossed: { dc_id: string; lag_s: number }[];
  recovered: { dc_id: string; lag_s: number | null }[];
}

const isAbove = (d: DcLag, thresholdMs: number) => d.lag_s !== null && d.lag_s * 1000 > thresholdMs;

export function lagTransitions(
  warned: ReadonlySet<string>,
  dcs: DcLag[],
  thresholdMs: number,
): LagTransitions {
  const above = new Set<string>();
  const crossed: LagTransitions["crossed"] = [];
  const recovered: LagTransitions["recovered"] = [];
  for (const d of dcs) {
    if (isAbove(d, thresholdMs)) {
      above.add(d.dc_id);
      if (!warned.has(d.dc_id)) crossed.push({ dc_id: d.dc_id, lag_s: d.lag_s! });
    } else if (warned.has(d.dc_id)) recovered.push({ dc_id: d.dc_id, lag_s: d.lag_s });
  }
  return { above, crossed, recovered };
}

export function lagMetrics(
  dcs: Pick<DatacenterView, "dc_id" | "lag_s" | "status">[],
  thresholdMs: number,
): MetricFamily[] {
  return [
    {
      name: "ee_federation_dc_lag_seconds",
      help: "Seconds between the newest state the master holds from a dc and now (absent until the dc is heard).",
      type: "gauge",
      samples: dcs.flatMap((d) => (d.lag_s === null ? [] : [{ labels: { dc_id: d.dc_id }, value: d.lag_s }])),
    },
    {
      name: "ee_federation_dc_lag_above_threshold",
      help: "1 while a dc's sync lag is above the master's --dc-lag-warn-ms guardrail, else 0.",
      type: "gauge",
      samples: dcs.map((d) => ({ labels: { dc_id: d.dc_id }, value: isAbove(d, thresholdMs) ? 1 : 0 })),
    },
    {
      name: "ee_federation_dc_degraded",
      help: "1 while a dc is degraded (placement skips it), else 0.",
      type: "gauge",
      samples: dcs.map((d) => ({ labels: { dc_id: d.dc_id }, value: d.status === "degraded" ? 1 : 0 })),
    },
  ];
}
