// Turning analytics tables into chart series. Pure: tested without a browser.
import type { TableOut } from "./types";

export interface LineSeries {
  name: string;
  data: (number | null)[];
}

/** ``{x, series}`` from an event-analysis table (columns series, event, measure, bucket…, value). */
export function eventLines(table: TableOut): { x: string[]; series: LineSeries[] } {
  const col = (name: string) => table.columns.indexOf(name);
  const bucketAt = col("bucket");
  const valueAt = col("value");
  const seriesAt = col("series");
  const eventAt = col("event");
  const measureAt = col("measure");
  const groupAts = table.columns
    .map((name, i) => [name, i] as const)
    .filter(([name]) => !["series", "event", "measure", "bucket", "value"].includes(name))
    .map(([, i]) => i);
  const xs = new Set<string>();
  const byName = new Map<string, Map<string, number | null>>();
  for (const row of table.rows) {
    const x = bucketAt >= 0 ? String(row[bucketAt]).slice(0, 19) : "total";
    const label = [
      seriesAt >= 0 ? `#${String(row[seriesAt])}` : "",
      eventAt >= 0 ? String(row[eventAt] ?? "*") : "",
      measureAt >= 0 ? String(row[measureAt]) : "",
      ...groupAts.map((i) => String(row[i])),
    ]
      .filter(Boolean)
      .join(" ");
    xs.add(x);
    const values = byName.get(label) ?? new Map<string, number | null>();
    const value = row[valueAt];
    values.set(x, typeof value === "number" ? value : value === null ? null : Number(value));
    byName.set(label, values);
  }
  const x = [...xs].sort();
  const series = [...byName.entries()].map(([name, values]) => ({
    name,
    data: x.map((key) => values.get(key) ?? 0),
  }));
  return { x, series };
}
