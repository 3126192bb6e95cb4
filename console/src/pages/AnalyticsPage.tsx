import { Alert, Button, Card, Descriptions, Form, InputNumber, Radio, Select, Space, Table, Tabs, Tag, Typography } from "antd";
import { useMemo, useState } from "react";
import { ApiAlert } from "../components/ApiAlert";
import { Chart } from "../components/Chart";
import { api } from "../lib/api";
import { eventLines } from "../lib/charts";
import { percent } from "../lib/format";
import { useI18n } from "../lib/i18n";
import { useSchema } from "../lib/schema";
import type { ExperimentOut, FunnelOut, RetentionOut, TableOut } from "../lib/types";

/** Runs one POST analysis on demand: result, error and busy flag. */
function useRun<T>() {
  const [state, setState] = useState<{ result: T | null; error: unknown; busy: boolean }>({ result: null, error: null, busy: false });
  const run = (path: string, body: unknown) => {
    setState((s) => ({ ...s, busy: true, error: null }));
    api
      .post<T>(path, body)
      .then((result) => setState({ result, error: null, busy: false }))
      .catch((error: unknown) => setState({ result: null, error, busy: false }));
  };
  return { ...state, run };
}

function useEventOptions() {
  const { schema } = useSchema();
  return useMemo(() => schema.events.map((e) => ({ value: e.name, label: e.name })), [schema]);
}

const MEASURES = ["count", "uniques", "per_user", "sum", "avg", "min", "max", "median"];

function EventAnalysis() {
  const { t } = useI18n();
  const events = useEventOptions();
  const analysis = useRun<TableOut>();
  const lines = useMemo(() => (analysis.result ? eventLines(analysis.result) : null), [analysis.result]);
  return (
    <>
      <Form
        layout="inline"
        initialValues={{ event: "$AppStart", measure: "count", last_days: 30, bucket: "day" }}
        onFinish={(v: { event?: string; measure: string; property?: string; last_days: number; bucket: string }) =>
          analysis.run("/api/v1/analytics/events", {
            series: [{ event: v.event || null, measure: v.measure, ...(v.property ? { property: v.property } : {}) }],
            date_range: { last_days: v.last_days },
            bucket: v.bucket,
          })
        }
      >
        <Form.Item name="event" label={t("analytics.event")}>
          <Select style={{ width: 200 }} showSearch allowClear options={events} data-testid="events-event" />
        </Form.Item>
        <Form.Item name="measure" label={t("analytics.measure")}>
          <Select style={{ width: 120 }} options={MEASURES.map((m) => ({ value: m, label: m }))} />
        </Form.Item>
        <Form.Item noStyle shouldUpdate>
          {({ getFieldValue }) =>
            ["sum", "avg", "min", "max", "median"].includes(getFieldValue("measure") as string) ? (
              <Form.Item name="property" label={t("rules.measureProperty")}>
                <Select style={{ width: 140 }} options={[{ value: "amount", label: "amount" }]} />
              </Form.Item>
            ) : null
          }
        </Form.Item>
        <Form.Item name="last_days" label={t("analytics.lastDays")}>
          <InputNumber min={1} max={3660} />
        </Form.Item>
        <Form.Item name="bucket" label={t("analytics.bucket")}>
          <Select style={{ width: 100 }} options={["hour", "day", "week", "month", "total"].map((b) => ({ value: b, label: b }))} />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={analysis.busy} data-testid="events-run">
          {t("common.run")}
        </Button>
      </Form>
      <div style={{ marginTop: 16 }}>
        <ApiAlert error={analysis.error} path="/api/v1/analytics/events" />
        {lines && lines.x.length === 0 && <Alert type="info" title={t("analytics.noRows")} />}
        {lines && lines.x.length > 0 && (
          <Chart
            testId="events-chart"
            option={{
              tooltip: { trigger: "axis" },
              legend: { top: 0 },
              grid: { left: 48, right: 24, top: 40, bottom: 32 },
              xAxis: { type: "category", data: lines.x },
              yAxis: { type: "value" },
              series: lines.series.map((s) => ({ type: "line", name: s.name, data: s.data, smooth: false })),
            }}
          />
        )}
      </div>
    </>
  );
}

function FunnelAnalysis() {
  const { t } = useI18n();
  const events = useEventOptions();
  const funnel = useRun<FunnelOut>();
  const steps = funnel.result?.steps.filter((s) => s.group === null || s.group === undefined) ?? [];
  return (
    <>
      <Form
        layout="inline"
        initialValues={{ steps: ["$AppStart", "ViewFundDetail", "BuyFund"], window_days: 7, last_days: 30 }}
        onFinish={(v: { steps: string[]; window_days: number; last_days: number }) =>
          funnel.run("/api/v1/analytics/funnels", {
            steps: v.steps.map((event) => ({ event })),
            window_days: v.window_days,
            date_range: { last_days: v.last_days },
          })
        }
      >
        <Form.Item name="steps" label={t("analytics.steps")} rules={[{ required: true, type: "array", min: 2 }]}>
          <Select mode="multiple" style={{ minWidth: 360 }} options={events} data-testid="funnel-steps" />
        </Form.Item>
        <Form.Item name="window_days" label={t("analytics.windowDays")}>
          <InputNumber min={0.01} max={365} />
        </Form.Item>
        <Form.Item name="last_days" label={t("analytics.lastDays")}>
          <InputNumber min={1} max={3660} />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={funnel.busy} data-testid="funnel-run">
          {t("common.run")}
        </Button>
      </Form>
      <div style={{ marginTop: 16 }}>
        <ApiAlert error={funnel.error} path="/api/v1/analytics/funnels" />
        {funnel.result && (
          <>
            <Chart
              testId="funnel-chart"
              height={300}
              option={{
                tooltip: { trigger: "item" },
                series: [
                  {
                    type: "funnel",
                    sort: "none",
                    left: "10%",
                    width: "80%",
                    label: { show: true, position: "inside" },
                    data: steps.map((s) => ({ name: `${s.step}. ${s.event}`, value: s.users })),
                  },
                ],
              }}
            />
            <Table
              size="small"
              rowKey="step"
              pagination={false}
              dataSource={steps}
              data-testid="funnel-table"
              columns={[
                { title: "#", dataIndex: "step" },
                { title: t("analytics.event"), dataIndex: "event" },
                { title: t("analytics.users"), dataIndex: "users" },
                { title: "→", dataIndex: "conversion_from_previous", render: (v: number | null) => percent(v) },
                { title: t("analytics.conversion"), dataIndex: "conversion_overall", render: (v: number | null) => percent(v) },
              ]}
            />
          </>
        )}
      </div>
    </>
  );
}

function RetentionAnalysis() {
  const { t } = useI18n();
  const events = useEventOptions();
  const retention = useRun<RetentionOut>();
  const result = retention.result;
  const periods = result?.average_rates.length ?? 0;
  return (
    <>
      <Form
        layout="inline"
        initialValues={{ start_event: "$AppStart", return_event: "$AppStart", unit: "day", periods: 7, last_days: 30 }}
        onFinish={(v: { start_event?: string; return_event?: string; unit: string; periods: number; last_days: number }) =>
          retention.run("/api/v1/analytics/retention", {
            start_event: v.start_event || null,
            return_event: v.return_event || null,
            unit: v.unit,
            periods: v.periods,
            date_range: { last_days: v.last_days },
          })
        }
      >
        <Form.Item name="start_event" label={t("analytics.startEvent")}>
          <Select style={{ width: 180 }} showSearch allowClear options={events} />
        </Form.Item>
        <Form.Item name="return_event" label={t("analytics.returnEvent")}>
          <Select style={{ width: 180 }} showSearch allowClear options={events} />
        </Form.Item>
        <Form.Item name="unit" label={t("analytics.unit")}>
          <Select style={{ width: 90 }} options={["day", "week", "month"].map((u) => ({ value: u, label: u }))} />
        </Form.Item>
        <Form.Item name="periods" label={t("analytics.periods")}>
          <InputNumber min={1} max={90} />
        </Form.Item>
        <Form.Item name="last_days" label={t("analytics.lastDays")}>
          <InputNumber min={1} max={3660} />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={retention.busy} data-testid="retention-run">
          {t("common.run")}
        </Button>
      </Form>
      <div style={{ marginTop: 16 }}>
        <ApiAlert error={retention.error} path="/api/v1/analytics/retention" />
        {result && (
          <Table
            size="small"
            rowKey="cohort"
            pagination={false}
            scroll={{ x: true }}
            data-testid="retention-table"
            dataSource={[
              ...result.cohorts,
              { cohort: t("analytics.average"), size: result.cohorts.reduce((n, c) => n + c.size, 0), retained: [], rates: result.average_rates },
            ]}
            columns={[
              { title: t("analytics.cohort"), dataIndex: "cohort" },
              { title: t("analytics.size"), dataIndex: "size" },
              ...Array.from({ length: periods }, (_, k) => ({
                title: `${result.unit} ${k}`,
                key: String(k),
                render: (_: unknown, row: { rates: (number | null)[] }) => {
                  const rate = row.rates[k];
                  if (rate === null || rate === undefined) return "";
                  return <span style={{ background: `rgba(192,57,43,${0.1 + rate * 0.8})`, padding: "2px 6px", borderRadius: 3 }}>{percent(rate)}</span>;
                },
              })),
            ]}
          />
        )}
      </div>
    </>
  );
}

interface ArmForm {
  n: number;
  conversions?: number;
  sum?: number;
  sum_squares?: number;
}

function AbCalculator() {
  const { t } = useI18n();
  const [metric, setMetric] = useState<"binomial" | "mean">("binomial");
  const evaluation = useRun<ExperimentOut>();
  const arm = (values: ArmForm) =>
    metric === "binomial" ? { n: values.n, conversions: values.conversions } : { n: values.n, sum: values.sum, sum_squares: values.sum_squares };
  const armFields = (prefix: "control" | "treatment") => (
    <Space wrap>
      <Form.Item name={[prefix, "n"]} label={t("analytics.n")} rules={[{ required: true }]}>
        <InputNumber min={1} data-testid={`ab-${prefix}-n`} />
      </Form.Item>
      {metric === "binomial" ? (
        <Form.Item name={[prefix, "conversions"]} label={t("analytics.conversions")} rules={[{ required: true }]}>
          <InputNumber min={0} data-testid={`ab-${prefix}-conversions`} />
        </Form.Item>
      ) : (
        <>
          <Form.Item name={[prefix, "sum"]} label={t("analytics.sum")} rules={[{ required: true }]}>
            <InputNumber />
          </Form.Item>
          <Form.Item name={[prefix, "sum_squares"]} label={t("analytics.sumSquares")} rules={[{ required: true }]}>
            <InputNumber min={0} />
          </Form.Item>
        </>
      )}
    </Space>
  );
  const result = evaluation.result;
  const treatment = result?.treatments.treatment;
  return (
    <>
      <Form
        layout="vertical"
        initialValues={{ alpha: 0.05 }}
        onFinish={(v: { control: ArmForm; treatment: ArmForm; alpha: number }) =>
          evaluation.run("/api/v1/analytics/experiments/evaluate", {
            metric,
            control: arm(v.control),
            treatments: { treatment: arm(v.treatment) },
            alpha: v.alpha,
          })
        }
      >
        <Form.Item label={t("analytics.metric")}>
          <Radio.Group value={metric} onChange={(e) => setMetric(e.target.value as "binomial" | "mean")}>
            <Radio.Button value="binomial">{t("analytics.binomial")}</Radio.Button>
            <Radio.Button value="mean">{t("analytics.mean")}</Radio.Button>
          </Radio.Group>
        </Form.Item>
        <Typography.Text strong>{t("analytics.control")}</Typography.Text>
        {armFields("control")}
        <Typography.Text strong>{t("analytics.treatment")}</Typography.Text>
        {armFields("treatment")}
        <Form.Item name="alpha" label="α">
          <InputNumber min={0.001} max={0.5} step={0.01} />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={evaluation.busy} data-testid="ab-evaluate">
          {t("analytics.evaluate")}
        </Button>
      </Form>
      <div style={{ marginTop: 16 }}>
        <ApiAlert error={evaluation.error} path="/api/v1/analytics/experiments/evaluate" />
        {result && treatment && (
          <Descriptions bordered size="small" column={{ xs: 1, md: 2 }} data-testid="ab-result">
            <Descriptions.Item label={t("analytics.control")}>{result.metric === "binomial" ? percent(result.control_mean, 2) : result.control_mean.toFixed(4)}</Descriptions.Item>
            <Descriptions.Item label={t("analytics.treatment")}>{result.metric === "binomial" ? percent(treatment.mean, 2) : treatment.mean.toFixed(4)}</Descriptions.Item>
            <Descriptions.Item label={t("analytics.lift")}>
              <span data-testid="ab-lift">{percent(treatment.lift, 2)}</span>{" "}
              <Tag color={treatment.p_value < result.alpha ? "green" : "default"} data-testid="ab-verdict">
                {treatment.p_value < result.alpha ? t("analytics.significant") : t("analytics.notSignificant")}
              </Tag>
            </Descriptions.Item>
            <Descriptions.Item label={`${t("analytics.ci")} (${((1 - result.alpha) * 100).toFixed(0)}%)`}>
              {result.metric === "binomial" ? `${percent(treatment.ci_low, 2)} … ${percent(treatment.ci_high, 2)}` : `${treatment.ci_low.toFixed(4)} … ${treatment.ci_high.toFixed(4)}`}
            </Descriptions.Item>
            <Descriptions.Item label={t("analytics.pValue")}>
              <span data-testid="ab-p-value">{treatment.p_value.toPrecision(3)}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t("analytics.chanceToWin")}>{percent(treatment.chance_to_win, 1)}</Descriptions.Item>
            <Descriptions.Item label={t("analytics.alwaysValid")}>{treatment.always_valid_p_value.toPrecision(3)}</Descriptions.Item>
            <Descriptions.Item label={t("analytics.srm")}>{result.srm_p_value.toPrecision(3)}</Descriptions.Item>
          </Descriptions>
        )}
      </div>
    </>
  );
}

export default function AnalyticsPage() {
  const { t } = useI18n();
  return (
    <div data-testid="analytics-page">
      <Typography.Title level={3}>{t("analytics.title")}</Typography.Title>
      <Card>
        <Tabs
          destroyOnHidden={false}
          items={[
            { key: "events", label: t("analytics.events"), children: <EventAnalysis /> },
            { key: "funnels", label: t("analytics.funnels"), children: <FunnelAnalysis /> },
            { key: "retention", label: t("analytics.retention"), children: <RetentionAnalysis /> },
            { key: "ab", label: <span data-testid="tab-ab">{t("analytics.ab")}</span>, children: <AbCalculator /> },
          ]}
        />
      </Card>
    </div>
  );
}
