// The metric families the CP's parts hand to `GET /metrics` (transport/rest/metrics.ts renders them): a port type
// only, so actors/ and federation publish gauges without importing transport/. Imports nothing.

export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: { labels?: Record<string, string>; value: number }[];
}
