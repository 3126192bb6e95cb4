import { describe, expect, it } from "vitest";
import { ruleChannels } from "./channels";

describe("ruleChannels", () => {
  it("offers each family once, before the adapters, and never a family that is an adapter's own name", () => {
    const known = [
      { name: "app_push", family: "push" },
      { name: "sms", family: "sms" },
      { name: "wechat_subscribe", family: "wechat" },
      { name: "wechat_template", family: "wechat" },
    ];
    expect(ruleChannels(known)).toEqual([
      { value: "push", family: true },
      { value: "wechat", family: true },
      { value: "app_push", family: false },
      { value: "sms", family: false },
      { value: "wechat_subscribe", family: false },
      { value: "wechat_template", family: false },
    ]);
  });

  it("is empty without channels", () => {
    expect(ruleChannels([])).toEqual([]);
  });
});
