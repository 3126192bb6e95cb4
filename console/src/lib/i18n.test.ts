import { describe, expect, it } from "vitest";
import { DICTIONARIES, translate } from "./i18n";

describe("translate", () => {
  it("fills placeholders in both languages", () => {
    expect(translate("zh-CN", "common.total", { n: 3 })).toBe("共 3 条");
    expect(translate("en-US", "common.total", { n: 3 })).toBe("3 in total");
  });

  it("has every message in both languages, none empty", () => {
    const zh = Object.keys(DICTIONARIES["zh-CN"]).sort();
    expect(Object.keys(DICTIONARIES["en-US"]).sort()).toEqual(zh);
    for (const language of ["zh-CN", "en-US"] as const) {
      for (const [key, text] of Object.entries(DICTIONARIES[language])) expect(text, key).not.toBe("");
    }
  });
});
