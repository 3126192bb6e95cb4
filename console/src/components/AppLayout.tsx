import {
  ApartmentOutlined,
  AppstoreOutlined,
  AuditOutlined,
  BarChartOutlined,
  BulbOutlined,
  DashboardOutlined,
  FileTextOutlined,
  NotificationOutlined,
  SolutionOutlined,
  TagsOutlined,
  TeamOutlined,
  UserOutlined,
} from "@ant-design/icons";
import { Button, Layout, Menu, Space, Typography } from "antd";
import type { ReactNode } from "react";
import { Outlet, useLocation, useNavigate } from "react-router";
import { useAuth } from "../lib/auth";
import { useI18n } from "../lib/i18n";
import { visibleSections } from "../lib/nav";

const ICONS: Record<string, ReactNode> = {
  overview: <DashboardOutlined />,
  customers: <UserOutlined />,
  tags: <TagsOutlined />,
  segments: <TeamOutlined />,
  journeys: <ApartmentOutlined />,
  content: <FileTextOutlined />,
  playbooks: <AppstoreOutlined />,
  recommend: <BulbOutlined />,
  analytics: <BarChartOutlined />,
  channels: <NotificationOutlined />,
  advisor: <SolutionOutlined />,
  admin: <AuditOutlined />,
};

export function AppLayout() {
  const { me, logout } = useAuth();
  const { t, language, setLanguage } = useI18n();
  const navigate = useNavigate();
  const location = useLocation();
  const sections = visibleSections(me?.permissions ?? []);
  const selected =
    sections.find((s) => s.path !== "/" && location.pathname.startsWith(s.path))?.key ??
    (location.pathname === "/" ? "overview" : "");

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Sider breakpoint="lg" collapsedWidth={64} theme="light" width={200}>
        <div style={{ padding: "16px 20px", fontWeight: 600, fontSize: 16, whiteSpace: "nowrap", overflow: "hidden" }}>
          Flywheel
        </div>
        <Menu
          mode="inline"
          data-testid="nav"
          selectedKeys={[selected]}
          items={sections.map((section) => ({
            key: section.key,
            icon: ICONS[section.key],
            label: t(section.label),
            onClick: () => navigate(section.path),
          }))}
        />
      </Layout.Sider>
      <Layout>
        <Layout.Header
          style={{ background: "#fff", display: "flex", justifyContent: "space-between", alignItems: "center", padding: "0 24px" }}
        >
          <Typography.Text strong>{t("app.title")}</Typography.Text>
          <Space>
            <Typography.Text type="secondary" data-testid="whoami">
              {me?.username} · {me?.role}
            </Typography.Text>
            <Button
              size="small"
              data-testid="language-switch"
              onClick={() => setLanguage(language === "zh-CN" ? "en-US" : "zh-CN")}
            >
              {t("app.language")}
            </Button>
            <Button
              size="small"
              onClick={() => {
                void logout().then(() => navigate("/login"));
              }}
            >
              {t("app.logout")}
            </Button>
          </Space>
        </Layout.Header>
        <Layout.Content style={{ margin: 24 }}>
          <Outlet />
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
