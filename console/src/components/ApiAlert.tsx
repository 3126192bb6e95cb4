import { Alert } from "antd";
import { ApiError, errorText } from "../lib/api";
import { useI18n } from "../lib/i18n";

/** The API's error message, or a clear note when the endpoint does not exist yet. */
export function ApiAlert({ error, path }: { error: unknown; path?: string }) {
  const { t } = useI18n();
  if (!error) return null;
  if (error instanceof ApiError && error.missing) {
    return <Alert type="info" showIcon title={t("common.apiMissing", { path: path ?? "" })} data-testid="api-missing" />;
  }
  if (error instanceof ApiError && error.status === 403) {
    return <Alert type="warning" showIcon title={t("common.forbidden")} description={error.message} />;
  }
  return <Alert type="error" showIcon title={errorText(error)} data-testid="api-error" />;
}
