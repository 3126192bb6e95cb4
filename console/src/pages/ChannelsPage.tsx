// Channel settings: accounts per channel (credentials masked by the API), create / edit, send
// a test message, delivery statistics per channel; and the compliance settings (quiet hours,
// frequency caps, consent, black/white lists).
import { App as AntApp, Button, Card, Col, Drawer, Form, Input, InputNumber, Modal, Popconfirm, Row, Select, Space, Switch, Table, Tabs, Tag, TimePicker, Typography } from "antd";
import dayjs from "dayjs";
import { useEffect, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { Chart } from "../components/Chart";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime, percent } from "../lib/format";
import { ruleChannels, type ChannelInfo, type RuleChannel } from "../lib/channels";
import { useI18n, type MessageKey, type Translate } from "../lib/i18n";
import { useApi } from "../lib/useApi";

interface Account {
  id: number;
  channel: string;
  name: string;
  provider: string;
  enabled: boolean;
  is_default: boolean;
  options: Record<string, unknown>;
  credentials: Record<string, string>;
  updated_at: string;
}

interface ChannelStat {
  channel: string;
  total: number;
  by_status: Record<string, number>;
  blocked_by_reason: Record<string, number>;
  failed_by_reason: Record<string, number>;
  delivery_rate: number | null;
}

interface Cap {
  max: number;
  days: number;
}

interface ComplianceSettings {
  quiet_hours: { enabled: boolean; start: string; end: string; timezone: string };
  channel_caps: Record<string, Cap>;
  global_cap: Cap | null;
  consent_required: string[];
  whitelist_only: boolean;
  journey_publish_review: boolean;
  updated_by?: string;
  updated_at?: string | null;
}

interface ListEntry {
  id: number;
  kind: "black" | "white";
  key: string;
  value: string;
  channel: string;
  note: string;
  created_by: string;
  created_at: string;
}

/** The channel adapters the server knows, with their families (GET /api/v1/channels). */
function useChannelInfo(): ChannelInfo[] {
  const known = useApi((s) => api.get<ChannelInfo[]>("/api/v1/channels", undefined, s).catch(() => []), []);
  return known.data ?? [];
}
/** Channel names the server knows. */
function useChannels(): string[] {
  return useChannelInfo().map((c) => c.name);
}
/** What a compliance rule may name: every adapter and every family (wechat, wecom, push). */
function useRuleChannels(): RuleChannel[] {
  return ruleChannels(useChannelInfo());
}
const ruleChannelLabel = (t: Translate, c: RuleChannel) => (c.family ? t("compliance.family", { name: channelLabel(t, c.value) }) : channelLabel(t, c.value));
const channelLabel = (t: (k: MessageKey) => string, c: string) => t(`channel.${c}` as MessageKey) ?? c;

/** Key/value pairs edited as rows (credentials: values typed in clear, never shown back). */
function Pairs({ value, onChange, secret }: { value: [string, string][]; onChange: (v: [string, string][]) => void; secret?: boolean }) {
  const { t } = useI18n();
  return (
    <div>
      {value.map(([k, v], i) => (
        <Space key={i} style={{ marginBottom: 4 }}>
          <Input placeholder={t("channels.key")} value={k} onChange={(e) => onChange(value.map((p, j) => (j === i ? [e.target.value, p[1]] : p)))} style={{ width: 160 }} />
          {secret ? (
            <Input.Password placeholder={t("channels.value")} value={v} onChange={(e) => onChange(value.map((p, j) => (j === i ? [p[0], e.target.value] : p)))} style={{ width: 220 }} />
          ) : (
            <Input placeholder={t("channels.value")} value={v} onChange={(e) => onChange(value.map((p, j) => (j === i ? [p[0], e.target.value] : p)))} style={{ width: 220 }} />
          )}
          <Button size="small" onClick={() => onChange(value.filter((_, j) => j !== i))}>
            ×
          </Button>
        </Space>
      ))}
      <Button size="small" onClick={() => onChange([...value, ["", ""]])}>
        + {t("channels.addField")}
      </Button>
    </div>
  );
}

function AccountForm({ account, onSaved }: { account: Account | null; onSaved: () => void }) {
  const { t } = useI18n();
  const CHANNELS = useChannels();
  const { message } = AntApp.useApp();
  const [channel, setChannel] = useState(account?.channel ?? "sms");
  const [name, setName] = useState(account?.name ?? "");
  const [provider, setProvider] = useState(account?.provider ?? "");
  const [enabled, setEnabled] = useState(account?.enabled ?? true);
  const [isDefault, setIsDefault] = useState(account?.is_default ?? true);
  const [options, setOptions] = useState<[string, string][]>(Object.entries(account?.options ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const [credentials, setCredentials] = useState<[string, string][]>([]);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    try {
      // Option values typed as JSON (numbers, objects) are sent as such, anything else as text.
      const parsed = options.filter(([k]) => k).map(([k, v]) => {
        try {
          return [k, JSON.parse(v) as unknown];
        } catch {
          return [k, v];
        }
      });
      const body: Record<string, unknown> = { provider, enabled, is_default: isDefault, options: Object.fromEntries(parsed) };
      const creds = credentials.filter(([k]) => k);
      if (creds.length || !account) body.credentials = Object.fromEntries(creds);
      if (account) await api.patch(`/api/v1/channels/accounts/${account.id}`, body);
      else await api.post("/api/v1/channels/accounts", { ...body, name, channel });
      void message.success(t("channels.saved"));
      onSaved();
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Form layout="vertical">
      <Form.Item label={t("journeys.channel")} required>
        <Select value={channel} disabled={account !== null} onChange={setChannel} options={CHANNELS.map((c) => ({ value: c, label: channelLabel(t, c) }))} />
      </Form.Item>
      <Form.Item label={t("common.name")} required>
        <Input value={name} disabled={account !== null} onChange={(e) => setName(e.target.value)} data-testid="account-name" />
      </Form.Item>
      <Form.Item label={t("channels.provider")}>
        <Input value={provider} onChange={(e) => setProvider(e.target.value)} placeholder="aliyun / tencent / smtp …" />
      </Form.Item>
      <Form.Item label={t("channels.enabled")}>
        <Switch checked={enabled} onChange={setEnabled} />
      </Form.Item>
      <Form.Item label={t("channels.isDefault")}>
        <Switch checked={isDefault} onChange={setIsDefault} />
      </Form.Item>
      <Form.Item label={t("channels.settings")} extra={t("channels.optionsHelp")}>
        <Pairs value={options} onChange={setOptions} />
      </Form.Item>
      <Form.Item label={t("channels.credentials")} extra={account ? t("channels.credentialsKeep") : undefined}>
        {account?.credentials && (
          <div style={{ marginBottom: 4 }}>
            {Object.entries(account.credentials).map(([k, v]) => (
              <Tag key={k}>
                {k}: {String(v)}
              </Tag>
            ))}
          </div>
        )}
        <Pairs value={credentials} onChange={setCredentials} secret />
      </Form.Item>
      <Button type="primary" loading={busy} disabled={!name.trim()} onClick={() => void save()}>
        {t("common.save")}
      </Button>
    </Form>
  );
}

function Accounts() {
  const { t } = useI18n();
  const { can } = useAuth();
  const { message } = AntApp.useApp();
  const accounts = useApi((s) => api.get<Account[]>("/api/v1/channels/accounts", undefined, s), []);
  const [editing, setEditing] = useState<Account | null | "new">(null);
  const [testing, setTesting] = useState<Account | null>(null);
  const [address, setAddress] = useState("");
  const admin = can("channels:admin");
  const sendTest = async () => {
    if (!testing) return;
    try {
      const out = await api.post<{ kind: string; provider_message_id: string | null; reason: string | null; detail: string | null }>(
        `/api/v1/channels/accounts/${testing.id}/test`,
        { address },
      );
      const line = [out.kind, out.provider_message_id, out.reason, out.detail].filter(Boolean).join(" · ");
      if (out.kind === "sent" || out.kind === "delivered") {
        void message.success(`${t("channels.testSent")}: ${line}`);
        setTesting(null);
      } else void message.error(`${t("channels.testFailed")}: ${line}`);
    } catch (error) {
      void message.error(errorText(error));
    }
  };
  return (
    <div>
      {admin && (
        <Button type="primary" style={{ marginBottom: 12 }} onClick={() => setEditing("new")}>
          {t("channels.newAccount")}
        </Button>
      )}
      <ApiAlert error={accounts.error} path="/api/v1/channels/accounts" />
      <Table<Account>
        rowKey="id"
        loading={accounts.loading}
        dataSource={accounts.data ?? []}
        data-testid="channel-accounts"
        locale={{ emptyText: t("channels.noAccounts") }}
        columns={[
          { title: t("journeys.channel"), dataIndex: "channel", render: (c: string) => channelLabel(t, c) },
          { title: t("common.name"), dataIndex: "name" },
          { title: t("channels.provider"), dataIndex: "provider" },
          {
            title: t("channels.enabled"),
            render: (_, a) => (
              <Space>
                {a.enabled ? <Tag color="green">on</Tag> : <Tag>off</Tag>}
                {a.is_default && <Tag color="blue">{t("channels.isDefault")}</Tag>}
              </Space>
            ),
          },
          {
            title: t("channels.credentials"),
            dataIndex: "credentials",
            render: (c: Record<string, string>) =>
              Object.entries(c).map(([k, v]) => (
                <Tag key={k}>
                  {k}: {String(v)}
                </Tag>
              )),
          },
          { title: t("journeys.updatedAt"), dataIndex: "updated_at", render: (v: string | undefined) => formatTime(v) },
          {
            title: "",
            render: (_, a) =>
              admin && (
                <Space>
                  <Button size="small" onClick={() => setEditing(a)}>
                    {t("segments.edit")}
                  </Button>
                  <Button size="small" onClick={() => setTesting(a)}>
                    {t("channels.sendTest")}
                  </Button>
                </Space>
              ),
          },
        ]}
      />
      <Drawer open={editing !== null} onClose={() => setEditing(null)} size={560} title={editing === "new" ? t("channels.newAccount") : t("segments.edit")} destroyOnHidden>
        {editing !== null && (
          <AccountForm
            account={editing === "new" ? null : editing}
            onSaved={() => {
              setEditing(null);
              accounts.reload();
            }}
          />
        )}
      </Drawer>
      <Modal open={testing !== null} onCancel={() => setTesting(null)} onOk={() => void sendTest()} title={t("channels.sendTest")} okButtonProps={{ disabled: !address.trim() }}>
        <Input placeholder={t("channels.testAddress")} value={address} onChange={(e) => setAddress(e.target.value)} />
      </Modal>
    </div>
  );
}

function Stats() {
  const { t } = useI18n();
  const stats = useApi((s) => api.get<ChannelStat[]>("/api/v1/channels/stats", undefined, s), []);
  const rows = stats.data ?? [];
  const measures = ["sent", "delivered", "opened", "clicked", "failed", "blocked"] as const;
  return (
    <div>
      <ApiAlert error={stats.error} path="/api/v1/channels/stats" />
      {rows.length > 0 && (
        <Chart
          height={260}
          option={{
            tooltip: { trigger: "axis" },
            legend: { data: measures.map((m) => t(`report.${m}`)) },
            xAxis: { type: "category", data: rows.map((r) => channelLabel(t, r.channel)) },
            yAxis: { type: "value" },
            series: measures.map((m) => ({ name: t(`report.${m}`), type: "bar", data: rows.map((r) => r.by_status[m] ?? 0) })),
          }}
        />
      )}
      <Table<ChannelStat>
        rowKey="channel"
        loading={stats.loading}
        dataSource={rows}
        data-testid="channel-stats"
        pagination={false}
        columns={[
          { title: t("journeys.channel"), dataIndex: "channel", render: (c: string) => channelLabel(t, c) },
          { title: t("channels.total"), dataIndex: "total" },
          ...measures.map((m) => ({ title: t(`report.${m}`), render: (_: unknown, r: ChannelStat) => (r.by_status[m] ?? 0).toLocaleString() })),
          { title: t("channels.deliveryRate"), dataIndex: "delivery_rate", render: (v: number | null) => percent(v) },
          {
            title: t("report.blockedBy"),
            dataIndex: "blocked_by_reason",
            render: (r: Record<string, number> | undefined) =>
              Object.entries(r ?? {}).map(([k, v]) => (
                <Tag key={k} color="red">
                  {k} {v}
                </Tag>
              )),
          },
        ]}
      />
    </div>
  );
}

function ComplianceSettingsForm() {
  const { t } = useI18n();
  const RULE_CHANNELS = useRuleChannels();
  const { can } = useAuth();
  const { message } = AntApp.useApp();
  const loaded = useApi((s) => api.get<ComplianceSettings>("/api/v1/compliance/settings", undefined, s), []);
  const [value, setValue] = useState<ComplianceSettings | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setValue(loaded.data), [loaded.data]);
  const editable = can("compliance:admin");
  if (loaded.error) return <ApiAlert error={loaded.error} path="/api/v1/compliance/settings" />;
  if (!value) return null;
  const set = (patch: Partial<ComplianceSettings>) => setValue({ ...value, ...patch });
  const save = async () => {
    setBusy(true);
    try {
      const { updated_by: _b, updated_at: _a, ...body } = value;
      setValue(await api.put<ComplianceSettings>("/api/v1/compliance/settings", body));
      void message.success(t("channels.saved"));
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(false);
    }
  };
  const hm = (v: string) => dayjs(`2000-01-01T${v}`);
  return (
    <Form layout="vertical" disabled={!editable} data-testid="compliance-settings">
      <Card size="small" title={t("compliance.quietHours")} style={{ marginBottom: 12 }}>
        <Space wrap>
          <Switch checked={value.quiet_hours.enabled} onChange={(enabled) => set({ quiet_hours: { ...value.quiet_hours, enabled } })} />
          <TimePicker format="HH:mm" value={hm(value.quiet_hours.start)} onChange={(d) => d && set({ quiet_hours: { ...value.quiet_hours, start: d.format("HH:mm") } })} />
          <span>→</span>
          <TimePicker format="HH:mm" value={hm(value.quiet_hours.end)} onChange={(d) => d && set({ quiet_hours: { ...value.quiet_hours, end: d.format("HH:mm") } })} />
          <Typography.Text type="secondary">{value.quiet_hours.timezone}</Typography.Text>
        </Space>
        <Typography.Paragraph type="secondary">{t("compliance.quietHoursHelp")}</Typography.Paragraph>
      </Card>
      <Card size="small" title={t("compliance.caps")} style={{ marginBottom: 12 }}>
        <Row gutter={[8, 8]}>
          {Object.entries(value.channel_caps).map(([channel, cap]) => (
            <Col key={channel} xs={24} md={12}>
              <Space>
                <span style={{ width: 80, display: "inline-block" }}>{channelLabel(t, channel)}</span>
                <InputNumber min={0} value={cap.max} onChange={(max) => set({ channel_caps: { ...value.channel_caps, [channel]: { ...cap, max: Number(max ?? 0) } } })} />
                <span>{t("compliance.per")}</span>
                <InputNumber min={1} max={90} value={cap.days} onChange={(days) => set({ channel_caps: { ...value.channel_caps, [channel]: { ...cap, days: Number(days ?? 7) } } })} />
                <span>{t("journeys.days")}</span>
              </Space>
            </Col>
          ))}
        </Row>
        <Space style={{ marginTop: 8 }}>
          <span>{t("compliance.globalCap")}</span>
          <Switch checked={value.global_cap !== null} onChange={(on) => set({ global_cap: on ? { max: 6, days: 7 } : null })} />
          {value.global_cap && (
            <>
              <InputNumber min={0} value={value.global_cap.max} onChange={(max) => set({ global_cap: { ...(value.global_cap as Cap), max: Number(max ?? 0) } })} />
              <span>{t("compliance.per")}</span>
              <InputNumber min={1} max={90} value={value.global_cap.days} onChange={(days) => set({ global_cap: { ...(value.global_cap as Cap), days: Number(days ?? 7) } })} />
              <span>{t("journeys.days")}</span>
            </>
          )}
        </Space>
      </Card>
      <Form.Item label={t("compliance.consentRequired")}>
        <Select mode="multiple" value={value.consent_required} onChange={(consent_required: string[]) => set({ consent_required })} options={RULE_CHANNELS.map((c) => ({ value: c.value, label: ruleChannelLabel(t, c) }))} />
      </Form.Item>
      <Form.Item label={t("compliance.whitelistOnly")}>
        <Switch checked={value.whitelist_only} onChange={(whitelist_only) => set({ whitelist_only })} />
      </Form.Item>
      <Form.Item label={t("compliance.publishReview")} extra={t("compliance.publishReviewHelp")}>
        <Switch checked={value.journey_publish_review} onChange={(journey_publish_review) => set({ journey_publish_review })} data-testid="compliance-publish-review" />
      </Form.Item>
      <Space>
        <Button type="primary" loading={busy} onClick={() => void save()}>
          {t("common.save")}
        </Button>
        {value.updated_by && (
          <Typography.Text type="secondary">
            {value.updated_by} · {formatTime(value.updated_at)}
          </Typography.Text>
        )}
      </Space>
    </Form>
  );
}

function Lists() {
  const { t } = useI18n();
  const { can } = useAuth();
  const admin = can("compliance:admin");
  const RULE_CHANNELS = useRuleChannels();
  const { message } = AntApp.useApp();
  const entries = useApi((s) => api.get<ListEntry[]>("/api/v1/compliance/lists", undefined, s), []);
  const [form] = Form.useForm<{ kind: "black" | "white"; key: string; value: string; channel: string; note: string }>();
  const add = async () => {
    try {
      await api.post("/api/v1/compliance/lists", await form.validateFields());
      form.resetFields(["value", "note"]);
      entries.reload();
    } catch (error) {
      if (error instanceof Error) void message.error(errorText(error));
    }
  };
  const remove = async (id: number) => {
    try {
      await api.del(`/api/v1/compliance/lists/${id}`);
      entries.reload();
    } catch (error) {
      void message.error(errorText(error));
    }
  };
  return (
    <div>
      {admin && (
      <Form form={form} layout="inline" initialValues={{ kind: "black", key: "user_id", channel: "*", note: "" }} style={{ marginBottom: 12 }}>
        <Form.Item name="kind">
          <Select
            options={[
              { value: "black", label: t("compliance.black") },
              { value: "white", label: t("compliance.white") },
            ]}
            style={{ width: 100 }}
          />
        </Form.Item>
        <Form.Item name="key">
          <Input style={{ width: 150 }} />
        </Form.Item>
        <Form.Item name="value" rules={[{ required: true }]}>
          <Input placeholder={t("customers.value")} style={{ width: 180 }} />
        </Form.Item>
        <Form.Item name="channel">
          <Select options={[{ value: "*", label: t("compliance.allChannels") }, ...RULE_CHANNELS.map((c) => ({ value: c.value, label: ruleChannelLabel(t, c) }))]} style={{ width: 120 }} />
        </Form.Item>
        <Form.Item name="note">
          <Input placeholder={t("compliance.note")} style={{ width: 160 }} />
        </Form.Item>
        <Button onClick={() => void add()}>{t("common.create")}</Button>
      </Form>
      )}
      <ApiAlert error={entries.error} path="/api/v1/compliance/lists" />
      <Table<ListEntry>
        rowKey="id"
        size="small"
        loading={entries.loading}
        dataSource={entries.data ?? []}
        columns={[
          { title: t("compliance.list"), dataIndex: "kind", render: (k: string) => <Tag color={k === "black" ? "black" : "green"}>{k === "black" ? t("compliance.black") : t("compliance.white")}</Tag> },
          { title: t("customers.key"), dataIndex: "key" },
          { title: t("customers.value"), dataIndex: "value" },
          { title: t("journeys.channel"), dataIndex: "channel" },
          { title: t("compliance.note"), dataIndex: "note" },
          { title: t("segments.createdBy"), dataIndex: "created_by" },
          { title: t("journeys.updatedAt"), dataIndex: "created_at", render: (v: string) => formatTime(v) },
          {
            title: "",
            render: (_, e) => admin && (
              <Popconfirm title={t("rules.remove")} onConfirm={() => void remove(e.id)}>
                <Button size="small" danger>
                  {t("rules.remove")}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
    </div>
  );
}

export default function ChannelsPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const tabs = [];
  if (can("channels:read")) {
    tabs.push({ key: "accounts", label: t("channels.accounts"), children: <Accounts /> });
    tabs.push({ key: "stats", label: t("channels.stats"), children: <Stats /> });
  }
  if (can("compliance:read")) {
    tabs.push({ key: "compliance", label: t("compliance.settings"), children: <ComplianceSettingsForm /> });
    tabs.push({ key: "lists", label: t("compliance.lists"), children: <Lists /> });
  }
  return (
    <div data-testid="channels-page">
      <Typography.Title level={3}>{t("channels.title")}</Typography.Title>
      <Tabs destroyOnHidden items={tabs} />
    </div>
  );
}
