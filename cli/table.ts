// Plain-text tables and ages for operator output: aligned columns, no colours, so output pipes cleanly.

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** "3s ago", "5m ago"… from an ISO time; "-" when absent. */
export function age(isoTime: string | null | undefined, now = Date.now()): string {
  if (!isoTime) return "-";
  const s = Math.max(0, Math.round((now - Date.parse(isoTime)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
