// Playbooks gallery: ready scenarios (GET /api/v1/playbooks), a parameters form from each one's
// JSON schema, preview (what would be created) and apply (links to what was created).
import { App as AntApp, Alert, Button, Card, Checkbox, Col, Descriptions, Drawer, Form, Input, InputNumber, List, Row, Select, Space, Tag, Typography } from "antd";
import { useState } from "react";
import { Link } from "react-router";
import { ApiAlert } from "../components/ApiAlert";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { useI18n, type MessageKey } from "../lib/i18n";
import { useApi } from "../lib/useApi";

interface PlaybookSummary {
  name: string;
  title_zh: string;
  title_en: string;
  description: string;
  creates: Record<string, number>;
}

interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
}

interface PlaybookOut extends PlaybookSummary {
  parameters: JsonSchema;
}

interface PreviewOut {
  suffix: number;
  tags: { name: string; display_name?: string }[];
  segment: { segment: { name: string }; estimated_size: number | null; warnings: string[] };
  content: { key: string; content: { name: string; channel?: string | null; body: string }; findings: unknown[] }[];
  journey: { name?: string; nodes?: unknown[] };
  problems: { code: string; message: string; node?: string | null }[];
}

interface AppliedOut {
  tag_ids: number[];
  segment_id: number;
  content_ids: Record<string, number>;
  journey_id: number;
  journey_status: string;
}

function typeOf(schema: JsonSchema): string {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type) return type;
  const option = schema.anyOf?.find((s) => s.type !== "null");
  return option ? typeOf(option) : "string";
}

/** One form field per schema property (string, number/integer, boolean, enum, string array). */
function SchemaField({ name, schema, required }: { name: string; schema: JsonSchema; required: boolean }) {
  const type = typeOf(schema);
  const label = schema.title ?? name;
  const common = { name, label, tooltip: schema.description, rules: required ? [{ required: true }] : undefined };
  if (schema.enum) {
    return (
      <Form.Item {...common}>
        <Select options={schema.enum.map((v) => ({ value: v as string, label: String(v) }))} data-testid={`param-${name}`} />
      </Form.Item>
    );
  }
  if (type === "boolean") {
    return (
      <Form.Item {...common} valuePropName="checked">
        <Checkbox data-testid={`param-${name}`} />
      </Form.Item>
    );
  }
  if (type === "integer" || type === "number") {
    return (
      <Form.Item {...common}>
        <InputNumber min={schema.minimum} max={schema.maximum} precision={type === "integer" ? 0 : undefined} style={{ width: 200 }} data-testid={`param-${name}`} />
      </Form.Item>
    );
  }
  if (type === "array") {
    return (
      <Form.Item {...common}>
        <Select mode="tags" data-testid={`param-${name}`} />
      </Form.Item>
    );
  }
  return (
    <Form.Item {...common}>
      <Input data-testid={`param-${name}`} />
    </Form.Item>
  );
}

function defaults(schema: JsonSchema): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, v.default]));
}

function Playbook({ name }: { name: string }) {
  const { t } = useI18n();
  const { can } = useAuth();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<Record<string, unknown>>();
  const playbook = useApi((s) => api.get<PlaybookOut>(`/api/v1/playbooks/${name}`, undefined, s), [name]);
  const [preview, setPreview] = useState<PreviewOut | null>(null);
  const [applied, setApplied] = useState<AppliedOut | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const canApply = can("journeys:write") && can("content:write");

  const run = async (what: "preview" | "apply") => {
    setBusy(what);
    setError(null);
    try {
      const parameters = Object.fromEntries(Object.entries(form.getFieldsValue()).filter(([, v]) => v !== undefined && v !== null && v !== ""));
      if (what === "preview") setPreview(await api.post<PreviewOut>(`/api/v1/playbooks/${name}/preview`, { parameters }));
      else {
        setApplied(await api.post<AppliedOut>(`/api/v1/playbooks/${name}/apply`, { parameters }));
        void message.success(t("playbooks.applied"));
      }
    } catch (e) {
      setError(e);
      if (what === "apply") void message.error(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  if (playbook.error) return <ApiAlert error={playbook.error} path={`/api/v1/playbooks/${name}`} />;
  if (!playbook.data) return null;
  const schema = playbook.data.parameters;
  return (
    <div data-testid="playbook-detail">
      <Typography.Paragraph>{playbook.data.description}</Typography.Paragraph>
      <Form form={form} layout="vertical" initialValues={defaults(schema)}>
        {Object.entries(schema.properties ?? {}).map(([key, property]) => (
          <SchemaField key={key} name={key} schema={property} required={(schema.required ?? []).includes(key)} />
        ))}
      </Form>
      <Space>
        <Button onClick={() => void run("preview")} loading={busy === "preview"} data-testid="playbook-preview">
          {t("playbooks.preview")}
        </Button>
        {canApply && (
          <Button type="primary" onClick={() => void run("apply")} loading={busy === "apply"} data-testid="playbook-apply">
            {t("playbooks.apply")}
          </Button>
        )}
      </Space>
      <div style={{ marginTop: 12 }}>
        <ApiAlert error={error} />
      </div>
      {preview && (
        <Card size="small" title={t("playbooks.willCreate")} style={{ marginTop: 12 }} data-testid="playbook-preview-result">
          <Descriptions size="small" column={1}>
            <Descriptions.Item label={t("nav.tags")}>{preview.tags.map((x) => <Tag key={x.name}>{x.display_name ?? x.name}</Tag>)}</Descriptions.Item>
            <Descriptions.Item label={t("nav.segments")}>
              {preview.segment.segment.name} · {t("playbooks.estimated")}: {preview.segment.estimated_size ?? "—"}
            </Descriptions.Item>
            <Descriptions.Item label={t("nav.content")}>
              <List size="small" dataSource={preview.content} renderItem={(c) => <List.Item>{`${c.content.name}${c.content.channel ? ` (${c.content.channel})` : ""}: ${c.content.body.slice(0, 80)}`}</List.Item>} />
            </Descriptions.Item>
            <Descriptions.Item label={t("nav.journeys")}>
              {preview.journey.name ?? ""} · {t("playbooks.nodes", { n: preview.journey.nodes?.length ?? 0 })}
            </Descriptions.Item>
          </Descriptions>
          {preview.segment.warnings.map((w) => (
            <Alert key={w} type="warning" title={w} />
          ))}
          {preview.problems.map((p, i) => (
            <Alert key={i} type={p.code.startsWith("warn_") ? "warning" : "error"} title={p.message} />
          ))}
        </Card>
      )}
      {applied && (
        <Card size="small" title={t("playbooks.created")} style={{ marginTop: 12 }} data-testid="playbook-applied">
          <Space direction="vertical">
            <Link to={`/journeys/${applied.journey_id}`} data-testid="playbook-journey-link">
              {t("nav.journeys")} #{applied.journey_id} ({t(`journeys.status.${applied.journey_status}` as MessageKey) ?? applied.journey_status})
            </Link>
            <Link to="/segments">
              {t("nav.segments")} #{applied.segment_id}
            </Link>
            {Object.entries(applied.content_ids).map(([key, id]) => (
              <Link key={key} to={`/content?open=${id}`}>
                {t("nav.content")} #{id} ({key})
              </Link>
            ))}
            {applied.tag_ids.length > 0 && (
              <Link to="/tags">
                {t("nav.tags")} {applied.tag_ids.map((id) => `#${id}`).join(", ")}
              </Link>
            )}
            <Typography.Text type="secondary">{t("playbooks.nextSteps")}</Typography.Text>
          </Space>
        </Card>
      )}
    </div>
  );
}

export default function PlaybooksPage() {
  const { t, language } = useI18n();
  const gallery = useApi((s) => api.get<PlaybookSummary[]>("/api/v1/playbooks", undefined, s), []);
  const [open, setOpen] = useState<PlaybookSummary | null>(null);
  const title = (p: PlaybookSummary) => (language === "zh-CN" ? p.title_zh : p.title_en);
  return (
    <div data-testid="playbooks-page">
      <Typography.Title level={3}>{t("playbooks.title")}</Typography.Title>
      <ApiAlert error={gallery.error} path="/api/v1/playbooks" />
      <Row gutter={[16, 16]} data-testid="playbooks-gallery">
        {(gallery.loading ? [] : (gallery.data ?? [])).map((p) => (
          <Col xs={24} md={12} xl={8} key={p.name}>
            <Card
              hoverable
              title={title(p)}
              onClick={() => setOpen(p)}
              data-testid={`playbook-${p.name}`}
              extra={<Typography.Text type="secondary">{p.name}</Typography.Text>}
            >
              <Typography.Paragraph ellipsis={{ rows: 3 }}>{p.description}</Typography.Paragraph>
              {Object.entries(p.creates).map(([what, n]) => (
                <Tag key={what}>
                  {t(`playbooks.creates.${what}` as MessageKey) ?? what} × {n}
                </Tag>
              ))}
            </Card>
          </Col>
        ))}
      </Row>
      <Drawer open={open !== null} onClose={() => setOpen(null)} size={640} title={open ? title(open) : ""} destroyOnHidden>
        {open && <Playbook name={open.name} />}
      </Drawer>
    </div>
  );
}
