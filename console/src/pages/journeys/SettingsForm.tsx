// Journey-level settings: name, purpose, re-entry, priority, control group, schedule, goals.
import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { AutoComplete, Button, DatePicker, Form, Input, InputNumber, Radio, Select, Space } from "antd";
import dayjs from "dayjs";
import { useI18n } from "../../lib/i18n";
import type { GoalMetric, JourneySettings } from "../../lib/journey";
import type { SchemaOut } from "../../lib/types";

export function SettingsForm({ value, onChange, schema }: { value: JourneySettings; onChange: (next: JourneySettings) => void; schema: SchemaOut }) {
  const { t } = useI18n();
  const set = (patch: Partial<JourneySettings>) => onChange({ ...value, ...patch });
  const setGoal = (index: number, patch: Partial<GoalMetric>) => set({ goals: value.goals.map((g, i) => (i === index ? { ...g, ...patch } : g)) });
  const when = (v: string | null) => (v ? dayjs(v) : null);
  return (
    <Form layout="vertical" data-testid="settings-form">
      <Form.Item label={t("common.name")} required>
        <Input value={value.name} maxLength={200} onChange={(e) => set({ name: e.target.value })} data-testid="settings-name" />
      </Form.Item>
      <Form.Item label={t("common.description")}>
        <Input.TextArea rows={2} value={value.description} maxLength={2000} onChange={(e) => set({ description: e.target.value })} />
      </Form.Item>
      <Form.Item label={t("journeys.campaign")} extra={t("journeys.campaignHelp")}>
        <Input value={value.campaign ?? ""} maxLength={100} onChange={(e) => set({ campaign: e.target.value || null })} />
      </Form.Item>
      <Form.Item label={t("journeys.purpose")} extra={t("journeys.purposeHelp")}>
        <Radio.Group
          value={value.purpose}
          onChange={(e) => set({ purpose: e.target.value as JourneySettings["purpose"] })}
          options={[
            { value: "marketing", label: t("journeys.purpose.marketing") },
            { value: "service", label: t("journeys.purpose.service") },
          ]}
          data-testid="settings-purpose"
        />
      </Form.Item>
      <Form.Item label={t("journeys.reentry")}>
        <Select
          value={value.reentry}
          onChange={(reentry: JourneySettings["reentry"]) => set({ reentry })}
          options={(["never", "after_exit", "always"] as const).map((r) => ({ value: r, label: t(`journeys.reentry.${r}`) }))}
        />
      </Form.Item>
      {value.reentry !== "never" && (
        <Form.Item label={t("journeys.cooldownHours")}>
          <InputNumber min={0} value={value.reentry_cooldown_seconds / 3600} onChange={(h) => set({ reentry_cooldown_seconds: Math.round(Number(h ?? 0) * 3600) })} />
        </Form.Item>
      )}
      <Space>
        <Form.Item label={t("journeys.priority")} extra="0–100">
          <InputNumber min={0} max={100} value={value.priority} onChange={(p) => set({ priority: Number(p ?? 0) })} />
        </Form.Item>
        <Form.Item label={t("journeys.controlPercent")} extra="0–50%">
          <InputNumber min={0} max={50} value={value.control_percent} onChange={(p) => set({ control_percent: Number(p ?? 0) })} data-testid="settings-control" />
        </Form.Item>
      </Space>
      <Form.Item label={t("journeys.schedule")}>
        <DatePicker.RangePicker
          showTime
          allowEmpty={[true, true]}
          value={[when(value.schedule.start_at), when(value.schedule.end_at)]}
          onChange={(range) =>
            set({
              schedule: {
                start_at: range?.[0] ? range[0].toISOString() : null,
                end_at: range?.[1] ? range[1].toISOString() : null,
              },
            })
          }
        />
      </Form.Item>
      <Form.Item label={t("journeys.goals")}>
        {value.goals.map((goal, i) => (
          <Space key={i} style={{ marginBottom: 4 }}>
            <AutoComplete
              style={{ width: 170 }}
              value={goal.event}
              placeholder={t("journeys.goalEvent")}
              onChange={(event: string) => setGoal(i, { event })}
              options={schema.events.map((e) => ({ value: e.name }))}
              data-testid={`settings-goal-${i}`}
            />
            <InputNumber
              min={1}
              max={366}
              value={goal.window_seconds / 86400}
              addonAfter={t("journeys.days")}
              style={{ width: 130 }}
              onChange={(d) => setGoal(i, { window_seconds: Math.round(Number(d ?? 7) * 86400) })}
            />
            <Button size="small" icon={<DeleteOutlined />} onClick={() => set({ goals: value.goals.filter((_, j) => j !== i) })} />
          </Space>
        ))}
        <div>
          <Button size="small" icon={<PlusOutlined />} onClick={() => set({ goals: [...value.goals, { event: "", window_seconds: 7 * 86400 }] })} data-testid="settings-add-goal">
            {t("journeys.addGoal")}
          </Button>
        </div>
      </Form.Item>
    </Form>
  );
}
