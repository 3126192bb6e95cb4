// The visual rule builder: profile conditions, event conditions (measure, window, comparison)
// and nested and/or groups, edited as the pure tree of lib/rules.ts.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { AutoComplete, Button, Card, InputNumber, Segmented, Select, Space, Input } from "antd";
import { useI18n } from "../lib/i18n";
import {
  addChild,
  AGGREGATORS,
  arity,
  emptyGroup,
  MEASURE_FUNCTIONS,
  newEventCondition,
  newProfileCondition,
  PROFILE_FUNCTIONS,
  removeNode,
  updateNode,
  type ConditionGroup,
  type EventCondition,
  type ProfileCondition,
  type RuleNode,
} from "../lib/rules";
import type { SchemaOut } from "../lib/types";

const FUNCTION_LABELS: Record<string, string> = {
  equal: "=",
  notEqual: "≠",
  in: "in",
  notIn: "not in",
  contain: "contains",
  notContain: "not contains",
  isSet: "is set",
  notSet: "is not set",
  isTrue: "is true",
  isFalse: "is false",
  gt: ">",
  gte: "≥",
  lt: "<",
  lte: "≤",
  between: "between",
  before: "before",
  after: "after",
  relativeWithin: "within last N days",
  did: "did",
  notDid: "did not",
};

interface Props {
  value: ConditionGroup;
  onChange: (tree: ConditionGroup) => void;
  schema: SchemaOut;
}

function Values({ fn, values, onChange, testId }: { fn: string; values: string[]; onChange: (v: string[]) => void; testId: string }) {
  const { t } = useI18n();
  const [low, high] = arity(fn as Parameters<typeof arity>[0]);
  if (high === 0) return null;
  if (high === 2 && low === 2) {
    return (
      <Space.Compact>
        <Input style={{ width: 100 }} value={values[0] ?? ""} onChange={(e) => onChange([e.target.value, values[1] ?? ""])} data-testid={`${testId}-value`} />
        <Input style={{ width: 100 }} value={values[1] ?? ""} onChange={(e) => onChange([values[0] ?? "", e.target.value])} data-testid={`${testId}-value2`} />
      </Space.Compact>
    );
  }
  if (high > 1) {
    return (
      <Input
        style={{ width: 220 }}
        placeholder={t("rules.values")}
        value={values.join(",")}
        onChange={(e) => onChange(e.target.value.split(","))}
        data-testid={`${testId}-value`}
      />
    );
  }
  return (
    <Input
      style={{ width: 140 }}
      placeholder={t("rules.value")}
      value={values[0] ?? ""}
      onChange={(e) => onChange([e.target.value])}
      data-testid={`${testId}-value`}
    />
  );
}

function ProfileRow({ node, schema, update, testId }: { node: ProfileCondition; schema: SchemaOut; update: (n: RuleNode) => void; testId: string }) {
  const { t } = useI18n();
  return (
    <Space wrap>
      <AutoComplete
        style={{ width: 200 }}
        placeholder={t("rules.property")}
        value={node.field}
        options={schema.profile_properties.map((p) => ({ value: p.name, label: `${p.name} (${p.type})` }))}
        filterOption={(input, option) => String(option?.value ?? "").toLowerCase().includes(input.toLowerCase())}
        onChange={(field: string) => update({ ...node, field })}
        data-testid={`${testId}-field`}
      />
      <Select
        style={{ width: 170 }}
        virtual={false}
        value={node.function}
        options={PROFILE_FUNCTIONS.map((fn) => ({ value: fn, label: FUNCTION_LABELS[fn] ?? fn }))}
        onChange={(fn) => update({ ...node, function: fn, values: arity(fn)[1] === 0 ? [] : node.values })}
        data-testid={`${testId}-function`}
      />
      <Values fn={node.function} values={node.values} onChange={(values) => update({ ...node, values })} testId={testId} />
    </Space>
  );
}

function EventRow({ node, schema, update, testId }: { node: EventCondition; schema: SchemaOut; update: (n: RuleNode) => void; testId: string }) {
  const { t } = useI18n();
  return (
    <Space wrap>
      <span>{t("rules.window")}</span>
      <InputNumber min={1} max={3650} value={node.days} onChange={(days) => update({ ...node, days: days ?? 30 })} style={{ width: 80 }} data-testid={`${testId}-days`} />
      <span>{t("rules.days")}</span>
      <Select
        style={{ width: 200 }}
        showSearch
        allowClear
        placeholder={t("rules.anyEvent")}
        value={node.event ?? undefined}
        options={schema.events.map((e) => ({ value: e.name, label: e.name }))}
        onChange={(event: string | undefined) => update({ ...node, event: event ?? null })}
        data-testid={`${testId}-event`}
      />
      <Select
        style={{ width: 130 }}
        value={node.aggregator}
        options={AGGREGATORS.map((a) => ({ value: a, label: a }))}
        onChange={(aggregator) => update({ ...node, aggregator, property: aggregator === "count" ? null : node.property })}
        data-testid={`${testId}-aggregator`}
      />
      {node.aggregator !== "count" && (
        <AutoComplete
          style={{ width: 150 }}
          placeholder={t("rules.measureProperty")}
          value={node.property ?? ""}
          options={schema.event_properties.map((p) => ({ value: p.name }))}
          onChange={(property: string) => update({ ...node, property: property || null })}
        />
      )}
      <Select
        style={{ width: 110 }}
        virtual={false}
        value={node.function}
        options={MEASURE_FUNCTIONS.map((fn) => ({ value: fn, label: FUNCTION_LABELS[fn] ?? fn }))}
        onChange={(fn) => update({ ...node, function: fn, values: arity(fn)[1] === 0 ? [] : node.values.length ? node.values : ["1"] })}
        data-testid={`${testId}-function`}
      />
      <Values fn={node.function} values={node.values} onChange={(values) => update({ ...node, values })} testId={testId} />
    </Space>
  );
}

function GroupView({ group, root, onChange, schema, depth, path }: { group: ConditionGroup; root: ConditionGroup; onChange: Props["onChange"]; schema: SchemaOut; depth: number; path: string }) {
  const { t } = useI18n();
  const update = (node: RuleNode) => onChange(updateNode(root, node.id, () => node));
  return (
    <Card
      size="small"
      style={{ background: depth % 2 ? "#fafafa" : "#fff" }}
      data-testid={`group-${path}`}
      title={
        <Segmented
          size="small"
          value={group.relation}
          options={[
            { value: "and", label: t("rules.and") },
            { value: "or", label: t("rules.or") },
          ]}
          onChange={(relation) => update({ ...group, relation: relation as "and" | "or" })}
        />
      }
      extra={
        depth > 0 && (
          <Button size="small" type="text" danger icon={<DeleteOutlined />} onClick={() => onChange(removeNode(root, group.id))} aria-label={t("rules.remove")} />
        )
      }
    >
      <Space direction="vertical" style={{ width: "100%" }}>
        {group.children.map((child, index) => {
          const childPath = `${path}-${index}`;
          if (child.kind === "group") {
            return <GroupView key={child.id} group={child} root={root} onChange={onChange} schema={schema} depth={depth + 1} path={childPath} />;
          }
          const testId = `cond-${childPath}`;
          return (
            <Space key={child.id} align="start" data-testid={testId}>
              <Button size="small" type="text" danger icon={<DeleteOutlined />} onClick={() => onChange(removeNode(root, child.id))} aria-label={t("rules.remove")} />
              <span style={{ minWidth: 64, display: "inline-block", color: "#888" }}>
                {child.kind === "profile" ? t("rules.profile") : t("rules.event")}
              </span>
              {child.kind === "profile" ? (
                <ProfileRow node={child} schema={schema} update={update} testId={testId} />
              ) : (
                <EventRow node={child} schema={schema} update={update} testId={testId} />
              )}
            </Space>
          );
        })}
        <Space wrap>
          <Button size="small" icon={<PlusOutlined />} onClick={() => onChange(addChild(root, group.id, newProfileCondition()))} data-testid={`add-profile-${path}`}>
            {t("rules.addProfile")}
          </Button>
          <Button size="small" icon={<PlusOutlined />} onClick={() => onChange(addChild(root, group.id, newEventCondition()))} data-testid={`add-event-${path}`}>
            {t("rules.addEvent")}
          </Button>
          {depth < 3 && (
            <Button size="small" icon={<PlusOutlined />} onClick={() => onChange(addChild(root, group.id, emptyGroup(group.relation === "and" ? "or" : "and")))} data-testid={`add-group-${path}`}>
              {t("rules.addGroup")}
            </Button>
          )}
        </Space>
      </Space>
    </Card>
  );
}

export function RuleBuilder({ value, onChange, schema }: Props) {
  return <GroupView group={value} root={value} onChange={onChange} schema={schema} depth={0} path="0" />;
}
