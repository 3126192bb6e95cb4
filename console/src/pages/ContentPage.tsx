// Content: the material library (search, tags), a template editor per channel with compliance
// findings highlighted, SMS length, preview for a chosen customer, versions and review, and the
// review queue for compliance staff (the API refuses an author approving their own version).
import { App as AntApp, Alert, Button, Card, Col, Drawer, Form, Input, InputNumber, Row, Select, Space, Table, Tabs, Tag, Timeline, Typography } from "antd";
import { useEffect, useMemo, useRef, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { highlight, previewRequest, smsCount, type Finding } from "../lib/content";
import { formatTime } from "../lib/format";
import { useI18n, type MessageKey } from "../lib/i18n";
import { useApi } from "../lib/useApi";

export interface ContentVersion {
  id: number;
  item_id: number;
  number: number;
  status: string;
  subject: string;
  body: string;
  fields: Record<string, unknown>;
  fallbacks: Record<string, string>;
  findings: Finding[];
  author: string;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_comment: string;
}

export interface ContentItem {
  id: number;
  name: string;
  kind: string;
  channel: string | null;
  tags: string[];
  created_by: string;
  approved_version_id: number | null;
  latest: ContentVersion;
  usage: string[];
}

interface Rendered {
  subject: string;
  body: string;
  html: string | null;
  fields: Record<string, string>;
  sms: { encoding: string; length: number; segments: number; per_segment: number } | null;
  /** Rendered from the editor's unsaved text rather than the saved version. */
  draft: boolean;
}

interface ReviewEvent {
  version_id: number;
  action: string;
  actor: string;
  comment: string;
  at: string;
}

const KINDS = ["text", "image", "link", "landing_page", "product_card", "template"];
const CHANNELS = ["sms", "wechat", "push", "email", "in_app"];
export const VERSION_COLORS: Record<string, string> = { draft: "default", submitted: "blue", approved: "green", rejected: "red" };
const CHECK_DELAY_MS = 400;

function statusTag(t: (k: MessageKey) => string, status: string) {
  return (
    <Tag color={VERSION_COLORS[status] ?? "default"} data-testid="content-status">
      {t(`content.status.${status}` as MessageKey) ?? status}
    </Tag>
  );
}

/** The text with the checker's findings marked (POST /api/v1/content/check, debounced). */
function useFindings(text: string, productCard: boolean) {
  const [findings, setFindings] = useState<Finding[]>([]);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!text.trim()) {
      setFindings([]);
      return;
    }
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      api
        .post<{ findings: Finding[] }>("/api/v1/content/check", { text, product_card: productCard }, undefined, controller.signal)
        .then((out) => {
          setFindings(out.findings);
          setError(null);
        })
        .catch((e: unknown) => !controller.signal.aborted && setError(e));
    }, CHECK_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [text, productCard]);
  return { findings, error };
}

/** The preview for a customer, once asked for: the text on screen (the unsaved draft when it
 *  differs from the saved version), rendered again as it is edited (debounced) so the preview
 *  never shows stale text. A new ``request`` (the preview button) renders at once. */
function usePreview(item: ContentItem, request: { userId: number | null } | null, subject: string, body: string) {
  const [rendered, setRendered] = useState<Rendered | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const shown = useRef<typeof request>(null);
  const { id, latest } = item;
  useEffect(() => {
    if (!request) return;
    const asked = shown.current !== request;
    shown.current = request;
    const controller = new AbortController();
    const timer = window.setTimeout(
      () => {
        setLoading(true);
        const saved = { subject: latest.subject, body: latest.body };
        api
          .post<Rendered>(`/api/v1/content/items/${id}/preview`, previewRequest(request.userId, saved, { subject, body }), undefined, controller.signal)
          .then((out) => {
            setRendered(out);
            setError(null);
          })
          .catch((e: unknown) => {
            if (controller.signal.aborted) return;
            setRendered(null);
            setError(e);
          })
          .finally(() => !controller.signal.aborted && setLoading(false));
      },
      asked ? 0 : CHECK_DELAY_MS,
    );
    return () => {
      window.clearTimeout(timer);
      controller.abort();
      setLoading(false);
    };
  }, [id, latest.subject, latest.body, request, subject, body]);
  return { rendered, error, loading };
}

export function Highlighted({ text, findings, testId }: { text: string; findings: Finding[]; testId?: string }) {
  const { t } = useI18n();
  return (
    <div data-testid={testId} style={{ whiteSpace: "pre-wrap", border: "1px solid #f0f0f0", borderRadius: 6, padding: 8, minHeight: 40, background: "#fafafa" }}>
      {highlight(text, findings).map((piece, i) =>
        piece.finding ? (
          <mark
            key={i}
            title={t(`content.rule.${piece.finding.rule}` as MessageKey) ?? piece.finding.rule}
            data-testid="finding"
            style={{ background: piece.finding.rule === "prohibited_claim" ? "#ffccc7" : "#fff1b8", padding: 0 }}
          >
            {piece.text}
          </mark>
        ) : (
          <span key={i}>{piece.text}</span>
        ),
      )}
    </div>
  );
}

function Editor({ item, onChanged }: { item: ContentItem; onChanged: (item: ContentItem) => void }) {
  const { t } = useI18n();
  const { can, me } = useAuth();
  const { message } = AntApp.useApp();
  const [subject, setSubject] = useState(item.latest.subject);
  const [body, setBody] = useState(item.latest.body);
  const [tags, setTags] = useState<string[]>(item.tags);
  const [userId, setUserId] = useState<number | null>(null);
  const [previewFor, setPreviewFor] = useState<{ userId: number | null } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const check = useFindings(body, item.kind === "product_card");
  const { rendered, error: previewError, loading: previewing } = usePreview(item, previewFor, subject, body);
  const history = useApi((s) => api.get<ReviewEvent[]>(`/api/v1/content/items/${item.id}/history`, undefined, s), [item.id, item.latest.id, item.latest.status]);
  const editable = can("content:write") && item.latest.status !== "submitted";
  const dirty = subject !== item.latest.subject || body !== item.latest.body || tags.join("\u0000") !== item.tags.join("\u0000");
  const sms = item.channel === "sms" ? smsCount(body) : null;

  const act = async (name: string, run: () => Promise<ContentItem>, done: MessageKey) => {
    setBusy(name);
    try {
      const out = await run();
      onChanged(out);
      void message.success(t(done));
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(null);
    }
  };

  return (
    <div data-testid="content-editor">
      <Space wrap style={{ marginBottom: 8 }}>
        <Tag>{item.kind}</Tag>
        {item.channel && <Tag color="geekblue">{t(`channel.${item.channel}` as MessageKey) ?? item.channel}</Tag>}
        <span>v{item.latest.number}</span>
        {statusTag(t, item.latest.status)}
        {item.approved_version_id && <Tag color="green">{t("content.hasApproved")}</Tag>}
        {item.usage.length > 0 && <span>{t("content.usedBy", { list: item.usage.join(", ") })}</span>}
      </Space>
      {item.latest.status === "rejected" && item.latest.decision_comment && (
        <Alert type="error" showIcon style={{ marginBottom: 8 }} title={t("content.rejectedBecause", { comment: item.latest.decision_comment, who: item.latest.decided_by ?? "" })} />
      )}
      <Form layout="vertical">
        {(item.channel === "email" || item.channel === "push" || item.channel === "wechat" || item.channel === "in_app") && (
          <Form.Item label={t("content.subject")}>
            <Input value={subject} disabled={!editable} onChange={(e) => setSubject(e.target.value)} data-testid="content-subject" />
          </Form.Item>
        )}
        <Form.Item label={t("content.body")} extra={t("content.bodyHelp")}>
          <Input.TextArea rows={6} value={body} disabled={!editable} onChange={(e) => setBody(e.target.value)} data-testid="content-body" />
        </Form.Item>
        <Form.Item label={t("content.tags")}>
          <Select mode="tags" value={tags} disabled={!editable} onChange={setTags} />
        </Form.Item>
      </Form>
      <Typography.Text strong>{t("content.findings", { n: check.findings.length })}</Typography.Text>
      <Highlighted text={body} findings={check.findings} testId="content-highlighted" />
      <ApiAlert error={check.error} path="/api/v1/content/check" />
      {sms && (
        <Typography.Paragraph type="secondary" data-testid="content-sms" style={{ marginTop: 4 }}>
          {t("content.smsCount", { length: sms.length, segments: sms.segments, per: sms.per_segment, encoding: sms.encoding })}
        </Typography.Paragraph>
      )}
      <Space wrap style={{ margin: "8px 0" }}>
        {can("content:write") && (
          <Button
            type="primary"
            disabled={!editable || !dirty}
            loading={busy === "save"}
            onClick={() => void act("save", () => api.patch<ContentItem>(`/api/v1/content/items/${item.id}`, { subject, body, tags }), "content.saved")}
            data-testid="content-save"
          >
            {t("common.save")}
          </Button>
        )}
        {can("content:write") && item.latest.status === "draft" && (
          <Button
            disabled={dirty}
            loading={busy === "submit"}
            onClick={() => void act("submit", () => api.post<ContentItem>(`/api/v1/content/items/${item.id}/submit`), "content.submitted")}
            data-testid="content-submit"
          >
            {t("content.submit")}
          </Button>
        )}
        {can("content:approve") && item.latest.status === "submitted" && <Decision item={item} onDecided={onChanged} />}
      </Space>
      {item.latest.status === "submitted" && me && item.latest.author === `user:${me.username}` && (
        <Typography.Paragraph type="secondary">{t("content.waitingReview")}</Typography.Paragraph>
      )}
      <Card size="small" title={t("content.preview")} style={{ marginTop: 8 }}>
        <Space wrap>
          <InputNumber min={1} placeholder={t("content.previewUser")} value={userId} onChange={(v) => setUserId(v === null ? null : Number(v))} style={{ width: 180 }} data-testid="content-preview-user" />
          <Button onClick={() => setPreviewFor({ userId })} loading={previewing} data-testid="content-preview">
            {t("content.previewRun")}
          </Button>
        </Space>
        <ApiAlert error={previewError} />
        {rendered && (
          <div data-testid="content-rendered" data-draft={rendered.draft} style={{ marginTop: 8 }}>
            {rendered.draft && (
              <Alert type="warning" showIcon style={{ marginBottom: 8 }} title={t("content.previewUnsaved")} description={t("content.previewUnsavedHelp")} data-testid="content-preview-unsaved" />
            )}
            {rendered.subject && <Typography.Text strong>{rendered.subject}</Typography.Text>}
            <div style={{ whiteSpace: "pre-wrap" }}>{rendered.body}</div>
            {rendered.sms && (
              <Typography.Text type="secondary" data-testid="content-rendered-sms">
                {t("content.smsCount", { length: rendered.sms.length, segments: rendered.sms.segments, per: rendered.sms.per_segment, encoding: rendered.sms.encoding })}
              </Typography.Text>
            )}
          </div>
        )}
      </Card>
      <Card size="small" title={t("content.history")} style={{ marginTop: 8 }}>
        <ApiAlert error={history.error} />
        <Timeline
          items={(history.data ?? []).map((h) => ({
            content: (
              <span>
                {formatTime(h.at)} · {h.actor} · {t(`content.action.${h.action}` as MessageKey) ?? h.action} (v{h.version_id}) {h.comment && `— ${h.comment}`}
              </span>
            ),
          }))}
        />
      </Card>
    </div>
  );
}

/** Approve / reject the submitted version with a comment. */
function Decision({ item, onDecided, compact }: { item: ContentItem | { id: number }; onDecided: (item: ContentItem) => void; compact?: boolean }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<unknown>(null);
  const decide = async (verdict: "approve" | "reject") => {
    setBusy(verdict);
    setRefusal(null);
    try {
      const out = await api.post<ContentItem>(`/api/v1/content/items/${item.id}/${verdict}`, { comment });
      void message.success(t(verdict === "approve" ? "content.approved" : "content.rejected"));
      onDecided(out);
    } catch (error) {
      setRefusal(error);
    } finally {
      setBusy(null);
    }
  };
  return (
    <Space direction={compact ? "horizontal" : "vertical"} wrap data-testid={`decision-${item.id}`}>
      <Input placeholder={t("content.comment")} value={comment} onChange={(e) => setComment(e.target.value)} style={{ width: 240 }} data-testid="review-comment" />
      <Space>
        <Button type="primary" loading={busy === "approve"} onClick={() => void decide("approve")} data-testid="review-approve">
          {t("content.approve")}
        </Button>
        <Button danger loading={busy === "reject"} disabled={!comment.trim()} onClick={() => void decide("reject")} data-testid="review-reject">
          {t("content.reject")}
        </Button>
      </Space>
      {refusal !== null && (
        <div data-testid="review-refused">
          <ApiAlert error={refusal} />
        </div>
      )}
    </Space>
  );
}

function NewContent({ onCreated }: { onCreated: (item: ContentItem) => void }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const [form] = Form.useForm<{ name: string; kind: string; channel?: string; tags: string[]; subject?: string; body: string }>();
  const [busy, setBusy] = useState(false);
  const channel = Form.useWatch("channel", form);
  return (
    <Form
      form={form}
      layout="vertical"
      initialValues={{ kind: "text", channel: "sms", tags: [] }}
      data-testid="content-new"
      onFinish={async (values) => {
        setBusy(true);
        try {
          const out = await api.post<ContentItem>("/api/v1/content/items", { ...values, subject: values.subject ?? "" });
          form.resetFields();
          onCreated(out);
        } catch (error) {
          void message.error(errorText(error));
        } finally {
          setBusy(false);
        }
      }}
    >
      <Row gutter={8}>
        <Col span={8}>
          <Form.Item name="name" label={t("common.name")} rules={[{ required: true }]}>
            <Input maxLength={200} data-testid="content-new-name" />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item name="kind" label={t("content.kind")}>
            <Select options={KINDS.map((k) => ({ value: k, label: t(`content.kind.${k}` as MessageKey) ?? k }))} />
          </Form.Item>
        </Col>
        <Col span={8}>
          <Form.Item name="channel" label={t("journeys.channel")}>
            <Select allowClear options={CHANNELS.map((c) => ({ value: c, label: t(`channel.${c}` as MessageKey) ?? c }))} data-testid="content-new-channel" />
          </Form.Item>
        </Col>
      </Row>
      {channel === "email" && (
        <Form.Item name="subject" label={t("content.subject")}>
          <Input />
        </Form.Item>
      )}
      <Form.Item name="body" label={t("content.body")} extra={t("content.bodyHelp")} rules={[{ required: true }]}>
        <Input.TextArea rows={4} data-testid="content-new-body" />
      </Form.Item>
      <Form.Item name="tags" label={t("content.tags")}>
        <Select mode="tags" />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={busy} data-testid="content-create">
        {t("common.create")}
      </Button>
    </Form>
  );
}

function Materials() {
  const { t } = useI18n();
  const { can } = useAuth();
  const [q, setQ] = useState("");
  const [query, setQuery] = useState("");
  const [tag, setTag] = useState<string | null>(null);
  const [open, setOpen] = useState<ContentItem | null>(null);
  const [creating, setCreating] = useState(false);
  const items = useApi((s) => api.get<ContentItem[]>("/api/v1/content/items", { q: query, tag }, s), [query, tag]);
  const allTags = useMemo(() => Array.from(new Set((items.data ?? []).flatMap((i) => i.tags))).sort(), [items.data]);
  const changed = (item: ContentItem) => {
    setOpen(item);
    items.reload();
  };
  return (
    <div>
      <Space wrap style={{ marginBottom: 12 }}>
        <Input.Search
          placeholder={t("content.searchPlaceholder")}
          value={q}
          onChange={(e) => setQ(e.target.value)}
          onSearch={(v) => setQuery(v.trim())}
          allowClear
          style={{ width: 260 }}
          data-testid="content-search"
        />
        <Select allowClear placeholder={t("content.tags")} value={tag} onChange={(v: string | undefined) => setTag(v ?? null)} options={allTags.map((x) => ({ value: x, label: x }))} style={{ width: 160 }} />
        {can("content:write") && (
          <Button type="primary" onClick={() => setCreating(true)} data-testid="content-new-open">
            {t("content.new")}
          </Button>
        )}
      </Space>
      <ApiAlert error={items.error} path="/api/v1/content/items" />
      <Table<ContentItem>
        rowKey="id"
        loading={items.loading}
        dataSource={items.data ?? []}
        data-testid="content-table"
        locale={{ emptyText: t("content.empty") }}
        onRow={(item) => ({ onClick: () => setOpen(item), style: { cursor: "pointer" } })}
        columns={[
          { title: "ID", dataIndex: "id", width: 60 },
          { title: t("common.name"), dataIndex: "name" },
          { title: t("content.kind"), dataIndex: "kind" },
          { title: t("journeys.channel"), dataIndex: "channel", render: (c: string | null) => (c ? (t(`channel.${c}` as MessageKey) ?? c) : "—") },
          { title: t("content.tags"), dataIndex: "tags", render: (tags: string[]) => tags.map((x) => <Tag key={x}>{x}</Tag>) },
          { title: t("content.version"), render: (_, i) => `v${i.latest.number}` },
          { title: t("content.statusLabel"), render: (_, i) => statusTag(t, i.latest.status) },
          { title: t("content.findingsShort"), render: (_, i) => (i.latest.findings.length ? <Tag color="red">{i.latest.findings.length}</Tag> : "0") },
          { title: t("segments.createdBy"), dataIndex: "created_by" },
        ]}
      />
      <Drawer open={open !== null} onClose={() => setOpen(null)} size={760} title={open ? `#${open.id} ${open.name}` : ""} destroyOnHidden>
        {open && <Editor key={`${open.id}-${open.latest.id}-${open.latest.status}`} item={open} onChanged={changed} />}
      </Drawer>
      <Drawer open={creating} onClose={() => setCreating(false)} size={640} title={t("content.new")} destroyOnHidden>
        <NewContent
          onCreated={(item) => {
            setCreating(false);
            changed(item);
          }}
        />
      </Drawer>
    </div>
  );
}

function ReviewQueue() {
  const { t } = useI18n();
  const queue = useApi((s) => api.get<ContentVersion[]>("/api/v1/content/reviews", { status: "submitted" }, s), []);
  const items = useApi((s) => api.get<ContentItem[]>("/api/v1/content/items", undefined, s), []);
  const names = useMemo(() => new Map((items.data ?? []).map((i) => [i.id, i])), [items.data]);
  return (
    <div data-testid="review-queue">
      <ApiAlert error={queue.error} path="/api/v1/content/reviews" />
      <Table<ContentVersion>
        rowKey="id"
        loading={queue.loading}
        dataSource={queue.data ?? []}
        locale={{ emptyText: t("content.queueEmpty") }}
        expandable={{
          expandedRowRender: (v) => <Highlighted text={v.body} findings={v.findings} />,
        }}
        columns={[
          { title: t("common.name"), render: (_, v) => <span data-testid="review-item">{names.get(v.item_id)?.name ?? `#${v.item_id}`}</span> },
          { title: t("journeys.channel"), render: (_, v) => names.get(v.item_id)?.channel ?? "—" },
          { title: t("content.version"), render: (_, v) => `v${v.number}` },
          { title: t("content.author"), dataIndex: "author" },
          { title: t("content.submittedAt"), dataIndex: "created_at", render: (v: string) => formatTime(v) },
          { title: t("content.findingsShort"), render: (_, v) => (v.findings.length ? <Tag color="red">{v.findings.map((f) => f.phrase).join(", ")}</Tag> : "0") },
          {
            title: "",
            render: (_, v) => (
              <Decision
                compact
                item={{ id: v.item_id }}
                onDecided={() => {
                  queue.reload();
                  items.reload();
                }}
              />
            ),
          },
        ]}
      />
    </div>
  );
}

export default function ContentPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const tabs = [{ key: "materials", label: <span data-testid="tab-materials">{t("content.materials")}</span>, children: <Materials /> }];
  if (can("content:approve")) tabs.push({ key: "review", label: <span data-testid="tab-review">{t("content.reviewQueue")}</span>, children: <ReviewQueue /> });
  return (
    <div data-testid="content-page">
      <Typography.Title level={3}>{t("content.title")}</Typography.Title>
      <Tabs items={tabs} destroyOnHidden />
    </div>
  );
}
