import { AutoComplete, Button, Card, Col, Descriptions, Empty, Form, Input, Row, Space, Table, Tag, Timeline, Typography } from "antd";
import { useState } from "react";
import { useSearchParams } from "react-router";
import { ApiAlert } from "../components/ApiAlert";
import { api } from "../lib/api";
import { useAuth } from "../lib/auth";
import { formatTime, formatValue } from "../lib/format";
import { useI18n } from "../lib/i18n";
import type { Customer, CustomerEvents, Recommendation } from "../lib/types";
import { useApi } from "../lib/useApi";

const KEYS = [
  "$identity_login_id",
  "cust_no",
  "fund_account",
  "$identity_mobile",
  "$identity_email",
  "$identity_anonymous_id",
  "$identity_wechat_unionid",
  "$identity_wechat_openid",
];

interface Lookup {
  key: string;
  value: string;
  reveal: boolean;
}

interface Profile {
  customer: Customer;
  events: CustomerEvents | null;
  eventsError: unknown;
  recommendations: Recommendation | null;
  recommendationsError: unknown;
}

async function loadProfile(lookup: Lookup, canRecommend: boolean, signal: AbortSignal): Promise<Profile> {
  const customer = await api.get<Customer>(
    "/api/v1/users/lookup",
    { key: lookup.key, value: lookup.value, reveal: lookup.reveal || undefined },
    signal,
  );
  const [events, recommendations] = await Promise.allSettled([
    api.get<CustomerEvents>(`/api/v1/users/${customer.user_id}/events`, { limit: 50, reveal: lookup.reveal || undefined }, signal),
    canRecommend
      ? api.get<Recommendation>("/api/v1/recommend/home", { user: lookup.value, key: lookup.key, n: 6 }, signal)
      : Promise.reject(new Error("recommend:read")),
  ]);
  return {
    customer,
    events: events.status === "fulfilled" ? events.value : null,
    eventsError: events.status === "rejected" ? events.reason : null,
    recommendations: recommendations.status === "fulfilled" ? recommendations.value : null,
    recommendationsError: recommendations.status === "rejected" ? recommendations.reason : null,
  };
}

function ProfileView({ profile }: { profile: Profile }) {
  const { t } = useI18n();
  const { customer } = profile;
  const tags = Object.entries(customer.tags).filter(([, value]) => value !== null && value !== undefined);
  const events = profile.events?.events ?? [];
  return (
    <Row gutter={[16, 16]} data-testid="customer-profile">
      <Col xs={24} xl={12}>
        <Card title={`${t("customers.identities")} · user_id ${customer.user_id}`} size="small">
          <Descriptions column={1} size="small" data-testid="customer-identities">
            {Object.entries(customer.identities).map(([key, values]) => (
              <Descriptions.Item key={key} label={key}>
                {values.join(", ")}
              </Descriptions.Item>
            ))}
          </Descriptions>
        </Card>
        <Card title={t("customers.properties")} size="small" style={{ marginTop: 16 }}>
          <Descriptions column={{ xs: 1, md: 2 }} size="small" data-testid="customer-properties">
            {Object.entries(customer.properties)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([name, value]) => (
                <Descriptions.Item key={name} label={name}>
                  {formatValue(value)}
                </Descriptions.Item>
              ))}
          </Descriptions>
        </Card>
        <Card title={t("customers.tags")} size="small" style={{ marginTop: 16 }}>
          {tags.length === 0 ? (
            <Typography.Text type="secondary">{t("customers.noTags")}</Typography.Text>
          ) : (
            <Space wrap data-testid="customer-tags">
              {tags.map(([name, value]) => (
                <Tag key={name} color="blue">
                  {name}: {formatValue(value)}
                </Tag>
              ))}
            </Space>
          )}
        </Card>
        <Card title={t("customers.recommendations")} size="small" style={{ marginTop: 16 }}>
          <ApiAlert error={profile.recommendationsError instanceof Error && profile.recommendationsError.message === "recommend:read" ? null : profile.recommendationsError} path="/api/v1/recommend/home" />
          {profile.recommendations && (
            <Table
              size="small"
              rowKey={(item) => `${item.item_type}:${item.item_id}`}
              pagination={false}
              data-testid="customer-recommendations"
              dataSource={profile.recommendations.items}
              locale={{ emptyText: t("customers.noRecommendations") }}
              columns={[
                { title: t("common.name"), render: (_, item) => item.name ?? item.item_id },
                { title: t("customers.risk"), dataIndex: "risk_level" },
                { title: t("customers.score"), dataIndex: "score", render: (v: number) => v.toFixed(3) },
                { title: t("customers.reason"), dataIndex: "reason" },
              ]}
            />
          )}
        </Card>
        <Card title={t("customers.messages")} size="small" style={{ marginTop: 16 }}>
          <Typography.Text type="secondary">{t("customers.messagesComing")}</Typography.Text>
        </Card>
      </Col>
      <Col xs={24} xl={12}>
        <Card title={t("customers.events")} size="small">
          <ApiAlert error={profile.eventsError} path="/api/v1/users/{id}/events" />
          {events.length === 0 && !profile.eventsError ? (
            <Empty description={t("customers.noEvents")} />
          ) : (
            <Timeline
              data-testid="customer-events"
              items={events.map((event) => ({
                key: event.id,
                children: (
                  <>
                    <Typography.Text strong>{event.event}</Typography.Text>{" "}
                    <Typography.Text type="secondary">{formatTime(event.time)}</Typography.Text>
                    <div style={{ fontSize: 12, color: "#888" }}>
                      {Object.entries(event.properties)
                        .filter(([, v]) => v !== null)
                        .slice(0, 6)
                        .map(([k, v]) => `${k}=${formatValue(v)}`)
                        .join(" · ")}
                    </div>
                  </>
                ),
              }))}
            />
          )}
        </Card>
      </Col>
    </Row>
  );
}

export default function CustomersPage() {
  const { t } = useI18n();
  const { can } = useAuth();
  const [params, setParams] = useSearchParams();
  const [form] = Form.useForm<{ key: string; value: string }>();
  const key = params.get("key") ?? "";
  const value = params.get("value") ?? "";
  const [reveal, setReveal] = useState(false);
  const lookup: Lookup | null = key && value ? { key, value, reveal } : null;
  const profile = useApi(
    (signal) => (lookup ? loadProfile(lookup, can("recommend:read"), signal) : Promise.resolve(null)),
    [key, value, reveal],
  );

  return (
    <div data-testid="customers-page">
      <Typography.Title level={3}>{t("customers.title")}</Typography.Title>
      <Card size="small" style={{ marginBottom: 16 }}>
        <Form
          form={form}
          layout="inline"
          initialValues={{ key: key || "$identity_login_id", value }}
          onFinish={(v) => {
            setReveal(false);
            setParams({ key: v.key.trim(), value: v.value.trim() });
          }}
        >
          <Form.Item name="key" label={t("customers.key")} rules={[{ required: true }]}>
            <AutoComplete
              style={{ width: 240 }}
              options={KEYS.map((k) => ({ value: k }))}
              data-testid="customer-key"
            />
          </Form.Item>
          <Form.Item name="value" label={t("customers.value")} rules={[{ required: true }]}>
            <Input style={{ width: 260 }} placeholder={t("customers.valuePlaceholder")} data-testid="customer-value" />
          </Form.Item>
          <Button type="primary" htmlType="submit" data-testid="customer-search">
            {t("common.search")}
          </Button>
          {can("pii:view") && lookup && (
            <Button style={{ marginLeft: 8 }} onClick={() => setReveal(!reveal)}>
              {reveal ? t("customers.masked") : t("customers.reveal")}
            </Button>
          )}
        </Form>
      </Card>
      {profile.loading && lookup && <Card loading />}
      <ApiAlert error={profile.error} path="/api/v1/users/lookup" />
      {!profile.loading && profile.data && <ProfileView profile={profile.data} />}
    </div>
  );
}
