import { Button, Card, Form, Input, message, Modal, Select, Space, Table, Tabs, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime } from "../lib/format";
import { useI18n } from "../lib/i18n";
import type { AuditEntry, AuditPage, ConsoleUser, Role } from "../lib/types";
import { useApi } from "../lib/useApi";

interface NewUser {
  username: string;
  password: string;
  role: string;
  display_name?: string;
  branch_scope?: string[];
}

function Users() {
  const { t } = useI18n();
  const users = useApi((s) => api.get<ConsoleUser[]>("/api/v1/admin/users", undefined, s), []);
  const roles = useApi((s) => api.get<Role[]>("/api/v1/admin/roles", undefined, s), []);
  const [open, setOpen] = useState(false);
  const [saving, setSaving] = useState(false);
  const [form] = Form.useForm<NewUser>();
  const [messageApi, holder] = message.useMessage();

  const create = async (values: NewUser) => {
    setSaving(true);
    try {
      await api.post<ConsoleUser>("/api/v1/admin/users", {
        ...values,
        branch_scope: values.branch_scope && values.branch_scope.length ? values.branch_scope : null,
      });
      void messageApi.success(t("admin.userCreated"));
      setOpen(false);
      form.resetFields();
      users.reload();
    } catch (error) {
      void messageApi.error(errorText(error));
    } finally {
      setSaving(false);
    }
  };

  return (
    <>
      {holder}
      <Space style={{ marginBottom: 12 }}>
        <Button type="primary" onClick={() => setOpen(true)} data-testid="admin-new-user">
          {t("admin.newUser")}
        </Button>
      </Space>
      <ApiAlert error={users.error} path="/api/v1/admin/users" />
      <Table<ConsoleUser>
        rowKey="id"
        size="small"
        loading={users.loading}
        dataSource={users.data ?? []}
        data-testid="admin-users"
        columns={[
          { title: t("admin.username"), dataIndex: "username" },
          { title: t("admin.displayName"), dataIndex: "display_name" },
          { title: t("admin.role"), dataIndex: "role", render: (r: string) => <Tag>{r}</Tag> },
          {
            title: t("admin.branchScope"),
            dataIndex: "branch_scope",
            render: (b: string[] | null) => (b ? b.join(", ") : t("admin.allBranches")),
          },
          {
            title: t("admin.active"),
            dataIndex: "is_active",
            render: (a: boolean) => (a ? <Tag color="green">{t("admin.activeYes")}</Tag> : <Tag>{t("admin.activeNo")}</Tag>),
          },
          { title: t("admin.at"), dataIndex: "created_at", render: (v: string) => formatTime(v) },
        ]}
      />
      <Modal
        open={open}
        title={t("admin.newUser")}
        onCancel={() => setOpen(false)}
        onOk={() => form.submit()}
        confirmLoading={saving}
        okText={t("common.create")}
        cancelText={t("common.cancel")}
      >
        <Form form={form} layout="vertical" onFinish={(v) => void create(v)} initialValues={{ role: "marketer" }}>
          <Form.Item name="username" label={t("admin.username")} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="password" label={t("login.password")} rules={[{ required: true, min: 10 }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Form.Item name="display_name" label={t("admin.displayName")}>
            <Input />
          </Form.Item>
          <Form.Item name="role" label={t("admin.role")} rules={[{ required: true }]}>
            <Select options={(roles.data ?? []).map((r) => ({ value: r.name, label: r.name }))} />
          </Form.Item>
          <Form.Item name="branch_scope" label={t("admin.branchScope")}>
            <Select mode="tags" placeholder={t("admin.allBranches")} />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}

function Roles() {
  const { t } = useI18n();
  const roles = useApi((s) => api.get<Role[]>("/api/v1/admin/roles", undefined, s), []);
  return (
    <>
      <ApiAlert error={roles.error} path="/api/v1/admin/roles" />
      <Table<Role>
        rowKey="name"
        size="small"
        loading={roles.loading}
        dataSource={roles.data ?? []}
        pagination={false}
        columns={[
          { title: t("common.name"), dataIndex: "name", render: (n: string, r) => (r.builtin ? <>{n} <Tag>{t("admin.builtin")}</Tag></> : n) },
          { title: t("common.description"), dataIndex: "description" },
          {
            title: t("admin.permissions"),
            dataIndex: "permissions",
            render: (p: string[]) => (
              <Space wrap size={[4, 4]}>
                {p.map((name) => (
                  <Tag key={name} style={{ fontSize: 11 }}>
                    {name}
                  </Tag>
                ))}
              </Space>
            ),
          },
        ]}
      />
    </>
  );
}

function Audit() {
  const { t } = useI18n();
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);

  const load = (before: number | null) => {
    setLoading(true);
    api
      .get<AuditPage>("/api/v1/audit", { limit: 50, before_seq: before ?? undefined })
      .then((page) => {
        setEntries((old) => (before === null ? page.entries : [...old, ...page.entries]));
        setNext(page.next_before_seq);
        setError(null);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  };
  useEffect(() => load(null), []);

  return (
    <>
      <ApiAlert error={error} path="/api/v1/audit" />
      <Table<AuditEntry>
        rowKey="seq"
        size="small"
        loading={loading}
        dataSource={entries}
        pagination={false}
        data-testid="admin-audit"
        columns={[
          { title: "#", dataIndex: "seq", width: 70 },
          { title: t("admin.at"), dataIndex: "at", render: (v: string) => formatTime(v) },
          { title: t("admin.actor"), dataIndex: "actor" },
          { title: t("admin.action"), dataIndex: "action", render: (a: string) => <Tag>{a}</Tag> },
          { title: t("admin.target"), dataIndex: "target" },
          { title: "detail", dataIndex: "detail", render: (d: Record<string, unknown>) => <code style={{ fontSize: 11 }}>{JSON.stringify(d)}</code> },
        ]}
      />
      {next !== null && (
        <Button style={{ marginTop: 12 }} onClick={() => load(next)} loading={loading}>
          {t("admin.more")}
        </Button>
      )}
    </>
  );
}

export default function AdminPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const items = [
    ...(can("admin:users")
      ? [
          { key: "users", label: t("admin.users"), children: <Users /> },
          { key: "roles", label: t("admin.roles"), children: <Roles /> },
        ]
      : []),
    ...(can("audit:read") ? [{ key: "audit", label: <span data-testid="tab-audit">{t("admin.audit")}</span>, children: <Audit /> }] : []),
  ];
  return (
    <div data-testid="admin-page">
      <Typography.Title level={3}>{t("admin.title")}</Typography.Title>
      <Card>
        <Tabs items={items} />
      </Card>
    </div>
  );
}
