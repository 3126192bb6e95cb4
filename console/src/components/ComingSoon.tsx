import { Empty, Typography } from "antd";
import { useI18n } from "../lib/i18n";
import type { Section } from "../lib/nav";

/** An honest empty state for a section whose server API is not built yet. */
export function ComingSoon({ section }: { section: Section }) {
  const { t } = useI18n();
  return (
    <div data-testid={`coming-${section.key}`} style={{ padding: 48 }}>
      <Empty
        description={
          <>
            <Typography.Title level={4}>{t("coming.title", { section: t(section.label) })}</Typography.Title>
            <Typography.Paragraph type="secondary">
              {t("coming.body", { what: section.coming ? t(section.coming) : section.key })}
            </Typography.Paragraph>
          </>
        }
      />
    </div>
  );
}
