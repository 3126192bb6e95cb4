// Journeys: the list (create, import), the canvas (/journeys/new, /journeys/:id) and the report
// (/journeys/:id/report).
import { UploadOutlined } from "@ant-design/icons";
import { App as AntApp, Button, Space, Table, Tag, Typography, Upload } from "antd";
import { lazy, Suspense } from "react";
import { Link, Route, Routes, useNavigate } from "react-router";
import { ApiAlert } from "../components/ApiAlert";
import { api, errorText } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime } from "../lib/format";
import { useI18n } from "../lib/i18n";
import { useApi } from "../lib/useApi";
import { STATUS_COLORS } from "./journeys/status";
import type { JourneyOut, JourneySummary } from "./journeys/types";

const JourneyEditor = lazy(() => import("./journeys/JourneyEditor"));
const JourneyReport = lazy(() => import("./journeys/JourneyReport"));

function JourneyList() {
  const { t } = useI18n();
  const { can } = useAuth();
  const { message } = AntApp.useApp();
  const navigate = useNavigate();
  const journeys = useApi((signal) => api.get<JourneySummary[]>("/api/v1/journeys", undefined, signal), []);

  const importFile = async (file: File) => {
    try {
      const definition: unknown = JSON.parse(await file.text());
      const out = await api.post<JourneyOut>("/api/v1/journeys/import", definition);
      void message.success(t("journeys.imported", { name: out.name }));
      navigate(`/journeys/${out.id}`);
    } catch (error) {
      void message.error(errorText(error));
    }
  };

  return (
    <div data-testid="journeys-page">
      <Space style={{ width: "100%", justifyContent: "space-between" }}>
        <Typography.Title level={3}>{t("journeys.title")}</Typography.Title>
        {can("journeys:write") && (
          <Space>
            <Upload accept="application/json,.json" showUploadList={false} beforeUpload={(file) => (void importFile(file), false)}>
              <Button icon={<UploadOutlined />} data-testid="journey-import">
                {t("journeys.import")}
              </Button>
            </Upload>
            <Button type="primary" onClick={() => navigate("/journeys/new")} data-testid="journey-new">
              {t("journeys.new")}
            </Button>
          </Space>
        )}
      </Space>
      <ApiAlert error={journeys.error} path="/api/v1/journeys" />
      <Table<JourneySummary>
        rowKey="id"
        loading={journeys.loading}
        dataSource={journeys.data ?? []}
        data-testid="journeys-table"
        locale={{ emptyText: t("journeys.empty") }}
        columns={[
          { title: "ID", dataIndex: "id", width: 70 },
          { title: t("common.name"), dataIndex: "name", render: (name: string, j) => <Link to={`/journeys/${j.id}`}>{name}</Link> },
          {
            title: t("journeys.statusLabel"),
            dataIndex: "status",
            render: (s: string, j) => (
              <>
                <Tag color={STATUS_COLORS[s] ?? "default"}>{t(`journeys.status.${s}` as never) ?? s}</Tag>
                {j.awaiting_approval && (
                  <Tag color="gold" data-testid={`journey-awaiting-${j.id}`}>
                    {t("journeys.awaitingApproval")}
                  </Tag>
                )}
              </>
            ),
          },
          { title: t("journeys.purpose"), dataIndex: "purpose", render: (p: string) => t(`journeys.purpose.${p}` as never) ?? p },
          { title: t("journeys.version"), dataIndex: "live_version", render: (v: number | null) => (v === null ? "—" : `v${v}`) },
          { title: t("journeys.inFlight"), dataIndex: "in_flight", render: (n: number) => n.toLocaleString() },
          { title: t("journeys.updatedAt"), dataIndex: "updated_at", render: (v: string) => formatTime(v) },
          {
            title: "",
            render: (_, j) => (
              <Space>
                <Link to={`/journeys/${j.id}`}>{t("journeys.open")}</Link>
                {j.live_version !== null && <Link to={`/journeys/${j.id}/report`}>{t("journeys.report")}</Link>}
              </Space>
            ),
          },
        ]}
      />
    </div>
  );
}

export default function JourneysPage() {
  return (
    <Suspense fallback={null}>
      <Routes>
        <Route index element={<JourneyList />} />
        <Route path="new" element={<JourneyEditor />} />
        <Route path=":id" element={<JourneyEditor />} />
        <Route path=":id/report" element={<JourneyReport />} />
      </Routes>
    </Suspense>
  );
}
