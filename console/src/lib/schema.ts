// The property schema the builders offer. /api/v1/schema needs schema:read; without it (or
// before any data arrived) the documented demo-brokerage properties are offered, and any
// other name can still be typed.
import { useEffect, useState } from "react";
import { api } from "./api";
import type { SchemaOut } from "./types";

export const FALLBACK_SCHEMA: SchemaOut = {
  events: [
    "$AppStart",
    "$AppEnd",
    "$pageview",
    "$AppViewScreen",
    "Login",
    "$SignUp",
    "ViewFundDetail",
    "Search",
    "BuyFund",
    "RedeemFund",
    "CreateAutoInvestPlan",
    "TerminateAutoInvestPlan",
    "AutoInvestPaymentFailed",
    "AssetChange",
    "OpenMarginAccount",
    "WeChatFollow",
    "Deposit",
    "TradeStock",
  ].map((name) => ({ name, properties: [] })),
  event_properties: [
    { name: "amount", type: "NUMBER" },
    { name: "item_id", type: "STRING" },
    { name: "fund_category", type: "STRING" },
    { name: "risk_level", type: "STRING" },
  ],
  profile_properties: [
    { name: "gender", type: "STRING" },
    { name: "birthday", type: "DATE" },
    { name: "city", type: "STRING" },
    { name: "branch", type: "STRING" },
    { name: "advisor_id", type: "STRING" },
    { name: "risk_tolerance", type: "STRING" },
    { name: "risk_assessment_expiry", type: "DATE" },
    { name: "account_open_date", type: "DATE" },
    { name: "total_assets", type: "NUMBER" },
    { name: "has_margin_account", type: "BOOL" },
    { name: "has_fund_account", type: "BOOL" },
    { name: "channel", type: "STRING" },
  ],
  item_properties: [],
};

export interface SchemaState {
  schema: SchemaOut;
  /** True when the server's schema was read; false when the fallback is shown. */
  live: boolean;
}

export function useSchema(): SchemaState {
  const [state, setState] = useState<SchemaState>({ schema: FALLBACK_SCHEMA, live: false });
  useEffect(() => {
    const controller = new AbortController();
    api
      .get<SchemaOut>("/api/v1/schema", undefined, controller.signal)
      .then((schema) => {
        if (schema.profile_properties.length > 0 || schema.events.length > 0) setState({ schema, live: true });
      })
      .catch(() => undefined);
    return () => controller.abort();
  }, []);
  return state;
}

export function propertyTypes(schema: SchemaOut): Record<string, string> {
  return Object.fromEntries(schema.profile_properties.map((p) => [p.name, p.type]));
}
