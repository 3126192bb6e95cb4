// A publication awaiting a second person (four-eyes setting): who asked and when, and — for
// whoever may approve and is neither the author nor the requester — approve or reject.
import { Alert, App as AntApp, Button, Input, Space } from "antd";
import { useState } from "react";
import { api, errorText } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { formatTime } from "../../lib/format";
import { useI18n } from "../../lib/i18n";
import type { JourneyOut } from "./types";

export function PublishRequestBanner({ journey, onChanged }: { journey: JourneyOut; onChanged: (out: JourneyOut) => void }) {
  const { t } = useI18n();
  const { can, me } = useAuth();
  const { message, modal } = AntApp.useApp();
  const [busy, setBusy] = useState<"approve" | "reject" | null>(null);
  const request = journey.publish_request;
  if (!request) return null;
  const self = me ? `user:${me.username}` : null;
  // The server refuses these people too (separation of duties); the buttons are not offered.
  const mine = self !== null && [request.by, request.edited_by, journey.created_by].includes(self);
  const decide = async (action: "approve" | "reject", comment: string) => {
    setBusy(action);
    try {
      const out = await api.post<JourneyOut>(`/api/v1/journeys/${journey.id}/publish/${action}`, { draft_sha: action === "approve" ? request.draft_sha : undefined, comment });
      onChanged(out);
      void message.success(action === "approve" ? t("journeys.published", { n: out.live_version?.number ?? "" }) : t("journeys.publishRejected"));
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(null);
    }
  };
  const reject = () => {
    let comment = "";
    modal.confirm({
      title: t("journeys.publishRejectTitle"),
      content: <Input.TextArea rows={3} onChange={(e) => (comment = e.target.value)} data-testid="publish-reject-comment" />,
      okText: t("journeys.publishReject"),
      onOk: () => decide("reject", comment),
    });
  };
  return (
    <Alert
      type="info"
      showIcon
      style={{ marginBottom: 8 }}
      data-testid="journey-publish-request"
      title={t("journeys.publishPending", { by: request.by.replace(/^user:/, ""), at: formatTime(request.at) })}
      description={mine ? t("journeys.publishPendingMine") : undefined}
      action={
        can("journeys:approve") && !mine ? (
          <Space direction="vertical">
            <Button type="primary" size="small" loading={busy === "approve"} onClick={() => void decide("approve", "")} data-testid="journey-publish-approve">
              {t("journeys.publishApprove")}
            </Button>
            <Button size="small" danger loading={busy === "reject"} onClick={reject} data-testid="journey-publish-reject">
              {t("journeys.publishReject")}
            </Button>
          </Space>
        ) : undefined
      }
    />
  );
}
