import { describe, expect, it } from "vitest";

import { beijingMidnightUtc, formatTime } from "./format";

describe("formatTime", () => {
  it("shows naive UTC from the API in Beijing time", () => {
    // 02:01 UTC is 10:01 in Asia/Shanghai.
    expect(formatTime("2026-11-22T02:01:53")).toContain("10:01:53");
  });

  it("respects an explicit offset", () => {
    expect(formatTime("2026-11-22T10:01:53+08:00")).toContain("10:01:53");
  });

  it("keeps what it cannot parse", () => {
    expect(formatTime("not a time")).toBe("not a time");
    expect(formatTime(null)).toBe("—");
  });
});

describe("beijingMidnightUtc", () => {
  it("is 16:00 UTC of the previous day, whatever the hour in Beijing", () => {
    expect(beijingMidnightUtc(new Date("2026-11-24T15:59:00Z"))).toBe("2026-11-23T16:00:00");
    expect(beijingMidnightUtc(new Date("2026-11-24T16:00:00Z"))).toBe("2026-11-24T16:00:00");
    expect(beijingMidnightUtc(new Date("2026-11-24T03:00:00Z"))).toBe("2026-11-23T16:00:00");
  });
});
