// The advisor workbench: 1v1 follow-up tasks (an advisor sees own tasks; the API applies the
// data scope), task detail with the customer (masked), call script and due date, status and
// outcome/notes (PATCH, audited by the API).
import { App as AntApp, Button, Descriptions, Drawer, Form, Input, Segmented, Select, Space, Table, Tag, Timeline, Typography } from "antd";
import { useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { api, errorText } from "../lib/api";
import { formatTime, formatValue } from "../lib/format";
import { useI18n, type MessageKey } from "../lib/i18n";
import { useApi } from "../lib/useApi";

export interface AdvisorTask {
  id: number;
  user_id: number;
  advisor_id: string;
  branch: string | null;
  title: string;
  script: string;
  due_at: string | null;
  status: string;
  outcome: string | null;
  notes: string;
  history: { at: string; by: string; status?: string; outcome?: string | null; notes?: string }[];
  journey_id: number | null;
  node_id: string | null;
  created_at: string;
  updated_at: string;
  customer?: Record<string, unknown> | null;
}

const STATUSES = ["open", "in_progress", "done", "cancelled"] as const;
const STATUS_COLORS: Record<string, string> = { open: "blue", in_progress: "orange", done: "green", cancelled: "default" };
const OUTCOMES = ["reached", "no_answer", "interested", "not_interested", "converted", "callback"];

function overdue(task: AdvisorTask): boolean {
  return Boolean(task.due_at) && (task.status === "open" || task.status === "in_progress") && new Date(`${task.due_at}${/[zZ]|[+-]\d\d:\d\d$/.test(task.due_at ?? "") ? "" : "Z"}`) < new Date();
}

function TaskDetail({ task, onSaved }: { task: AdvisorTask; onSaved: (task: AdvisorTask) => void }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const [status, setStatus] = useState(task.status);
  const [outcome, setOutcome] = useState<string | null>(task.outcome);
  const [notes, setNotes] = useState(task.notes);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    try {
      onSaved(await api.patch<AdvisorTask>(`/api/v1/advisor/tasks/${task.id}`, { status, outcome, notes }));
      void message.success(t("advisor.saved"));
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div data-testid="advisor-task">
      <Descriptions column={1} size="small" bordered>
        <Descriptions.Item label={t("advisor.customer")}>#{task.user_id}</Descriptions.Item>
        {task.customer &&
          Object.entries(task.customer).map(([k, v]) => (
            <Descriptions.Item key={k} label={k}>
              {formatValue(v)}
            </Descriptions.Item>
          ))}
        <Descriptions.Item label={t("advisor.due")}>{formatTime(task.due_at)}</Descriptions.Item>
        <Descriptions.Item label={t("advisor.source")}>{task.journey_id ? `${t("nav.journeys")} #${task.journey_id} · ${task.node_id ?? ""}` : "—"}</Descriptions.Item>
      </Descriptions>
      <Typography.Title level={5} style={{ marginTop: 12 }}>
        {t("advisor.script")}
      </Typography.Title>
      <Typography.Paragraph style={{ whiteSpace: "pre-wrap", background: "#fafafa", padding: 8 }}>{task.script || "—"}</Typography.Paragraph>
      <Form layout="vertical">
        <Form.Item label={t("advisor.status")}>
          <Segmented value={status} onChange={(v) => setStatus(String(v))} options={STATUSES.map((s) => ({ value: s, label: t(`advisor.status.${s}`) }))} data-testid="advisor-status" />
        </Form.Item>
        <Form.Item label={t("advisor.outcome")}>
          <Select allowClear value={outcome ?? undefined} onChange={(v: string | undefined) => setOutcome(v ?? null)} options={OUTCOMES.map((o) => ({ value: o, label: t(`advisor.outcome.${o}` as MessageKey) ?? o }))} />
        </Form.Item>
        <Form.Item label={t("advisor.notes")}>
          <Input.TextArea rows={3} value={notes} onChange={(e) => setNotes(e.target.value)} />
        </Form.Item>
        <Button type="primary" loading={busy} onClick={() => void save()} data-testid="advisor-save">
          {t("common.save")}
        </Button>
      </Form>
      <Typography.Title level={5} style={{ marginTop: 12 }}>
        {t("content.history")}
      </Typography.Title>
      <Timeline
        items={task.history.map((h) => ({
          content: `${formatTime(h.at)} · ${h.by} · ${h.status ?? ""} ${h.outcome ?? ""} ${h.notes ?? ""}`,
        }))}
      />
    </div>
  );
}

export default function AdvisorPage() {
  const { t } = useI18n();
  const [status, setStatus] = useState<string>("open");
  const tasks = useApi((s) => api.get<AdvisorTask[]>("/api/v1/advisor/tasks", { status: status === "all" ? undefined : status }, s), [status]);
  const [open, setOpen] = useState<AdvisorTask | null>(null);
  return (
    <div data-testid="advisor-page">
      <Typography.Title level={3}>{t("advisor.title")}</Typography.Title>
      <Space style={{ marginBottom: 12 }}>
        <Segmented value={status} onChange={(v) => setStatus(String(v))} options={[...STATUSES, "all"].map((s) => ({ value: s, label: t(`advisor.status.${s}` as MessageKey) }))} />
      </Space>
      <ApiAlert error={tasks.error} path="/api/v1/advisor/tasks" />
      <Table<AdvisorTask>
        rowKey="id"
        loading={tasks.loading}
        dataSource={tasks.data ?? []}
        data-testid="advisor-tasks"
        locale={{ emptyText: t("advisor.empty") }}
        onRow={(task) => ({ onClick: () => setOpen(task), style: { cursor: "pointer" } })}
        columns={[
          { title: t("advisor.task"), dataIndex: "title" },
          { title: t("advisor.customer"), dataIndex: "user_id", render: (id: number) => `#${id}` },
          { title: t("advisor.due"), render: (_, task) => <span style={{ color: overdue(task) ? "#cf1322" : undefined }}>{formatTime(task.due_at)}</span> },
          { title: t("advisor.status"), dataIndex: "status", render: (s: string) => <Tag color={STATUS_COLORS[s]}>{t(`advisor.status.${s}` as MessageKey) ?? s}</Tag> },
          { title: t("advisor.outcome"), dataIndex: "outcome", render: (o: string | null) => (o ? (t(`advisor.outcome.${o}` as MessageKey) ?? o) : "—") },
          { title: t("advisor.branch"), dataIndex: "branch" },
        ]}
      />
      <Drawer open={open !== null} onClose={() => setOpen(null)} size={560} title={open?.title} destroyOnHidden>
        {open && (
          <TaskDetail
            task={open}
            onSaved={(task) => {
              setOpen(task);
              tasks.reload();
            }}
          />
        )}
      </Drawer>
    </div>
  );
}
