import { Card, Col, Empty, Row, Statistic, Tag, Typography } from "antd";
import { ApiAlert } from "../components/ApiAlert";
import { api } from "../lib/api";
import { formatValue, percent } from "../lib/format";
import { useI18n, type MessageKey } from "../lib/i18n";
import type { Dashboard, DashboardMetric } from "../lib/types";
import { useApi } from "../lib/useApi";

const STAGES = ["awareness", "acquisition", "activation", "retention", "revenue", "referral"] as const;
const PATH = "/api/v1/analytics/dashboards/3a3r";

function stageOf(metric: DashboardMetric): string {
  return (metric.stage ?? "").toLowerCase();
}

/** Funnels and retention headline a rate; the others a number. */
function headline(metric: DashboardMetric): string | null {
  if (metric.headline === null) return null;
  if (metric.kind === "funnel" || metric.kind === "retention") return percent(metric.headline);
  return formatValue(metric.headline);
}

export default function OverviewPage() {
  const { t } = useI18n();
  const board = useApi((signal) => api.get<Dashboard>(PATH, undefined, signal), []);
  const metrics = board.data?.metrics ?? [];

  return (
    <div data-testid="overview-page">
      <Typography.Title level={3}>{t("overview.title")}</Typography.Title>
      <ApiAlert error={board.error} path={PATH} />
      {!board.loading && !board.error && metrics.length === 0 && <Empty description={t("overview.empty")} />}
      <Row gutter={[16, 16]}>
        {STAGES.map((stage) => {
          const inStage = metrics.filter((m) => stageOf(m) === stage);
          if (!board.loading && inStage.length === 0) return null;
          return (
            <Col xs={24} md={12} xl={8} key={stage}>
              <Card title={t(`overview.stage.${stage}` as MessageKey)} loading={board.loading} data-testid={`stage-${stage}`}>
                {inStage.map((metric) => (
                  <div key={metric.analysis_id} style={{ marginBottom: 8 }}>
                    <Statistic title={metric.name} value={headline(metric) ?? t("overview.noData")} data-testid="stage-metric" />
                    {metric.error && <Tag color="red">{metric.error}</Tag>}
                  </div>
                ))}
              </Card>
            </Col>
          );
        })}
      </Row>
      <Card title={t("overview.campaigns")} style={{ marginTop: 16 }}>
        <Empty description={t("overview.campaignsComing")} />
      </Card>
    </div>
  );
}
