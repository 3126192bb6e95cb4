// Every section of the console, the permission that shows it, and whether its API exists yet.
import type { MessageKey } from "./i18n";

export interface Section {
  key: string;
  path: string;
  label: MessageKey;
  /** Shown in the menu only when /api/v1/auth/me lists one of these permissions. */
  anyOf: string[];
  /** Set when the server API of the section is not built yet: what is coming. */
  coming?: MessageKey;
}

export const SECTIONS: Section[] = [
  { key: "overview", path: "/", label: "nav.overview", anyOf: ["analytics:read"] },
  { key: "customers", path: "/customers", label: "nav.customers", anyOf: ["customers:read"] },
  { key: "tags", path: "/tags", label: "nav.tags", anyOf: ["tags:read"] },
  { key: "segments", path: "/segments", label: "nav.segments", anyOf: ["segments:read"] },
  {
    key: "journeys",
    path: "/journeys",
    label: "nav.journeys",
    anyOf: ["journeys:read"],
  },
  {
    key: "content",
    path: "/content",
    label: "nav.content",
    anyOf: ["content:read"],
  },
  {
    key: "playbooks",
    path: "/playbooks",
    label: "nav.playbooks",
    anyOf: ["journeys:read"],
  },
  { key: "recommend", path: "/recommend", label: "nav.recommend", anyOf: ["recommend:read"] },
  { key: "analytics", path: "/analytics", label: "nav.analytics", anyOf: ["analytics:read"] },
  {
    key: "channels",
    path: "/channels",
    label: "nav.channels",
    anyOf: ["channels:read", "compliance:read"],
  },
  {
    key: "advisor",
    path: "/advisor",
    label: "nav.advisor",
    anyOf: ["advisor:tasks"],
  },
  { key: "admin", path: "/admin", label: "nav.admin", anyOf: ["admin:users", "audit:read"] },
];

/** The sections a user with ``permissions`` sees, in menu order. */
export function visibleSections(permissions: readonly string[]): Section[] {
  const held = new Set(permissions);
  return SECTIONS.filter((section) => section.anyOf.some((p) => held.has(p)));
}

/** Where to land after login: the first visible section (overview when allowed). */
export function homePath(permissions: readonly string[]): string {
  return visibleSections(permissions)[0]?.path ?? "/forbidden";
}
