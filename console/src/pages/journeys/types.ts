// Shapes of the journeys API (flywheel/journeys/schemas.py) and the journey report.
import type { LiveCounts, Problem } from "../../lib/journey";

export interface VersionOut {
  id: number;
  number: number;
  state: string;
  published_by: string;
  published_at: string;
}

/** A publication awaiting a second person's approval (four-eyes compliance setting). */
export interface PublishRequest {
  by: string;
  by_user_id: number | null;
  at: string;
  in_flight: "drain" | "migrate";
  draft_sha: string;
  /** Who last edited the draft before the request (may not approve either). */
  edited_by: string | null;
}

export interface JourneyOut {
  id: number;
  name: string;
  status: string;
  purpose: string;
  definition: Record<string, unknown>;
  live_version: VersionOut | null;
  publish_request: PublishRequest | null;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export interface JourneySummary {
  id: number;
  name: string;
  status: string;
  purpose: string;
  live_version: number | null;
  in_flight: number;
  awaiting_approval: boolean;
  updated_at: string;
}

export interface ValidationOut {
  valid: boolean;
  problems: Problem[];
}

/** GET /journeys/{id}/stats; the analytics stream's ``counts`` events carry the same shape. */
export type JourneyStats = LiveCounts;
