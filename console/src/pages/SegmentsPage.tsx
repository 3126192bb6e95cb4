import { Alert, Button, Card, Col, Form, Input, message, Row, Space, Statistic, Table, Tag, Typography } from "antd";
import { useEffect, useMemo, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { RuleBuilder } from "../components/RuleBuilder";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime } from "../lib/format";
import { useI18n } from "../lib/i18n";
import { addChild, emptyGroup, fromRule, newProfileCondition, tryRule, type ConditionGroup } from "../lib/rules";
import { propertyTypes, useSchema } from "../lib/schema";
import type { PreviewOut, Segment } from "../lib/types";
import { useApi } from "../lib/useApi";

const PREVIEW_DELAY_MS = 400;

function starterTree(): ConditionGroup {
  const root = emptyGroup("and");
  return addChild(root, root.id, newProfileCondition(""));
}

/** The live size of the rule being edited: POST /api/v1/segments/preview, debounced. */
function useLiveCount(rule: Record<string, unknown> | null) {
  const [state, setState] = useState<{ preview: PreviewOut | null; error: unknown; counting: boolean }>({
    preview: null,
    error: null,
    counting: false,
  });
  const key = rule ? JSON.stringify(rule) : "";
  useEffect(() => {
    if (!key) {
      setState({ preview: null, error: null, counting: false });
      return;
    }
    const controller = new AbortController();
    setState((s) => ({ ...s, counting: true }));
    const timer = window.setTimeout(() => {
      api
        .post<PreviewOut>("/api/v1/segments/preview", { rule: JSON.parse(key) as unknown, sample: 10 }, undefined, controller.signal)
        .then((preview) => setState({ preview, error: null, counting: false }))
        .catch((error: unknown) => {
          if (!controller.signal.aborted) setState({ preview: null, error, counting: false });
        });
    }, PREVIEW_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [key]);
  return state;
}

function Editor({ editing, onSaved, onCancel }: { editing: Segment | null; onSaved: () => void; onCancel: () => void }) {
  const { t } = useI18n();
  const { can } = useAuth();
  const { schema } = useSchema();
  const types = useMemo(() => propertyTypes(schema), [schema]);
  const [tree, setTree] = useState<ConditionGroup>(starterTree);
  const [name, setName] = useState("");
  const [saving, setSaving] = useState(false);
  const [messageApi, holder] = message.useMessage();
  useEffect(() => {
    if (!editing) return;
    setTree(fromRule(editing.rule) ?? starterTree());
    setName(editing.name);
  }, [editing]);
  const compiled = tryRule(tree, types);
  const live = useLiveCount(compiled.rule);

  const save = async () => {
    if (!compiled.rule) return;
    setSaving(true);
    try {
      if (editing) {
        await api.patch<Segment>(`/api/v1/segments/${editing.id}`, { name: name.trim(), rule: compiled.rule });
      } else {
        await api.post<Segment>("/api/v1/segments", { name: name.trim(), rule: compiled.rule, source: "rule", mode: "dynamic" });
      }
      void messageApi.success(t("segments.saved"));
      setTree(starterTree());
      setName("");
      onSaved();
    } catch (error) {
      void messageApi.error(errorText(error));
    } finally {
      setSaving(false);
    }
  };

  return (
    <Card
      title={editing ? `${t("segments.edit")} #${editing.id}` : t("segments.new")}
      extra={
        editing && (
          <Button
            size="small"
            onClick={() => {
              setTree(starterTree());
              setName("");
              onCancel();
            }}
          >
            {t("common.cancel")}
          </Button>
        )
      }
      style={{ marginBottom: 16 }}
      data-testid="segment-editor"
    >
      {holder}
      <Row gutter={16}>
        <Col xs={24} xl={18}>
          <RuleBuilder value={tree} onChange={setTree} schema={schema} />
          {compiled.error && (
            <Typography.Text type="secondary" style={{ display: "block", marginTop: 8 }} data-testid="rule-incomplete">
              {t("segments.ruleInvalid", { reason: compiled.error })}
            </Typography.Text>
          )}
        </Col>
        <Col xs={24} xl={6}>
          <Card size="small">
            <Statistic
              title={t("segments.liveCount")}
              value={live.preview ? live.preview.count : "—"}
              loading={live.counting}
              data-testid="segment-live-count"
            />
            {live.preview && (
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {t("segments.sample")}: <span data-testid="segment-sample">{live.preview.sample_user_ids.slice(0, 5).join(", ") || "—"}</span>
                <br />
                {live.preview.elapsed_ms.toFixed(0)} ms
              </Typography.Text>
            )}
            {live.preview?.warnings.map((w) => <Alert key={w} type="warning" title={w} style={{ marginTop: 8 }} />)}
            <ApiAlert error={live.error} path="/api/v1/segments/preview" />
          </Card>
          {can("segments:write") && (
            <Form layout="vertical" style={{ marginTop: 16 }} onFinish={() => void save()}>
              <Form.Item label={t("common.name")} required>
                <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} data-testid="segment-name" />
              </Form.Item>
              <Button type="primary" htmlType="submit" disabled={!compiled.rule || !name.trim()} loading={saving} data-testid="segment-save">
                {t("common.save")}
              </Button>
            </Form>
          )}
        </Col>
      </Row>
    </Card>
  );
}

export default function SegmentsPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const [editing, setEditing] = useState<Segment | null>(null);
  const segments = useApi((signal) => api.get<Segment[]>("/api/v1/segments", undefined, signal), []);
  return (
    <div data-testid="segments-page">
      <Typography.Title level={3}>{t("segments.title")}</Typography.Title>
      <Editor
        editing={editing}
        onCancel={() => setEditing(null)}
        onSaved={() => {
          setEditing(null);
          segments.reload();
        }}
      />
      <ApiAlert error={segments.error} path="/api/v1/segments" />
      <Table<Segment>
        rowKey="id"
        loading={segments.loading}
        dataSource={segments.data ?? []}
        data-testid="segments-table"
        locale={{ emptyText: t("segments.empty") }}
        columns={[
          { title: "ID", dataIndex: "id", width: 70 },
          { title: t("common.name"), dataIndex: "name" },
          { title: t("segments.size"), dataIndex: "size", render: (v: number | null) => (v === null ? "—" : v.toLocaleString()) },
          {
            title: t("segments.mode"),
            render: (_, s) => (
              <Space>
                <Tag>{s.source}</Tag>
                <Tag color={s.mode === "dynamic" ? "green" : "default"}>{s.mode}</Tag>
              </Space>
            ),
          },
          { title: t("segments.schedule"), dataIndex: "schedule" },
          { title: t("segments.refreshedAt"), dataIndex: "refreshed_at", render: (v: string | null) => formatTime(v) },
          { title: t("segments.createdBy"), dataIndex: "created_by" },
          {
            title: "",
            render: (_, s) =>
              can("segments:write") && s.rule && fromRule(s.rule) ? (
                <Button size="small" type="link" onClick={() => setEditing(s)}>
                  {t("segments.edit")}
                </Button>
              ) : null,
          },
        ]}
      />
    </div>
  );
}
