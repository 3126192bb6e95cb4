// The journey report: per node funnel, blocked by reason, per variant statistics vs control,
// cost per channel (GET /api/v1/analytics/journeys/{id}/report), with ECharts.
import { Card, Col, Row, Space, Statistic, Table, Tag, Typography } from "antd";
import { useMemo } from "react";
import { Link, useParams } from "react-router";
import { ApiAlert } from "../../components/ApiAlert";
import { Chart } from "../../components/Chart";
import { api } from "../../lib/api";
import { percent } from "../../lib/format";
import { useI18n } from "../../lib/i18n";
import { useApi } from "../../lib/useApi";
import { nodeTypeLabel } from "./JourneyNodeView";

export interface NodeReport {
  node_id: string;
  type: string;
  label: string | null;
  entered: number;
  users: number;
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
  failed: number;
  blocked: number;
  blocked_by_reason: Record<string, number>;
  converted: number | null;
  attributed_conversions: number;
  cost: number;
}

export interface VariantReport {
  variant: string;
  baseline: boolean;
  users: number;
  conversions: number;
  rate: number | null;
  difference: number | null;
  lift: number | null;
  ci_low: number | null;
  ci_high: number | null;
  p_value: number | null;
  chance_to_win: number | null;
}

export interface ChannelCost {
  channel: string;
  unit: string | null;
  unit_price: number | null;
  messages_sent: number;
  billed_units: number;
  cost: number;
  conversions: number;
  cost_per_conversion: number | null;
}

export interface JourneyReportOut {
  journey_id: number;
  name: string;
  version: number | null;
  generated_at: string;
  currency: string;
  entrants: number;
  conversions: number | null;
  conversion_rate: number | null;
  primary_goal: string | null;
  nodes: NodeReport[];
  goals: { key: string; kind: string; event: string; conversions: number; rate: number | null }[];
  experiment: { goal: string | null; baseline: string | null; alpha: number; srm_p_value: number | null; variants: VariantReport[]; note: string | null };
  channels: ChannelCost[];
  cost_total: number;
  cost_per_conversion: number | null;
}

const STEPS = ["entered", "sent", "delivered", "opened", "clicked", "failed", "blocked", "converted"] as const;

function money(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `¥${value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export default function JourneyReport() {
  const { t } = useI18n();
  const { id } = useParams();
  const path = `/api/v1/analytics/journeys/${id}/report`;
  const report = useApi((signal) => api.get<JourneyReportOut>(path, undefined, signal), [path]);
  const data = report.data;

  const funnel = useMemo(() => {
    if (!data) return null;
    const nodes = data.nodes;
    return {
      tooltip: { trigger: "axis" },
      legend: { data: STEPS.map((s) => t(`report.${s}`)) },
      grid: { left: 48, right: 16, bottom: 60, top: 40 },
      xAxis: { type: "category", data: nodes.map((n) => n.label || `${n.node_id}`), axisLabel: { rotate: 20 } },
      yAxis: { type: "value" },
      series: STEPS.map((step) => ({
        name: t(`report.${step}`),
        type: "bar",
        data: nodes.map((n) => (step === "converted" ? (n.converted ?? 0) : n[step])),
      })),
    };
  }, [data, t]);

  const blockedReasons = useMemo(() => {
    const totals: Record<string, number> = {};
    for (const n of data?.nodes ?? []) for (const [reason, count] of Object.entries(n.blocked_by_reason)) totals[reason] = (totals[reason] ?? 0) + count;
    return Object.entries(totals).sort((a, b) => b[1] - a[1]);
  }, [data]);

  const variantChart = useMemo(() => {
    if (!data || data.experiment.variants.length === 0) return null;
    return {
      tooltip: {},
      grid: { left: 48, right: 16, bottom: 30, top: 20 },
      xAxis: { type: "category", data: data.experiment.variants.map((v) => v.variant) },
      yAxis: { type: "value", axisLabel: { formatter: (v: number) => `${(v * 100).toFixed(0)}%` } },
      series: [{ type: "bar", data: data.experiment.variants.map((v) => v.rate ?? 0), label: { show: true, position: "top", formatter: (p: { value: number }) => percent(p.value) } }],
    };
  }, [data]);

  return (
    <div data-testid="journey-report">
      <Space>
        <Link to={`/journeys/${id}`}>← {t("journeys.canvas")}</Link>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t("report.title")} {data ? `· ${data.name}` : ""}
        </Typography.Title>
        {data?.version !== null && data?.version !== undefined && <Tag>v{data.version}</Tag>}
      </Space>
      <ApiAlert error={report.error} path={path} />
      {data && (
        <>
          <Row gutter={16} style={{ margin: "16px 0" }}>
            <Col span={6}>
              <Card>
                <Statistic title={t("report.entrants")} value={data.entrants} data-testid="report-entrants" />
              </Card>
            </Col>
            <Col span={6}>
              <Card>
                <Statistic title={`${t("report.conversions")}${data.primary_goal ? ` (${data.primary_goal})` : ""}`} value={data.conversions ?? "—"} />
              </Card>
            </Col>
            <Col span={6}>
              <Card>
                <Statistic title={t("report.conversionRate")} value={percent(data.conversion_rate, 2)} />
              </Card>
            </Col>
            <Col span={6}>
              <Card>
                <Statistic title={t("report.cost")} value={money(data.cost_total)} />
                <Typography.Text type="secondary">
                  {t("report.costPerConversion")}: {money(data.cost_per_conversion)}
                </Typography.Text>
              </Card>
            </Col>
          </Row>
          <Card title={t("report.funnel")} style={{ marginBottom: 16 }}>
            {funnel && <Chart option={funnel} height={340} testId="report-funnel-chart" />}
            <Table<NodeReport>
              size="small"
              rowKey="node_id"
              pagination={false}
              dataSource={data.nodes}
              data-testid="report-nodes"
              columns={[
                { title: t("report.node"), render: (_, n) => `${n.label || n.node_id} · ${nodeTypeLabel(t, n.type)}` },
                ...STEPS.map((step) => ({
                  title: t(`report.${step}`),
                  render: (_: unknown, n: NodeReport) => {
                    const value = step === "converted" ? n.converted : n[step];
                    return value === null ? "—" : value.toLocaleString();
                  },
                })),
                {
                  title: t("report.blockedBy"),
                  render: (_, n) =>
                    Object.entries(n.blocked_by_reason).map(([reason, count]) => (
                      <Tag key={reason} color="red">
                        {reason} {count}
                      </Tag>
                    )),
                },
              ]}
            />
          </Card>
          <Row gutter={16}>
            <Col xs={24} xl={12}>
              <Card title={t("report.variants")} style={{ marginBottom: 16 }} data-testid="report-variants">
                {data.experiment.note && <Typography.Paragraph type="secondary">{data.experiment.note}</Typography.Paragraph>}
                {variantChart && <Chart option={variantChart} height={220} />}
                <Table<VariantReport>
                  size="small"
                  rowKey="variant"
                  pagination={false}
                  dataSource={data.experiment.variants}
                  locale={{ emptyText: t("report.noVariants") }}
                  columns={[
                    { title: t("report.variant"), render: (_, v) => (v.baseline ? <Tag color="blue">{v.variant}</Tag> : v.variant) },
                    { title: t("report.users"), dataIndex: "users" },
                    { title: t("report.conversions"), dataIndex: "conversions" },
                    { title: t("report.rate"), render: (_, v) => percent(v.rate, 2) },
                    { title: t("report.lift"), render: (_, v) => percent(v.lift, 2) },
                    { title: "CI", render: (_, v) => (v.ci_low === null || v.ci_high === null ? "—" : `[${percent(v.ci_low, 2)}, ${percent(v.ci_high, 2)}]`) },
                    { title: "p", render: (_, v) => (v.p_value === null ? "—" : v.p_value.toPrecision(3)) },
                    { title: t("report.chanceToWin"), render: (_, v) => percent(v.chance_to_win) },
                  ]}
                />
                {data.experiment.srm_p_value !== null && (
                  <Typography.Text type={data.experiment.srm_p_value < 0.001 ? "danger" : "secondary"}>SRM p = {data.experiment.srm_p_value.toPrecision(3)}</Typography.Text>
                )}
              </Card>
            </Col>
            <Col xs={24} xl={12}>
              <Card title={t("report.channels")} style={{ marginBottom: 16 }} data-testid="report-channels">
                <Table<ChannelCost>
                  size="small"
                  rowKey="channel"
                  pagination={false}
                  dataSource={data.channels}
                  columns={[
                    { title: t("journeys.channel"), dataIndex: "channel" },
                    { title: t("report.sent"), dataIndex: "messages_sent" },
                    { title: t("report.billedUnits"), dataIndex: "billed_units" },
                    { title: t("report.unitPrice"), render: (_, c) => money(c.unit_price) },
                    { title: t("report.cost"), render: (_, c) => money(c.cost) },
                    { title: t("report.costPerConversion"), render: (_, c) => money(c.cost_per_conversion) },
                  ]}
                />
              </Card>
              <Card title={t("report.blockedBy")} data-testid="report-blocked">
                {blockedReasons.length === 0
                  ? t("common.none")
                  : blockedReasons.map(([reason, count]) => (
                      <Tag key={reason} color="red">
                        {reason}: {count}
                      </Tag>
                    ))}
              </Card>
            </Col>
          </Row>
        </>
      )}
    </div>
  );
}
