import { App as AntApp, ConfigProvider, Result, Spin } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import dayjs from "dayjs";
import "dayjs/locale/zh-cn";
import { lazy, Suspense, type ReactNode } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { AppLayout } from "./components/AppLayout";
import { ComingSoon } from "./components/ComingSoon";
import { Guard } from "./components/Guard";
import { AuthProvider, useAuth } from "./lib/auth";
import { I18nProvider, useI18n } from "./lib/i18n";
import { homePath, SECTIONS } from "./lib/nav";

const LOADERS = {
  login: () => import("./pages/LoginPage"),
  overview: () => import("./pages/OverviewPage"),
  customers: () => import("./pages/CustomersPage"),
  tags: () => import("./pages/TagsPage"),
  segments: () => import("./pages/SegmentsPage"),
  recommend: () => import("./pages/RecommendPage"),
  analytics: () => import("./pages/AnalyticsPage"),
  admin: () => import("./pages/AdminPage"),
  journeys: () => import("./pages/JourneysPage"),
  content: () => import("./pages/ContentPage"),
  playbooks: () => import("./pages/PlaybooksPage"),
  channels: () => import("./pages/ChannelsPage"),
  advisor: () => import("./pages/AdvisorPage"),
};
const LoginPage = lazy(LOADERS.login);
const OverviewPage = lazy(LOADERS.overview);
const CustomersPage = lazy(LOADERS.customers);
const TagsPage = lazy(LOADERS.tags);
const SegmentsPage = lazy(LOADERS.segments);
const RecommendPage = lazy(LOADERS.recommend);
const AnalyticsPage = lazy(LOADERS.analytics);
const AdminPage = lazy(LOADERS.admin);
const JourneysPage = lazy(LOADERS.journeys);
const ContentPage = lazy(LOADERS.content);
const PlaybooksPage = lazy(LOADERS.playbooks);
const ChannelsPage = lazy(LOADERS.channels);
const AdvisorPage = lazy(LOADERS.advisor);

// Fetch the chunk of the page being opened while /auth/me is checked, not after.
const opening = window.location.pathname;
const openingKey =
  opening === "/" ? "overview" : SECTIONS.find((s) => s.path !== "/" && opening.startsWith(s.path))?.key;
if (openingKey && openingKey in LOADERS) void LOADERS[openingKey as keyof typeof LOADERS]();
else if (opening === "/login") void LOADERS.login();

const PAGES: Record<string, ReactNode> = {
  overview: <OverviewPage />,
  customers: <CustomersPage />,
  tags: <TagsPage />,
  segments: <SegmentsPage />,
  recommend: <RecommendPage />,
  analytics: <AnalyticsPage />,
  admin: <AdminPage />,
  journeys: <JourneysPage />,
  content: <ContentPage />,
  playbooks: <PlaybooksPage />,
  channels: <ChannelsPage />,
  advisor: <AdvisorPage />,
};

function Loading() {
  return (
    <div style={{ padding: 48, textAlign: "center" }}>
      <Spin />
    </div>
  );
}

function RequireLogin({ children }: { children: ReactNode }) {
  const { me, checking } = useAuth();
  const location = useLocation();
  if (checking) return <Loading />;
  if (!me) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

function Home() {
  const { me } = useAuth();
  return <Navigate to={homePath(me?.permissions ?? [])} replace />;
}

function Forbidden() {
  const { t } = useI18n();
  return <Result status="403" title="403" subTitle={t("common.forbidden")} />;
}

function ConsoleRoutes() {
  const { me } = useAuth();
  const overviewAllowed = me?.permissions.includes("analytics:read") ?? false;
  return (
    <Suspense fallback={<Loading />}>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route
          element={
            <RequireLogin>
              <AppLayout />
            </RequireLogin>
          }
        >
          {SECTIONS.map((section) => {
            const page = section.coming ? <ComingSoon section={section} /> : PAGES[section.key];
            const element = <Guard section={section}>{page}</Guard>;
            if (section.path === "/") {
              return <Route key={section.key} index element={overviewAllowed ? element : <Home />} />;
            }
            return <Route key={section.key} path={`${section.path.slice(1)}/*`} element={element} />;
          })}
          <Route path="forbidden" element={<Forbidden />} />
          <Route path="*" element={<Home />} />
        </Route>
      </Routes>
    </Suspense>
  );
}

function Themed() {
  const { language } = useI18n();
  dayjs.locale(language === "zh-CN" ? "zh-cn" : "en");
  return (
    <ConfigProvider locale={language === "zh-CN" ? zhCN : enUS} theme={{ token: { colorPrimary: "#c0392b" } }}>
      <AntApp>
        <AuthProvider>
          <BrowserRouter>
            <ConsoleRoutes />
          </BrowserRouter>
        </AuthProvider>
      </AntApp>
    </ConfigProvider>
  );
}

export function App() {
  return (
    <I18nProvider>
      <Themed />
    </I18nProvider>
  );
}
