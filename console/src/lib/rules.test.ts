import { describe, expect, it } from "vitest";
import {
  addChild,
  emptyGroup,
  fromRule,
  newEventCondition,
  newProfileCondition,
  removeNode,
  RuleError,
  toRule,
  tryRule,
  updateNode,
  type ConditionGroup,
} from "./rules";

const TYPES = { total_assets: "NUMBER", branch: "STRING", has_margin_account: "BOOL" };

function sample(): ConditionGroup {
  let tree = emptyGroup("and");
  const branch = { ...newProfileCondition("branch"), function: "in" as const, values: ["BR001", "BR002"] };
  const assets = { ...newProfileCondition("total_assets"), function: "gte" as const, values: ["500000"] };
  const buys = {
    ...newEventCondition("BuyFund"),
    aggregator: "sum" as const,
    property: "amount",
    days: 30,
    function: "gt" as const,
    values: ["1000"],
  };
  tree = addChild(tree, tree.id, branch);
  const inner = emptyGroup("or");
  tree = addChild(tree, tree.id, inner);
  tree = addChild(tree, inner.id, assets);
  tree = addChild(tree, inner.id, buys);
  return tree;
}

describe("toRule", () => {
  it("compiles the canonical shapes with typed params", () => {
    expect(toRule(sample(), TYPES)).toEqual({
      relation: "and",
      rules: [
        { type: "profile_rule", field: "branch", function: "in", params: ["BR001", "BR002"] },
        {
          relation: "or",
          rules: [
            { type: "profile_rule", field: "total_assets", function: "gte", params: [500000] },
            {
              type: "event_rule",
              measure: { aggregator: "sum", event: "BuyFund", property: "amount" },
              window: { relative_days: 30 },
              function: "gt",
              params: [1000],
            },
          ],
        },
      ],
    });
  });

  it("omits the event of an any-event count and takes no params for did", () => {
    let tree = emptyGroup();
    tree = addChild(tree, tree.id, newEventCondition(null));
    expect(toRule(tree)).toEqual({
      relation: "and",
      rules: [
        {
          type: "event_rule",
          measure: { aggregator: "count" },
          window: { relative_days: 30 },
          function: "did",
          params: [],
        },
      ],
    });
  });

  it("names the incomplete part", () => {
    expect(() => toRule(emptyGroup())).toThrow(RuleError);
    let tree = emptyGroup();
    tree = addChild(tree, tree.id, newProfileCondition(""));
    expect(tryRule(tree).error).toMatch(/rules\.rules\[0\]: choose a property/);
    const bad = { ...newProfileCondition("total_assets"), function: "gt" as const, values: ["rich"] };
    const root = emptyGroup();
    expect(tryRule(addChild(root, root.id, bad), TYPES).error).toMatch(/not a number/);
    const between = { ...newProfileCondition("total_assets"), function: "between" as const, values: ["1"] };
    const root2 = emptyGroup();
    expect(tryRule(addChild(root2, root2.id, between), TYPES).error).toMatch(/takes 2 value/);
    const sum = { ...newEventCondition("BuyFund"), aggregator: "sum" as const };
    const root3 = emptyGroup();
    expect(tryRule(addChild(root3, root3.id, sum)).error).toMatch(/sum needs a property/);
  });

  it("coerces booleans", () => {
    const root = emptyGroup();
    const margin = { ...newProfileCondition("has_margin_account"), values: ["true"] };
    expect(toRule(addChild(root, root.id, margin), TYPES).rules).toEqual([
      { type: "profile_rule", field: "has_margin_account", function: "equal", params: [true] },
    ]);
  });
});

describe("tree edits", () => {
  it("updates and removes nested nodes without touching the original", () => {
    const tree = sample();
    const inner = tree.children[1];
    if (!inner || inner.kind !== "group") throw new Error("sample shape");
    const first = inner.children[0];
    if (!first) throw new Error("sample shape");
    const changed = updateNode(tree, first.id, (n) => (n.kind === "profile" ? { ...n, values: ["1"] } : n));
    expect(toRule(changed, TYPES)).not.toEqual(toRule(tree, TYPES));
    const removed = removeNode(tree, first.id);
    const removedInner = removed.children[1];
    expect(removedInner?.kind === "group" && removedInner.children.length).toBe(1);
    expect(inner.children.length).toBe(2);
  });
});

describe("fromRule", () => {
  it("round-trips what toRule produces", () => {
    const rule = toRule(sample(), TYPES);
    const tree = fromRule(rule);
    expect(tree).not.toBeNull();
    expect(toRule(tree as ConditionGroup, TYPES)).toEqual(rule);
  });

  it("refuses shapes the builder does not edit", () => {
    expect(fromRule({ relation: "and", rules: [{ type: "sequence_rule" }] })).toBeNull();
    expect(fromRule({ relation: "and", rules: [{ type: "tag_rule", tag: "x" }] })).toBeNull();
    expect(fromRule("nonsense")).toBeNull();
  });
});
