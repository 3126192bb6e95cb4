// The form of one canvas node, per node type (the drawer beside the canvas). Every change goes
// straight back to the node; the server validates the whole journey (validate / save / publish).
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { AutoComplete, Button, Form, Input, InputNumber, Radio, Select, Space, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { RuleBuilder } from "../../components/RuleBuilder";
import { useI18n, type MessageKey } from "../../lib/i18n";
import type { JourneyNode } from "../../lib/journey";
import { emptyGroup, fromRule, tryRule, type ConditionGroup } from "../../lib/rules";
import { propertyTypes } from "../../lib/schema";
import type { SchemaOut } from "../../lib/types";

export interface Pickers {
  /** Channel names of GET /api/v1/channels. */
  channels: string[];
  segments: { id: number; name: string }[];
  contents: { id: number; name: string; channel: string | null; approved_version_id: number | null }[];
  tags: { name: string; display_name: string }[];
  scenes: { name: string }[];
  schema: SchemaOut;
}

type Update = (patch: Record<string, unknown>) => void;

const UNITS = [
  { value: 60, key: "journeys.minutes" },
  { value: 3600, key: "journeys.hours" },
  { value: 86400, key: "journeys.days" },
] as const;

/** Seconds edited as a number and a unit (minutes, hours, days). */
export function Duration({ value, onChange, testId }: { value: number | null | undefined; onChange: (seconds: number | null) => void; testId?: string }) {
  const { t } = useI18n();
  const seconds = value ?? 0;
  const initial = seconds && seconds % 86400 === 0 ? 86400 : seconds && seconds % 3600 === 0 ? 3600 : 60;
  const [unit, setUnit] = useState<number>(initial);
  return (
    <Space.Compact>
      <InputNumber
        min={1}
        value={value ? value / unit : null}
        onChange={(n) => onChange(n === null ? null : Math.round(Number(n) * unit))}
        data-testid={testId}
      />
      <Select
        value={unit}
        style={{ width: 90 }}
        onChange={(u: number) => {
          setUnit(u);
          if (value) onChange(Math.round((value / unit) * u));
        }}
        options={UNITS.map((u) => ({ value: u.value, label: t(u.key) }))}
      />
    </Space.Compact>
  );
}

function EventInput({ value, onChange, schema, testId }: { value: unknown; onChange: (v: string) => void; schema: SchemaOut; testId?: string }) {
  return (
    <AutoComplete
      value={typeof value === "string" ? value : ""}
      onChange={onChange}
      options={schema.events.map((e) => ({ value: e.name }))}
      filterOption={(input, option) => String(option?.value ?? "").toLowerCase().includes(input.toLowerCase())}
      data-testid={testId}
    />
  );
}

interface Filter {
  property: string;
  op: string;
  value?: unknown;
}

const OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"];

function parseValue(text: string, op: string): unknown {
  if (op === "in" || op === "not_in") return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => (s !== "" && !Number.isNaN(Number(s)) ? Number(s) : s));
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

function Filters({ value, onChange }: { value: unknown; onChange: (filters: Filter[]) => void }) {
  const { t } = useI18n();
  const filters = Array.isArray(value) ? (value as Filter[]) : [];
  const set = (index: number, patch: Partial<Filter>) => onChange(filters.map((f, i) => (i === index ? { ...f, ...patch } : f)));
  return (
    <div>
      {filters.map((f, i) => (
        <Space key={i} style={{ marginBottom: 4 }} wrap>
          <Input placeholder={t("rules.property")} value={f.property} onChange={(e) => set(i, { property: e.target.value })} style={{ width: 120 }} />
          <Select value={f.op} onChange={(op: string) => set(i, { op })} options={OPS.map((o) => ({ value: o, label: o }))} style={{ width: 90 }} />
          {f.op !== "exists" && (
            <Input
              placeholder={t("rules.value")}
              defaultValue={Array.isArray(f.value) ? f.value.join(",") : f.value === undefined || f.value === null ? "" : String(f.value)}
              onChange={(e) => set(i, { value: parseValue(e.target.value, f.op) })}
              style={{ width: 110 }}
            />
          )}
          <Button size="small" icon={<DeleteOutlined />} onClick={() => onChange(filters.filter((_, j) => j !== i))} />
        </Space>
      ))}
      <Button size="small" icon={<PlusOutlined />} onClick={() => onChange([...filters, { property: "", op: "eq", value: "" }])}>
        {t("journeys.addFilter")}
      </Button>
    </div>
  );
}

function ConditionForm({ node, update, schema }: { node: JourneyNode; update: Update; schema: SchemaOut }) {
  const { t } = useI18n();
  const types = useMemo(() => propertyTypes(schema), [schema]);
  const [tree, setTree] = useState<ConditionGroup>(() => fromRule(node.rule) ?? emptyGroup("and"));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setTree(fromRule(node.rule) ?? emptyGroup("and"));
    // only when another node is opened
  }, [node.id]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <>
      <RuleBuilder
        value={tree}
        onChange={(next) => {
          setTree(next);
          const compiled = tryRule(next, types);
          setError(compiled.error);
          if (compiled.rule) update({ rule: compiled.rule });
        }}
        schema={schema}
      />
      {error && (
        <Typography.Text type="secondary" data-testid="condition-incomplete">
          {t("segments.ruleInvalid", { reason: error })}
        </Typography.Text>
      )}
    </>
  );
}

function SendForm({ node, update, pickers }: { node: JourneyNode; update: Update; pickers: Pickers }) {
  const { t } = useI18n();
  const content = (node.content ?? {}) as Record<string, unknown>;
  const fromLibrary = typeof content.content_id === "number";
  const webhook = (node.webhook ?? {}) as Record<string, unknown>;
  const channel = String(node.channel ?? "");
  return (
    <>
      <Form.Item label={t("journeys.channel")} required>
        <Select
          value={channel || undefined}
          onChange={(c: string) => update({ channel: c, webhook: c === "webhook" ? (node.webhook ?? { url: "", secret: "" }) : undefined })}
          options={pickers.channels.map((c) => ({ value: c, label: t(`channel.${c}` as MessageKey) ?? c }))}
          data-testid="form-channel"
        />
      </Form.Item>
      <Form.Item label={t("journeys.fallbackChannel")}>
        <Select
          allowClear
          value={(node.fallback_channel as string | undefined) ?? undefined}
          onChange={(c: string | undefined) => update({ fallback_channel: c ?? null })}
          options={pickers.channels.filter((c) => c !== channel).map((c) => ({ value: c, label: t(`channel.${c}` as MessageKey) ?? c }))}
        />
      </Form.Item>
      {channel === "webhook" && (
        <>
          <Form.Item label="URL" required>
            <Input value={String(webhook.url ?? "")} onChange={(e) => update({ webhook: { ...webhook, url: e.target.value } })} data-testid="form-webhook-url" />
          </Form.Item>
          <Form.Item label={t("journeys.secret")} required>
            <Input.Password value={String(webhook.secret ?? "")} onChange={(e) => update({ webhook: { ...webhook, secret: e.target.value } })} />
          </Form.Item>
        </>
      )}
      <Form.Item label={t("journeys.content")}>
        <Radio.Group
          value={fromLibrary ? "library" : "inline"}
          onChange={(e) => update({ content: e.target.value === "library" ? { content_id: pickers.contents[0]?.id ?? 1 } : { text: "" } })}
          options={[
            { value: "library", label: t("journeys.contentLibrary") },
            { value: "inline", label: t("journeys.contentInline") },
          ]}
          data-testid="form-content-mode"
        />
      </Form.Item>
      {fromLibrary ? (
        <Form.Item label={t("journeys.contentItem")} required>
          <Select
            showSearch
            optionFilterProp="label"
            value={content.content_id as number}
            onChange={(id: number) => update({ content: { content_id: id } })}
            options={pickers.contents.map((c) => ({
              value: c.id,
              label: `#${c.id} ${c.name}${c.channel ? ` · ${c.channel}` : ""}${c.approved_version_id ? "" : ` (${t("content.notApproved")})`}`,
            }))}
            data-testid="form-content-item"
          />
        </Form.Item>
      ) : (
        <>
          {channel === "email" && (
            <Form.Item label={t("content.subject")}>
              <Input value={String(content.subject ?? "")} onChange={(e) => update({ content: { ...content, subject: e.target.value } })} />
            </Form.Item>
          )}
          {channel !== "sms" && channel !== "email" && channel !== "webhook" && (
            <Form.Item label={t("journeys.msgTitle")}>
              <Input value={String(content.title ?? "")} onChange={(e) => update({ content: { ...content, title: e.target.value } })} />
            </Form.Item>
          )}
          <Form.Item label={t("journeys.text")} required extra={t("journeys.textHelp")}>
            <Input.TextArea
              rows={4}
              value={String(content.text ?? "")}
              onChange={(e) => update({ content: { ...content, text: e.target.value } })}
              data-testid="form-content-text"
            />
          </Form.Item>
          <Form.Item label={t("journeys.link")}>
            <Input value={String(content.link ?? "")} onChange={(e) => update({ content: { ...content, link: e.target.value || undefined } })} />
          </Form.Item>
        </>
      )}
      <Form.Item label={t("journeys.productRisk")}>
        <Select
          allowClear
          value={(node.product_risk_level as number | undefined) ?? undefined}
          onChange={(v: number | undefined) => update({ product_risk_level: v ?? null })}
          options={[1, 2, 3, 4, 5].map((n) => ({ value: n, label: `R${n}` }))}
        />
      </Form.Item>
    </>
  );
}

function Ports({
  items,
  onChange,
  kind,
}: {
  items: { port: string; weight?: number; values?: string[] }[];
  onChange: (items: { port: string; weight?: number; values?: string[] }[], renamed?: [string, string]) => void;
  kind: "split" | "tag";
}) {
  const { t } = useI18n();
  return (
    <div>
      {items.map((item, i) => (
        <Space key={i} style={{ marginBottom: 4 }} wrap>
          <Input
            value={item.port}
            style={{ width: 110 }}
            onChange={(e) => {
              const port = e.target.value.replace(/[^A-Za-z0-9_-]/g, "_");
              onChange(items.map((x, j) => (j === i ? { ...x, port } : x)), [item.port, port]);
            }}
            data-testid={`form-port-${i}`}
          />
          {kind === "split" ? (
            <InputNumber
              min={0.01}
              max={100}
              value={item.weight}
              addonAfter="%"
              style={{ width: 120 }}
              onChange={(w) => onChange(items.map((x, j) => (j === i ? { ...x, weight: Number(w ?? 0) } : x)))}
              data-testid={`form-weight-${i}`}
            />
          ) : (
            <Select
              mode="tags"
              style={{ width: 180 }}
              value={item.values ?? []}
              placeholder={t("journeys.tagValues")}
              onChange={(values: string[]) => onChange(items.map((x, j) => (j === i ? { ...x, values } : x)))}
            />
          )}
          <Button size="small" icon={<DeleteOutlined />} disabled={items.length <= 1} onClick={() => onChange(items.filter((_, j) => j !== i))} />
        </Space>
      ))}
      <Button
        size="small"
        icon={<PlusOutlined />}
        onClick={() =>
          onChange([...items, kind === "split" ? { port: `branch_${items.length + 1}`, weight: 10 } : { port: `case_${items.length + 1}`, values: [] }])
        }
      >
        {kind === "split" ? t("journeys.addBranch") : t("journeys.addCase")}
      </Button>
      {kind === "split" && <Typography.Paragraph type="secondary">{t("journeys.controlHelp")}</Typography.Paragraph>}
    </div>
  );
}

export function NodeForm({
  node,
  onChange,
  onPortRenamed,
  pickers,
}: {
  node: JourneyNode;
  onChange: (node: JourneyNode) => void;
  onPortRenamed: (from: string, to: string) => void;
  pickers: Pickers;
}) {
  const { t } = useI18n();
  const update: Update = (patch) => onChange({ ...node, ...patch });
  const n = node as Record<string, unknown>;
  const segmentSelect = (
    <Form.Item label={t("journeys.segment")} required>
      <Select
        showSearch
        optionFilterProp="label"
        value={(n.segment_id as number | undefined) ?? undefined}
        onChange={(id: number) => update({ segment_id: id })}
        options={pickers.segments.map((s) => ({ value: s.id, label: `#${s.id} ${s.name}` }))}
        data-testid="form-segment"
      />
    </Form.Item>
  );
  const eventItem = (field: string, label: MessageKey, testId: string) => (
    <Form.Item label={t(label)} required>
      <EventInput value={n[field]} onChange={(v) => update({ [field]: v })} schema={pickers.schema} testId={testId} />
    </Form.Item>
  );
  const filters = (
    <Form.Item label={t("journeys.filters")}>
      <Filters value={n.filters} onChange={(f) => update({ filters: f })} />
    </Form.Item>
  );
  const tagSelect = (
    <Select
      showSearch
      value={(n.tag as string) || undefined}
      onChange={(tag: string) => update({ tag })}
      options={pickers.tags.map((tag) => ({ value: tag.name, label: `${tag.display_name} (${tag.name})` }))}
      data-testid="form-tag"
    />
  );

  let body: React.ReactNode = null;
  switch (node.type) {
    case "entry_segment":
      body = (
        <>
          {segmentSelect}
          <Form.Item label={t("journeys.entryMode")}>
            <Radio.Group
              value={n.mode ?? "once"}
              onChange={(e) => update({ mode: e.target.value, cron: e.target.value === "once" ? undefined : (n.cron ?? "0 9 * * 1-5") })}
              options={[
                { value: "once", label: t("journeys.once") },
                { value: "recurring", label: t("journeys.recurring") },
              ]}
            />
          </Form.Item>
          {n.mode === "recurring" && (
            <Form.Item label="Cron" extra={t("journeys.cronHelp")}>
              <Input value={String(n.cron ?? "")} onChange={(e) => update({ cron: e.target.value })} />
            </Form.Item>
          )}
        </>
      );
      break;
    case "entry_segment_change":
      body = (
        <>
          {segmentSelect}
          <Form.Item label={t("journeys.change")}>
            <Radio.Group
              value={n.change ?? "enter"}
              onChange={(e) => update({ change: e.target.value })}
              options={[
                { value: "enter", label: t("journeys.changeEnter") },
                { value: "leave", label: t("journeys.changeLeave") },
              ]}
            />
          </Form.Item>
        </>
      );
      break;
    case "entry_event":
      body = (
        <>
          {eventItem("event", "journeys.event", "form-event")}
          {filters}
        </>
      );
      break;
    case "entry_not_done":
      body = (
        <>
          {eventItem("event", "journeys.didEvent", "form-event")}
          {filters}
          {eventItem("not_event", "journeys.notEvent", "form-not-event")}
          <Form.Item label={t("journeys.within")} required>
            <Duration value={n.within_seconds as number} onChange={(s) => update({ within_seconds: s })} />
          </Form.Item>
        </>
      );
      break;
    case "entry_api":
      body = <Typography.Paragraph type="secondary">{t("journeys.apiEntryHelp")}</Typography.Paragraph>;
      break;
    case "delay": {
      const mode = String(n.mode ?? "duration");
      body = (
        <>
          <Form.Item label={t("journeys.delayMode")}>
            <Select
              value={mode}
              onChange={(m: string) => update({ mode: m })}
              options={["duration", "until_time", "until_date_property", "trading_days"].map((m) => ({ value: m, label: t(`journeys.delay.${m}` as MessageKey) }))}
              data-testid="form-delay-mode"
            />
          </Form.Item>
          {mode === "duration" && (
            <Form.Item label={t("journeys.wait")} required>
              <Duration value={n.seconds as number} onChange={(s) => update({ seconds: s })} testId="form-delay-seconds" />
            </Form.Item>
          )}
          {mode === "until_date_property" && (
            <>
              <Form.Item label={t("journeys.dateProperty")} required>
                <AutoComplete
                  value={String(n.property ?? "")}
                  onChange={(v: string) => update({ property: v })}
                  options={pickers.schema.profile_properties.filter((p) => p.type === "date" || p.type === "datetime").map((p) => ({ value: p.name }))}
                />
              </Form.Item>
              <Form.Item label={t("journeys.offsetDays")}>
                <InputNumber value={Number(n.offset_seconds ?? 0) / 86400} onChange={(d) => update({ offset_seconds: Math.round(Number(d ?? 0) * 86400) })} />
              </Form.Item>
            </>
          )}
          {mode === "trading_days" && (
            <Form.Item label={t("journeys.tradingDays")} required>
              <InputNumber min={1} max={250} value={n.days as number | undefined} onChange={(d) => update({ days: d })} data-testid="form-delay-days" />
            </Form.Item>
          )}
          {(mode === "until_time" || mode === "trading_days") && (
            <Form.Item label={t("journeys.timeOfDay")} required={mode === "until_time"} extra={t("journeys.shanghaiTime")}>
              <Input placeholder="09:30" value={String(n.time ?? "")} onChange={(e) => update({ time: e.target.value || undefined })} style={{ width: 100 }} />
            </Form.Item>
          )}
        </>
      );
      break;
    }
    case "wait_event":
      body = (
        <>
          {eventItem("event", "journeys.event", "form-event")}
          {filters}
          <Form.Item label={t("journeys.timeout")} required>
            <Duration value={n.timeout_seconds as number} onChange={(s) => update({ timeout_seconds: s })} />
          </Form.Item>
        </>
      );
      break;
    case "goal":
      body = (
        <>
          {eventItem("event", "journeys.goalEvent", "form-event")}
          {filters}
          <Form.Item label={t("journeys.window")} required>
            <Duration value={n.window_seconds as number} onChange={(s) => update({ window_seconds: s })} />
          </Form.Item>
        </>
      );
      break;
    case "condition":
      body = <ConditionForm node={node} update={update} schema={pickers.schema} />;
      break;
    case "split":
      body = (
        <Form.Item label={t("journeys.branches")}>
          <Ports
            kind="split"
            items={(n.branches as { port: string; weight: number }[]) ?? []}
            onChange={(branches, renamed) => {
              update({ branches });
              if (renamed) onPortRenamed(renamed[0], renamed[1]);
            }}
          />
        </Form.Item>
      );
      break;
    case "tag_branch":
      body = (
        <>
          <Form.Item label={t("journeys.tag")} required>
            {tagSelect}
          </Form.Item>
          <Form.Item label={t("journeys.cases")} extra={t("journeys.elseHelp")}>
            <Ports
              kind="tag"
              items={(n.cases as { port: string; values: string[] }[]) ?? []}
              onChange={(cases, renamed) => {
                update({ cases });
                if (renamed) onPortRenamed(renamed[0], renamed[1]);
              }}
            />
          </Form.Item>
        </>
      );
      break;
    case "send":
      body = <SendForm node={node} update={update} pickers={pickers} />;
      break;
    case "webhook": {
      const webhook = (n.webhook ?? {}) as Record<string, unknown>;
      body = (
        <>
          <Form.Item label="URL" required>
            <Input value={String(webhook.url ?? "")} onChange={(e) => update({ webhook: { ...webhook, url: e.target.value } })} data-testid="form-webhook-url" />
          </Form.Item>
          <Form.Item label={t("journeys.secret")} required>
            <Input.Password value={String(webhook.secret ?? "")} onChange={(e) => update({ webhook: { ...webhook, secret: e.target.value } })} />
          </Form.Item>
        </>
      );
      break;
    }
    case "recommend":
      body = (
        <>
          <Form.Item label={t("journeys.scene")} required>
            <Select
              value={(n.scene as string) || undefined}
              onChange={(scene: string) => update({ scene })}
              options={pickers.scenes.map((s) => ({ value: s.name, label: s.name }))}
              data-testid="form-scene"
            />
          </Form.Item>
          <Form.Item label={t("journeys.howMany")}>
            <InputNumber min={1} max={20} value={n.n as number} onChange={(v) => update({ n: v ?? 3 })} />
          </Form.Item>
        </>
      );
      break;
    case "set_tag":
      body = (
        <>
          <Form.Item label={t("journeys.tag")} required>
            <AutoComplete
              value={String(n.tag ?? "")}
              onChange={(tag: string) => update({ tag })}
              options={pickers.tags.map((tag) => ({ value: tag.name, label: `${tag.display_name} (${tag.name})` }))}
              data-testid="form-tag"
            />
          </Form.Item>
          <Form.Item label={t("rules.value")} required>
            <Input value={String(n.value ?? "")} onChange={(e) => update({ value: e.target.value })} />
          </Form.Item>
        </>
      );
      break;
    case "set_property":
      body = (
        <>
          <Form.Item label={t("rules.property")} required>
            <AutoComplete
              value={String(n.property ?? "")}
              onChange={(property: string) => update({ property })}
              options={pickers.schema.profile_properties.map((p) => ({ value: p.name }))}
            />
          </Form.Item>
          <Form.Item label={t("rules.value")} required>
            <Input value={n.value === undefined ? "" : String(n.value)} onChange={(e) => update({ value: parseValue(e.target.value, "eq") })} />
          </Form.Item>
        </>
      );
      break;
    case "advisor_task":
      body = (
        <>
          <Form.Item label={t("journeys.taskTitle")} required>
            <Input value={String(n.title ?? "")} onChange={(e) => update({ title: e.target.value })} data-testid="form-task-title" />
          </Form.Item>
          <Form.Item label={t("journeys.script")}>
            <Input.TextArea rows={4} value={String(n.script ?? "")} onChange={(e) => update({ script: e.target.value })} />
          </Form.Item>
          <Form.Item label={t("journeys.dueDays")}>
            <InputNumber min={0} max={90} value={n.due_days as number} onChange={(v) => update({ due_days: v ?? 3 })} />
          </Form.Item>
          <Form.Item label={t("journeys.productRisk")}>
            <Select
              allowClear
              value={(n.product_risk_level as number | undefined) ?? undefined}
              onChange={(v: number | undefined) => update({ product_risk_level: v ?? null })}
              options={[1, 2, 3, 4, 5].map((x) => ({ value: x, label: `R${x}` }))}
            />
          </Form.Item>
        </>
      );
      break;
    default:
      body = null;
  }

  return (
    <Form layout="vertical" data-testid={`form-${node.type}`}>
      <Form.Item label={t("journeys.nodeLabel")}>
        <Input value={String(node.label ?? "")} maxLength={200} onChange={(e) => update({ label: e.target.value })} data-testid="form-label" />
      </Form.Item>
      {body}
    </Form>
  );
}
