import { Result } from "antd";
import type { ReactNode } from "react";
import { useAuth } from "../lib/auth";
import { useI18n } from "../lib/i18n";
import type { Section } from "../lib/nav";

/** Shows a section only to users holding one of its permissions (the API refuses anyway). */
export function Guard({ section, children }: { section: Section; children: ReactNode }) {
  const { can } = useAuth();
  const { t } = useI18n();
  if (!section.anyOf.some(can)) return <Result status="403" title="403" subTitle={t("common.forbidden")} />;
  return <>{children}</>;
}
