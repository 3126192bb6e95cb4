// Shapes of the API answers the console reads (see the server's OpenAPI at /docs).

export interface Me {
  username: string;
  role: string;
  permissions: string[];
  branch_scope: string[] | null;
  advisor_id: string | null;
}

export interface TokenOut {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export interface Customer {
  user_id: number;
  identities: Record<string, string[]>;
  properties: Record<string, unknown>;
  tags: Record<string, unknown>;
}

export interface CustomerEvent {
  id: string;
  event: string;
  time: string;
  distinct_id: string | null;
  receive_time: string | null;
  properties: Record<string, unknown>;
}

export interface CustomerEvents {
  user_id: number;
  events: CustomerEvent[];
}

export interface RecommendedItem {
  item_id: string;
  item_type: string;
  score: number;
  reason: string;
  risk_level: string | null;
  source: string;
  name: string | null;
  category: string | null;
}

export interface Recommendation {
  items: RecommendedItem[];
  strategy: string;
  scene: string;
  model_version: number | null;
}

export interface PropertyOut {
  name: string;
  type: string;
}

export interface SchemaOut {
  events: { name: string; properties: PropertyOut[] }[];
  event_properties: PropertyOut[];
  profile_properties: PropertyOut[];
  item_properties: PropertyOut[];
}

export interface Tag {
  id: number;
  name: string;
  display_name: string;
  description: string;
  kind: string;
  schedule: string;
  enabled: boolean;
  created_by: string;
  created_at: string;
  last_run_at: string | null;
  last_run_day: string | null;
}

export interface Segment {
  id: number;
  name: string;
  description: string;
  source: string;
  mode: string;
  rule: Record<string, unknown> | null;
  schedule: string;
  size: number | null;
  refreshed_at: string | null;
  created_by: string;
}

export interface PreviewOut {
  count: number;
  sample_user_ids: number[];
  warnings: string[];
  elapsed_ms: number;
}

export interface TableOut {
  kind: string;
  columns: string[];
  rows: unknown[][];
}

export interface FunnelStepOut {
  step: number;
  event: string;
  group: unknown;
  users: number;
  conversion_from_previous: number | null;
  conversion_overall: number | null;
  median_seconds_from_previous: number | null;
}

export interface FunnelOut extends TableOut {
  steps: FunnelStepOut[];
}

export interface RetentionOut extends TableOut {
  unit: string;
  cohorts: { cohort: string; size: number; retained: (number | null)[]; rates: (number | null)[] }[];
  average_rates: (number | null)[];
}

export interface TreatmentOut {
  difference: number;
  lift: number | null;
  ci_low: number;
  ci_high: number;
  p_value: number;
  chance_to_win: number;
  lift_ci_low: number | null;
  lift_ci_high: number | null;
  p_value_adjusted: number | null;
  always_valid_p_value: number;
  mean: number;
}

export interface ExperimentOut {
  metric: string;
  alpha: number;
  correction: string;
  control_mean: number;
  srm_p_value: number;
  treatments: Record<string, TreatmentOut>;
}

export interface DashboardMetric {
  analysis_id: number;
  stage: string | null;
  name: string;
  kind: string;
  headline: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
}

export interface Dashboard {
  dashboard: string;
  metrics: DashboardMetric[];
}

export interface ConsoleUser {
  id: number;
  username: string;
  display_name: string;
  email: string | null;
  role: string;
  branch_scope: string[] | null;
  advisor_id: string | null;
  is_active: boolean;
  created_at: string;
}

export interface Role {
  name: string;
  description: string;
  permissions: string[];
  builtin: boolean;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  project_id: number | null;
  detail: Record<string, unknown>;
  hash: string;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_before_seq: number | null;
}
