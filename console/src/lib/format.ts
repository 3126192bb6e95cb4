// Display helpers shared by the pages.

export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(formatValue).join(", ");
  if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 4 });
  if (typeof value === "boolean") return value ? "✓" : "✗";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function formatTime(value: string | null | undefined): string {
  if (!value) return "—";
  // The API answers naive UTC or ISO with offset; business time is Beijing time (the exchanges'),
  // whatever the browser's own zone.
  const iso = /[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`;
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? value
    : date.toLocaleString(undefined, { timeZone: "Asia/Shanghai", hour12: false });
}

export function percent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${(value * 100).toFixed(digits)}%`;
}

/** Midnight of today in Beijing time (the exchanges' day), as the naive UTC the API stores. */
export function beijingMidnightUtc(now: Date = new Date()): string {
  const shanghai = new Date(now.getTime() + 8 * 3600_000);
  const midnight = Date.UTC(shanghai.getUTCFullYear(), shanghai.getUTCMonth(), shanghai.getUTCDate()) - 8 * 3600_000;
  return new Date(midnight).toISOString().slice(0, 19);
}
