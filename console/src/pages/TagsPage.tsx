import { PlusOutlined } from "@ant-design/icons";
import { Alert, Button, Card, Col, Drawer, Input, message, Row, Space, Statistic, Table, Tag as AntTag, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { RuleBuilder } from "../components/RuleBuilder";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime } from "../lib/format";
import { useI18n } from "../lib/i18n";
import { addChild, emptyGroup, newProfileCondition, tryRule, type ConditionGroup } from "../lib/rules";
import { propertyTypes, useSchema } from "../lib/schema";
import type { Tag } from "../lib/types";
import { useApi } from "../lib/useApi";

interface ValueCount {
  value: string | null;
  users: number;
}

interface TagPreview {
  total: number;
  values: ValueCount[];
  warnings: string[];
}

interface TagDistribution {
  tag: string;
  day: string | null;
  total: number;
  values: ValueCount[];
}

interface EditedValue {
  id: number;
  value: string;
  tree: ConditionGroup;
}

let valueIds = 0;
function newValue(): EditedValue {
  const root = emptyGroup("and");
  valueIds += 1;
  return { id: valueIds, value: "", tree: addChild(root, root.id, newProfileCondition("")) };
}

/** The spec of a rule tag from the edited values, or the first problem. */
function ruleSpec(values: EditedValue[], types: Record<string, string>): { spec: Record<string, unknown> | null; error: string | null } {
  const out: { value: string; rule: Record<string, unknown> }[] = [];
  for (const [i, edited] of values.entries()) {
    if (!edited.value.trim()) return { spec: null, error: `values[${i}]: name the value` };
    const compiled = tryRule(edited.tree, types);
    if (!compiled.rule) return { spec: null, error: `values[${i}].${compiled.error}` };
    out.push({ value: edited.value.trim(), rule: compiled.rule });
  }
  return { spec: { values: out }, error: null };
}

function Counts({ values, total, testId }: { values: ValueCount[]; total: number; testId: string }) {
  return (
    <Table<ValueCount>
      size="small"
      pagination={false}
      rowKey={(v) => v.value ?? "∅"}
      dataSource={values}
      data-testid={testId}
      columns={[
        { title: "value", dataIndex: "value", render: (v: string | null) => v ?? "—" },
        { title: "users", dataIndex: "users" },
        { title: "%", render: (_, v) => (total ? `${((v.users / total) * 100).toFixed(1)}%` : "—") },
      ]}
    />
  );
}

function RuleTagEditor({ onSaved }: { onSaved: () => void }) {
  const { t } = useI18n();
  const { schema } = useSchema();
  const types = useMemo(() => propertyTypes(schema), [schema]);
  const [name, setName] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [values, setValues] = useState<EditedValue[]>(() => [newValue()]);
  const [preview, setPreview] = useState<{ result: TagPreview | null; error: unknown; busy: boolean }>({ result: null, error: null, busy: false });
  const [saving, setSaving] = useState(false);
  const [messageApi, holder] = message.useMessage();
  const compiled = ruleSpec(values, types);
  const key = compiled.spec ? JSON.stringify(compiled.spec) : "";

  useEffect(() => {
    if (!key) {
      setPreview({ result: null, error: null, busy: false });
      return;
    }
    const controller = new AbortController();
    setPreview((p) => ({ ...p, busy: true }));
    const timer = window.setTimeout(() => {
      api
        .post<TagPreview>("/api/v1/tags/preview", { kind: "rule", spec: JSON.parse(key) as unknown }, undefined, controller.signal)
        .then((result) => setPreview({ result, error: null, busy: false }))
        .catch((error: unknown) => {
          if (!controller.signal.aborted) setPreview({ result: null, error, busy: false });
        });
    }, 400);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [key]);

  const save = async () => {
    if (!compiled.spec) return;
    setSaving(true);
    try {
      await api.post<Tag>("/api/v1/tags", { name: name.trim(), display_name: displayName.trim(), kind: "rule", spec: compiled.spec, schedule: "daily" });
      void messageApi.success(t("tags.saved"));
      setName("");
      setDisplayName("");
      setValues([newValue()]);
      onSaved();
    } catch (error) {
      void messageApi.error(errorText(error));
    } finally {
      setSaving(false);
    }
  };

  const update = (id: number, change: Partial<EditedValue>) => setValues((all) => all.map((v) => (v.id === id ? { ...v, ...change } : v)));

  return (
    <Card title={t("tags.new")} style={{ marginBottom: 16 }} data-testid="tag-editor">
      {holder}
      <Row gutter={16}>
        <Col xs={24} xl={18}>
          <Space style={{ marginBottom: 12 }} wrap>
            <Input addonBefore={t("tags.name")} placeholder="wealth_level" value={name} onChange={(e) => setName(e.target.value)} data-testid="tag-name" />
            <Input addonBefore={t("tags.displayName")} value={displayName} onChange={(e) => setDisplayName(e.target.value)} data-testid="tag-display-name" />
          </Space>
          <Typography.Paragraph type="secondary">{t("tags.firstMatch")}</Typography.Paragraph>
          {values.map((edited, index) => (
            <Card
              key={edited.id}
              size="small"
              style={{ marginBottom: 8 }}
              title={
                <Input
                  style={{ width: 240 }}
                  addonBefore={`${t("tags.value")} ${index + 1}`}
                  value={edited.value}
                  onChange={(e) => update(edited.id, { value: e.target.value })}
                  data-testid={`tag-value-${index}`}
                />
              }
              extra={
                values.length > 1 && (
                  <Button size="small" type="text" danger onClick={() => setValues((all) => all.filter((v) => v.id !== edited.id))}>
                    {t("rules.remove")}
                  </Button>
                )
              }
            >
              <div data-testid={`tag-rule-${index}`}>
                <RuleBuilder value={edited.tree} onChange={(tree) => update(edited.id, { tree })} schema={schema} />
              </div>
            </Card>
          ))}
          <Button icon={<PlusOutlined />} onClick={() => setValues((all) => [...all, newValue()])} disabled={values.length >= 24} data-testid="tag-add-value">
            {t("tags.addValue")}
          </Button>
          {compiled.error && (
            <Typography.Text type="secondary" style={{ display: "block", marginTop: 8 }}>
              {t("segments.ruleInvalid", { reason: compiled.error })}
            </Typography.Text>
          )}
        </Col>
        <Col xs={24} xl={6}>
          <Card size="small">
            <Statistic title={t("tags.previewTotal")} value={preview.result ? preview.result.total : "—"} loading={preview.busy} data-testid="tag-preview-total" />
            {preview.result && <Counts values={preview.result.values} total={preview.result.total} testId="tag-preview-values" />}
            {preview.result?.warnings.map((w) => <Alert key={w} type="warning" title={w} style={{ marginTop: 8 }} />)}
            <ApiAlert error={preview.error} path="/api/v1/tags/preview" />
          </Card>
          <Button
            type="primary"
            style={{ marginTop: 16 }}
            disabled={!compiled.spec || !/^[a-z][a-z0-9_]{0,62}$/.test(name.trim())}
            loading={saving}
            onClick={() => void save()}
            data-testid="tag-save"
          >
            {t("common.save")}
          </Button>
        </Col>
      </Row>
    </Card>
  );
}

function TagDetail({ tag, onClose, onRan }: { tag: Tag | null; onClose: () => void; onRan: () => void }) {
  const { t } = useI18n();
  const { can } = useAuth();
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<unknown>(null);
  const distribution = useApi(
    (signal) => (tag ? api.get<TagDistribution>(`/api/v1/tags/${tag.id}/distribution`, undefined, signal) : Promise.resolve(null)),
    [tag?.id],
  );
  const run = () => {
    if (!tag) return;
    setRunning(true);
    setRunError(null);
    api
      .post(`/api/v1/tags/${tag.id}/run`)
      .then(() => {
        distribution.reload();
        onRan();
      })
      .catch(setRunError)
      .finally(() => setRunning(false));
  };
  return (
    <Drawer open={tag !== null} onClose={onClose} size="large" title={tag ? tag.display_name || tag.name : ""}>
      {tag && (
        <>
          <Space style={{ marginBottom: 16 }}>
            <AntTag>{tag.kind}</AntTag>
            <span>
              {t("tags.lastRun")}: {formatTime(tag.last_run_at)}
            </span>
            {can("tags:write") && (
              <Button onClick={run} loading={running} data-testid="tag-run">
                {t("common.run")}
              </Button>
            )}
          </Space>
          <ApiAlert error={runError} />
          <ApiAlert error={distribution.error} path={`/api/v1/tags/${tag.id}/distribution`} />
          {distribution.data && (
            <>
              <Typography.Text type="secondary">
                {t("tags.distribution")} {distribution.data.day ?? "—"} · {distribution.data.total}
              </Typography.Text>
              <Counts values={distribution.data.values} total={distribution.data.total} testId="tag-distribution" />
            </>
          )}
        </>
      )}
    </Drawer>
  );
}

export default function TagsPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const [selected, setSelected] = useState<Tag | null>(null);
  const tags = useApi((signal) => api.get<Tag[]>("/api/v1/tags", undefined, signal), []);
  return (
    <div data-testid="tags-page">
      <Typography.Title level={3}>{t("tags.title")}</Typography.Title>
      {can("tags:write") && <RuleTagEditor onSaved={tags.reload} />}
      <ApiAlert error={tags.error} path="/api/v1/tags" />
      <Table<Tag>
        rowKey="id"
        loading={tags.loading}
        dataSource={tags.data ?? []}
        locale={{ emptyText: t("tags.empty") }}
        data-testid="tags-table"
        onRow={(tag) => ({ onClick: () => setSelected(tag), style: { cursor: "pointer" } })}
        columns={[
          { title: t("common.name"), render: (_, tag) => (tag.display_name ? `${tag.display_name} (${tag.name})` : tag.name) },
          { title: t("tags.kind"), dataIndex: "kind", render: (kind: string) => <AntTag>{kind}</AntTag> },
          { title: t("segments.schedule"), dataIndex: "schedule" },
          { title: t("tags.enabled"), dataIndex: "enabled", render: (v: boolean) => (v ? "✓" : "✗") },
          { title: t("tags.lastRun"), dataIndex: "last_run_at", render: (v: string | null) => formatTime(v) },
          { title: t("common.description"), dataIndex: "description", ellipsis: true },
        ]}
      />
      <TagDetail
        tag={tags.data?.find((tag) => tag.id === selected?.id) ?? selected}
        onClose={() => setSelected(null)}
        onRan={tags.reload}
      />
    </div>
  );
}
