import { Card, Table, Tag, Typography } from "antd";
import { ApiAlert } from "../components/ApiAlert";
import { api } from "../lib/api";
import { formatTime } from "../lib/format";
import { useI18n } from "../lib/i18n";
import { useApi } from "../lib/useApi";

interface SceneOut {
  name: string;
  title: string;
  strategy: string;
  strategy_b: string | null;
  split_b: number;
  item_types: string[];
  default_n: number;
  builtin: boolean;
}

interface StrategyOut {
  name: string;
  description: string;
  config: { recall: unknown[] } & Record<string, unknown>;
  builtin: boolean;
}

interface ModelVersionOut {
  version: number;
  trained_at: string;
  status: string;
  n_users: number;
  n_items: number;
  n_interactions: number;
  algorithms: string[];
  duration_seconds: number;
}

export default function RecommendPage() {
  const { t } = useI18n();
  const scenes = useApi((s) => api.get<SceneOut[]>("/api/v1/recommend/scenes", undefined, s), []);
  const strategies = useApi((s) => api.get<StrategyOut[]>("/api/v1/recommend/strategies", undefined, s), []);
  const models = useApi((s) => api.get<ModelVersionOut[]>("/api/v1/recommend/models", undefined, s), []);
  return (
    <div data-testid="recommend-page">
      <Typography.Title level={3}>{t("recommend.title")}</Typography.Title>
      <Card title={t("recommend.scenes")} size="small">
        <ApiAlert error={scenes.error} path="/api/v1/recommend/scenes" />
        <Table<SceneOut>
          rowKey="name"
          size="small"
          pagination={false}
          loading={scenes.loading}
          dataSource={scenes.data ?? []}
          columns={[
            { title: t("common.name"), render: (_, s) => `${s.title} (${s.name})` },
            { title: "A", dataIndex: "strategy" },
            { title: "B", render: (_, s) => (s.strategy_b ? `${s.strategy_b} · ${(s.split_b * 100).toFixed(0)}%` : "—") },
            { title: "item_types", render: (_, s) => s.item_types.map((i) => <Tag key={i}>{i}</Tag>) },
            { title: "n", dataIndex: "default_n" },
          ]}
        />
      </Card>
      <Card title={t("recommend.strategies")} size="small" style={{ marginTop: 16 }}>
        <ApiAlert error={strategies.error} path="/api/v1/recommend/strategies" />
        <Table<StrategyOut>
          rowKey="name"
          size="small"
          pagination={false}
          loading={strategies.loading}
          dataSource={strategies.data ?? []}
          columns={[
            { title: t("common.name"), dataIndex: "name", render: (n: string, s) => (s.builtin ? <>{n} <Tag>builtin</Tag></> : n) },
            { title: t("common.description"), dataIndex: "description" },
            {
              title: "recall",
              render: (_, s) =>
                s.config.recall.map((source, i) => {
                  const { kind, weight } = source as { kind?: string; weight?: number };
                  return <Tag key={i}>{`${kind ?? "?"} × ${weight ?? 1}`}</Tag>;
                }),
            },
          ]}
        />
      </Card>
      <Card title={t("recommend.models")} size="small" style={{ marginTop: 16 }}>
        <ApiAlert error={models.error} path="/api/v1/recommend/models" />
        <Table<ModelVersionOut>
          rowKey="version"
          size="small"
          pagination={false}
          loading={models.loading}
          dataSource={models.data ?? []}
          columns={[
            { title: "version", dataIndex: "version" },
            { title: "trained_at", dataIndex: "trained_at", render: (v: string) => formatTime(v) },
            { title: "status", dataIndex: "status" },
            { title: "users / items / interactions", render: (_, m) => `${m.n_users} / ${m.n_items} / ${m.n_interactions}` },
            { title: "algorithms", render: (_, m) => m.algorithms.join(", ") },
            { title: "s", dataIndex: "duration_seconds", render: (v: number) => v.toFixed(1) },
          ]}
        />
      </Card>
    </div>
  );
}
