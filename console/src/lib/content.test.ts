import { describe, expect, it } from "vitest";
import { highlight, previewRequest, smsCount } from "./content";

describe("highlight", () => {
  it("cuts the text at the findings", () => {
    const pieces = highlight("本基金保本保收益，稳赚不赔", [
      { phrase: "保本", start: 3, end: 5, rule: "prohibited_claim" },
      { phrase: "稳赚不赔", start: 9, end: 13, rule: "prohibited_claim" },
    ]);
    expect(pieces.map((p) => [p.text, p.finding?.phrase ?? null])).toEqual([
      ["本基金", null],
      ["保本", "保本"],
      ["保收益，", null],
      ["稳赚不赔", "稳赚不赔"],
    ]);
  });

  it("merges overlaps and counts code points like Python", () => {
    const pieces = highlight("😀保本保息", [
      { phrase: "保本保息", start: 1, end: 5, rule: "prohibited_claim" },
      { phrase: "保本", start: 1, end: 3, rule: "prohibited_claim" },
    ]);
    expect(pieces.map((p) => p.text)).toEqual(["😀", "保本保息"]);
    expect(highlight("abc", [])).toEqual([{ text: "abc", finding: null }]);
  });
});

describe("smsCount", () => {
  it("uses GSM-7 for plain text and UCS-2 for Chinese", () => {
    expect(smsCount("hello")).toEqual({ encoding: "gsm7", length: 5, segments: 1, per_segment: 160 });
    expect(smsCount("a".repeat(161))).toEqual({ encoding: "gsm7", length: 161, segments: 2, per_segment: 153 });
    expect(smsCount("{}").length).toBe(4);
    expect(smsCount("你".repeat(70)).segments).toBe(1);
    expect(smsCount("你".repeat(71))).toEqual({ encoding: "ucs2", length: 71, segments: 2, per_segment: 67 });
    expect(smsCount("").segments).toBe(0);
  });
});

describe("previewRequest", () => {
  const saved = { subject: "月报", body: "{{ user.name }}您好" };

  it("previews the saved version while the editor matches it", () => {
    expect(previewRequest(7, saved, { ...saved })).toEqual({ user_id: 7 });
    expect(previewRequest(null, saved, { ...saved })).toEqual({ user_id: null });
  });

  it("sends the editor's text as a draft once it differs", () => {
    expect(previewRequest(7, saved, { ...saved, body: "{{ user.name }}，您好" })).toEqual({
      user_id: 7,
      draft: { subject: "月报", body: "{{ user.name }}，您好" },
    });
    expect(previewRequest(null, saved, { ...saved, subject: "" }).draft).toEqual({ subject: "", body: saved.body });
  });
});
