import { Card, Col, Empty, Row, Statistic, Tag, Typography } from "antd";
import { ApiAlert } from "../components/ApiAlert";
import { api } from "../lib/api";
import { beijingMidnightUtc, formatValue, percent } from "../lib/format";
import { useI18n, type MessageKey } from "../lib/i18n";
import type { Dashboard, DashboardMetric } from "../lib/types";
import { useApi } from "../lib/useApi";
import { useAuth } from "../lib/auth";
import type { JourneyStats, JourneySummary } from "./journeys/types";

/** Statistics are read for at most this many running journeys (one request each). */
const MAX_STATS = 20;

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

/** Live campaign KPIs from the journeys list and each running journey's statistics. */
const OUT = ["sent", "delivered", "opened", "clicked"];

function CampaignKpis() {
  const { t } = useI18n();
  const { can } = useAuth();
  const mayReadChannels = can("channels:read");
  const kpis = useApi(async (signal) => {
    // Messages out today (Beijing day) from the channel statistics, when the user may read them.
    const today = mayReadChannels
      ? api
          .get<{ by_status: Record<string, number> }[]>("/api/v1/channels/stats", { since: beijingMidnightUtc() }, signal)
          .then((rows) => rows.reduce((n, r) => n + OUT.reduce((m, s) => m + (r.by_status[s] ?? 0), 0), 0))
          .catch(() => null)
      : Promise.resolve(null);
    const journeys = await api.get<JourneySummary[]>("/api/v1/journeys", undefined, signal);
    const live = journeys.filter((j) => j.live_version !== null && (j.status === "published" || j.status === "paused"));
    const stats = await Promise.all(
      live.slice(0, MAX_STATS).map((j) => api.get<JourneyStats>(`/api/v1/journeys/${j.id}/stats`, undefined, signal).catch(() => null)),
    );
    let conversions = 0;
    for (const s of stats) {
      if (!s) continue;
      conversions += Object.values(s.goals).reduce((a, b) => a + b, 0);
    }
    return {
      published: journeys.filter((j) => j.status === "published").length,
      inFlight: journeys.reduce((n, j) => n + j.in_flight, 0),
      sentToday: await today,
      conversions,
      partial: live.length > MAX_STATS,
    };
  }, [mayReadChannels]);
  return (
    <Card title={t("overview.campaigns")} style={{ marginTop: 16 }} loading={kpis.loading} data-testid="campaign-kpis">
      <ApiAlert error={kpis.error} path="/api/v1/journeys" />
      {kpis.data && (
        <Row gutter={16}>
          <Col span={6}>
            <Statistic title={t("overview.kpi.published")} value={kpis.data.published} data-testid="kpi-published" />
          </Col>
          <Col span={6}>
            <Statistic title={t("overview.kpi.inFlight")} value={kpis.data.inFlight} data-testid="kpi-in-flight" />
          </Col>
          <Col span={6}>
            <Statistic title={t("overview.kpi.sentToday")} value={kpis.data.sentToday ?? "—"} data-testid="kpi-sent-today" />
          </Col>
          <Col span={6}>
            <Statistic title={t("overview.kpi.conversions")} value={kpis.data.conversions} data-testid="kpi-conversions" />
          </Col>
        </Row>
      )}
      {kpis.data?.partial && <Typography.Text type="secondary">{t("overview.kpi.partial", { n: MAX_STATS })}</Typography.Text>}
    </Card>
  );
}

export default function OverviewPage() {
  const { t } = useI18n();
  const { can } = useAuth();
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
      {can("journeys:read") && <CampaignKpis />}
    </div>
  );
}
