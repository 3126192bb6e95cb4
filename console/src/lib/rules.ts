// The rule builder's model: an editable tree that becomes the rule DSL of docs/rules.md
// ({relation, rules: [profile_rule | event_rule | group]}) and back. Pure: no React, no I/O.

export type Relation = "and" | "or";

export const PROFILE_FUNCTIONS = [
  "equal",
  "notEqual",
  "in",
  "notIn",
  "contain",
  "notContain",
  "isSet",
  "notSet",
  "isTrue",
  "isFalse",
  "gt",
  "gte",
  "lt",
  "lte",
  "between",
  "before",
  "after",
  "relativeWithin",
] as const;
export type ProfileFunction = (typeof PROFILE_FUNCTIONS)[number];

export const MEASURE_FUNCTIONS = [
  "did",
  "notDid",
  "gte",
  "gt",
  "lte",
  "lt",
  "equal",
  "notEqual",
  "between",
] as const;
export type MeasureFunction = (typeof MEASURE_FUNCTIONS)[number];

export const AGGREGATORS = ["count", "distinct_count", "sum", "avg", "max", "min"] as const;
export type Aggregator = (typeof AGGREGATORS)[number];

/** How many params each function takes: [min, max]. */
const ARITY: Record<ProfileFunction | MeasureFunction, [number, number]> = {
  equal: [1, 1000],
  notEqual: [1, 1000],
  in: [1, 1000],
  notIn: [1, 1000],
  contain: [1, 1],
  notContain: [1, 1],
  isSet: [0, 0],
  notSet: [0, 0],
  isTrue: [0, 0],
  isFalse: [0, 0],
  gt: [1, 1],
  gte: [1, 1],
  lt: [1, 1],
  lte: [1, 1],
  between: [2, 2],
  before: [1, 1],
  after: [1, 1],
  relativeWithin: [1, 1],
  did: [0, 0],
  notDid: [0, 0],
};

export function arity(fn: ProfileFunction | MeasureFunction): [number, number] {
  return ARITY[fn];
}

export interface ProfileCondition {
  kind: "profile";
  id: string;
  field: string;
  function: ProfileFunction;
  /** As typed; coerced to the property's type by ``toRule``. */
  values: string[];
}

export interface EventCondition {
  kind: "event";
  id: string;
  /** null: any event. */
  event: string | null;
  aggregator: Aggregator;
  property: string | null;
  days: number;
  function: MeasureFunction;
  values: string[];
}

export interface ConditionGroup {
  kind: "group";
  id: string;
  relation: Relation;
  children: RuleNode[];
}

export type RuleNode = ProfileCondition | EventCondition | ConditionGroup;

let counter = 0;
export function newId(): string {
  counter += 1;
  return `n${counter}`;
}

export function emptyGroup(relation: Relation = "and"): ConditionGroup {
  return { kind: "group", id: newId(), relation, children: [] };
}

export function newProfileCondition(field = ""): ProfileCondition {
  return { kind: "profile", id: newId(), field, function: "equal", values: [""] };
}

export function newEventCondition(event: string | null = null): EventCondition {
  return {
    kind: "event",
    id: newId(),
    event,
    aggregator: "count",
    property: null,
    days: 30,
    function: "did",
    values: [],
  };
}

/** A copy of ``tree`` where the node with ``id`` is replaced by ``change(node)``. */
export function updateNode(
  tree: ConditionGroup,
  id: string,
  change: (node: RuleNode) => RuleNode,
): ConditionGroup {
  const visit = (node: RuleNode): RuleNode => {
    if (node.id === id) return change(node);
    if (node.kind === "group") return { ...node, children: node.children.map(visit) };
    return node;
  };
  const result = visit(tree);
  if (result.kind !== "group") throw new Error("the root stays a group");
  return result;
}

/** A copy of ``tree`` without the node ``id`` (the root cannot be removed). */
export function removeNode(tree: ConditionGroup, id: string): ConditionGroup {
  const visit = (group: ConditionGroup): ConditionGroup => ({
    ...group,
    children: group.children
      .filter((child) => child.id !== id)
      .map((child) => (child.kind === "group" ? visit(child) : child)),
  });
  return visit(tree);
}

/** A copy of ``tree`` with ``child`` appended to the group ``groupId``. */
export function addChild(tree: ConditionGroup, groupId: string, child: RuleNode): ConditionGroup {
  return updateNode(tree, groupId, (node) =>
    node.kind === "group" ? { ...node, children: [...node.children, child] } : node,
  );
}

/** Sensors property types by name (NUMBER, STRING, BOOL, DATETIME, DATE, LIST). */
export type PropertyTypes = Record<string, string>;

export class RuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RuleError";
  }
}

type Scalar = string | number | boolean;

function coerce(value: string, type: string | undefined, where: string): Scalar {
  const text = value.trim();
  if (type === "NUMBER") {
    const number = Number(text);
    if (text === "" || !Number.isFinite(number)) throw new RuleError(`${where}: "${value}" is not a number`);
    return number;
  }
  if (type === "BOOL") {
    if (text === "true") return true;
    if (text === "false") return false;
    throw new RuleError(`${where}: "${value}" is not true/false`);
  }
  return text;
}

function checkArity(fn: ProfileFunction | MeasureFunction, count: number, where: string): void {
  const [low, high] = ARITY[fn];
  if (count < low || count > high) {
    const want = low === high ? String(low) : `${low}..${high}`;
    throw new RuleError(`${where}: ${fn} takes ${want} value(s), got ${count}`);
  }
}

function filled(values: string[]): string[] {
  return values.filter((v) => v.trim() !== "");
}

export type Rule = Record<string, unknown>;

function nodeToRule(node: RuleNode, types: PropertyTypes, where: string): Rule {
  if (node.kind === "group") {
    if (node.children.length === 0) throw new RuleError(`${where}: empty group`);
    return {
      relation: node.relation,
      rules: node.children.map((child, i) => nodeToRule(child, types, `${where}.rules[${i}]`)),
    };
  }
  if (node.kind === "profile") {
    if (!node.field) throw new RuleError(`${where}: choose a property`);
    const values = filled(node.values);
    checkArity(node.function, values.length, where);
    const type = node.function === "relativeWithin" ? "NUMBER" : types[node.field];
    let params = values.map((v) => coerce(v, type, where));
    if (node.function === "relativeWithin") params = params.map((p) => Math.trunc(Number(p)));
    return { type: "profile_rule", field: node.field, function: node.function, params };
  }
  if (node.aggregator !== "count" && !node.property) {
    throw new RuleError(`${where}: ${node.aggregator} needs a property`);
  }
  if (!Number.isInteger(node.days) || node.days < 1 || node.days > 3650) {
    throw new RuleError(`${where}: the window is 1..3650 days`);
  }
  const values = filled(node.values);
  checkArity(node.function, values.length, where);
  const measure: Rule = { aggregator: node.aggregator };
  if (node.event) measure.event = node.event;
  if (node.aggregator !== "count" && node.property) measure.property = node.property;
  return {
    type: "event_rule",
    measure,
    window: { relative_days: node.days },
    function: node.function,
    params: values.map((v) => coerce(v, "NUMBER", where) as number),
  };
}

/** The DSL of an edited tree; :class:`RuleError` names the first incomplete part. */
export function toRule(tree: ConditionGroup, types: PropertyTypes = {}): Rule {
  if (tree.children.length === 0) throw new RuleError("rules: add at least one condition");
  return nodeToRule(tree, types, "rules");
}

/** ``toRule`` that answers ``{rule}`` or ``{error}`` instead of throwing. */
export function tryRule(
  tree: ConditionGroup,
  types: PropertyTypes = {},
): { rule: Rule; error: null } | { rule: null; error: string } {
  try {
    return { rule: toRule(tree, types), error: null };
  } catch (error) {
    if (error instanceof RuleError) return { rule: null, error: error.message };
    throw error;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * An editable tree from a DSL rule, or null when the rule uses shapes the builder does not edit
 * (sequences, tag or segment references, event filters, other windows).
 */
export function fromRule(rule: unknown): ConditionGroup | null {
  if (!isRecord(rule) || !Array.isArray(rule.rules)) return null;
  const relation = rule.relation === "or" ? "or" : "and";
  const children: RuleNode[] = [];
  for (const child of rule.rules) {
    if (!isRecord(child)) return null;
    const type = child.type ?? (Array.isArray(child.rules) ? "rules_relation" : undefined);
    if (type === "rules_relation") {
      const group = fromRule(child);
      if (!group) return null;
      children.push(group);
    } else if (type === "profile_rule") {
      if (typeof child.field !== "string" || typeof child.function !== "string") return null;
      if (!(PROFILE_FUNCTIONS as readonly string[]).includes(child.function)) return null;
      const params = Array.isArray(child.params) ? child.params : [];
      children.push({
        kind: "profile",
        id: newId(),
        field: child.field,
        function: child.function as ProfileFunction,
        values: params.map((p) => String(p)),
      });
    } else if (type === "event_rule") {
      const measure = child.measure;
      const window = child.window;
      if (!isRecord(measure) || !isRecord(window) || child.filters) return null;
      if (typeof window.relative_days !== "number" || Object.keys(window).length !== 1) return null;
      if (!(MEASURE_FUNCTIONS as readonly string[]).includes(String(child.function))) return null;
      const aggregator = (measure.aggregator ?? "count") as Aggregator;
      if (!AGGREGATORS.includes(aggregator)) return null;
      const params = Array.isArray(child.params) ? child.params : [];
      children.push({
        kind: "event",
        id: newId(),
        event: typeof measure.event === "string" ? measure.event : null,
        aggregator,
        property: typeof measure.property === "string" ? measure.property : null,
        days: window.relative_days,
        function: child.function as MeasureFunction,
        values: params.map((p) => String(p)),
      });
    } else {
      return null;
    }
  }
  return { kind: "group", id: newId(), relation, children };
}
