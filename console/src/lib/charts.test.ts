import { describe, expect, it } from "vitest";
import { eventLines } from "./charts";

describe("eventLines", () => {
  it("pivots buckets into one line per series and fills gaps with 0", () => {
    const table = {
      kind: "events",
      columns: ["series", "event", "measure", "bucket", "value"],
      rows: [
        [0, "BuyFund", "count", "2026-11-02", 3],
        [0, "BuyFund", "count", "2026-11-01", 1],
        [1, "Login", "uniques", "2026-11-02", 7],
      ],
    };
    expect(eventLines(table)).toEqual({
      x: ["2026-11-01", "2026-11-02"],
      series: [
        { name: "#0 BuyFund count", data: [1, 3] },
        { name: "#1 Login uniques", data: [0, 7] },
      ],
    });
  });
});
