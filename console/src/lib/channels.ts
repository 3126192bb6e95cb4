// Channel names as compliance rules use them: an adapter (wechat_template, app_push, …) or the
// family it belongs to (wechat, wecom, push), which covers every adapter of the family.

export interface ChannelInfo {
  name: string;
  family: string;
}

export interface RuleChannel {
  value: string;
  /** True for a family name (covers several adapters). */
  family: boolean;
}

/** Families that group adapters under another name first, then every adapter; no duplicates. */
export function ruleChannels(known: ChannelInfo[]): RuleChannel[] {
  const adapters = new Set(known.map((c) => c.name));
  const families = [...new Set(known.filter((c) => c.family !== c.name && !adapters.has(c.family)).map((c) => c.family))].sort();
  return [...families.map((value) => ({ value, family: true })), ...known.map((c) => ({ value: c.name, family: false }))];
}
