// Prometheus text exposition (format 0.0.4) for `GET /metrics`: the CP hands over metric families, this module
// only renders them, escaping label values. Public like /healthz: counts and timings, never identities or secrets.
import type { MetricFamily } from "../../contract/metrics.ts";

export type { MetricFamily } from "../../contract/metrics.ts";

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

export function renderMetrics(families: MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(",")}}`
        : "";
      out.push(`${f.name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
    }
  }
  return `${out.join("\n")}\n`;
}
