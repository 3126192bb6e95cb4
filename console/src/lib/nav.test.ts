import { describe, expect, it } from "vitest";
import { homePath, SECTIONS, visibleSections } from "./nav";

describe("visibleSections", () => {
  it("shows a section only to holders of one of its permissions", () => {
    const auditor = visibleSections(["projects:read", "audit:read"]).map((s) => s.key);
    expect(auditor).toEqual(["admin"]);
    const advisor = visibleSections(["projects:read", "customers:read", "advisor:tasks", "recommend:read"]).map((s) => s.key);
    expect(advisor).toEqual(["customers", "recommend", "advisor"]);
    expect(visibleSections(SECTIONS.flatMap((s) => s.anyOf))).toHaveLength(SECTIONS.length);
  });

  it("lands on the first section the user may see", () => {
    expect(homePath(["analytics:read", "customers:read"])).toBe("/");
    expect(homePath(["audit:read"])).toBe("/admin");
    expect(homePath([])).toBe("/forbidden");
  });
});
