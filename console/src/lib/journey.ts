// The journey canvas model: a journey definition (what the API stores, see
// flywheel/journeys/schemas.py) <-> the nodes and edges React Flow draws, the output ports of
// each node, and validation problems mapped onto nodes and edges. Pure: unit-tested in
// journey.test.ts.

export type Category = "entry" | "flow" | "action" | "end";

/** One entry of GET /api/v1/journeys/node-types. */
export interface NodeType {
  type: string;
  category: Category;
  /** Fixed exits; a text (e.g. ``"cases[].port, else"``) where the node itself names them. */
  ports: string[] | string;
  schema?: Record<string, unknown>;
}

export interface JourneyNode {
  id: string;
  type: string;
  label?: string | null;
  position?: { x: number; y: number } | null;
  [field: string]: unknown;
}

export interface JourneyEdge {
  from: string;
  to: string;
  port?: string | null;
}

export interface GoalMetric {
  event: string;
  window_seconds: number;
  filters?: unknown[];
}

/** Journey-level settings: everything of a definition but the graph. */
export interface JourneySettings {
  name: string;
  description: string;
  campaign: string | null;
  purpose: "marketing" | "service";
  reentry: "never" | "after_exit" | "always";
  reentry_cooldown_seconds: number;
  priority: number;
  control_percent: number;
  schedule: { start_at: string | null; end_at: string | null };
  goals: GoalMetric[];
  layout: Record<string, unknown>;
}

export interface JourneyDefinition extends JourneySettings {
  nodes: JourneyNode[];
  edges: JourneyEdge[];
}

export interface Problem {
  code: string;
  message: string;
  node?: string | null;
  edge?: number | null;
}

/** What a canvas node carries (React Flow's ``data``). */
export interface CanvasNodeData extends Record<string, unknown> {
  node: JourneyNode;
}

export interface CanvasNode {
  id: string;
  type: "journey";
  position: { x: number; y: number };
  data: CanvasNodeData;
}

export interface CanvasEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string | null;
}

export const CATEGORIES: Category[] = ["entry", "flow", "action", "end"];

/** The port name of a node with a single exit (edges leave ``port`` out). */
export const NEXT = "next";

export const DEFAULT_SETTINGS: JourneySettings = {
  name: "",
  description: "",
  campaign: null,
  purpose: "marketing",
  reentry: "never",
  reentry_cooldown_seconds: 0,
  priority: 0,
  control_percent: 0,
  schedule: { start_at: null, end_at: null },
  goals: [],
  layout: {},
};

const FALLBACK_CATEGORY: Record<string, Category> = {
  delay: "flow",
  wait_event: "flow",
  condition: "flow",
  split: "flow",
  tag_branch: "flow",
  goal: "flow",
  send: "action",
  webhook: "action",
  recommend: "action",
  set_tag: "action",
  set_property: "action",
  advisor_task: "action",
  exit: "end",
};

export function categoryOf(type: string, types: readonly NodeType[] = []): Category {
  const known = types.find((t) => t.type === type);
  if (known) return known.category;
  if (type.startsWith("entry_")) return "entry";
  return FALLBACK_CATEGORY[type] ?? "action";
}

/**
 * The output ports of ``node``: split branches and tag cases (+ ``else``) come from the node
 * itself; other types from node-types (or the documented defaults). ``[NEXT]`` means one exit.
 */
export function outputPorts(node: JourneyNode, types: readonly NodeType[] = []): string[] {
  if (node.type === "exit") return [];
  if (node.type === "split") {
    const branches = Array.isArray(node.branches) ? (node.branches as { port?: unknown }[]) : [];
    return branches.map((b) => String(b.port ?? "")).filter(Boolean);
  }
  if (node.type === "tag_branch") {
    const cases = Array.isArray(node.cases) ? (node.cases as { port?: unknown }[]) : [];
    return [...cases.map((c) => String(c.port ?? "")).filter(Boolean), "else"];
  }
  const known = types.find((t) => t.type === node.type);
  const ports = known && Array.isArray(known.ports) ? known.ports : defaultPorts(node.type);
  if (known && known.category === "end") return [];
  return ports.length === 0 ? [NEXT] : ports;
}

function defaultPorts(type: string): string[] {
  if (type === "wait_event") return ["event", "timeout"];
  if (type === "goal") return ["reached", "timeout"];
  if (type === "condition") return ["yes", "no"];
  return [NEXT];
}

/** True when the node has one unnamed exit (its edges carry no port). */
export function singleExit(ports: readonly string[]): boolean {
  return ports.length === 1 && ports[0] === NEXT;
}

function edgeId(source: string, port: string | null, target: string): string {
  return `${source}:${port ?? NEXT}->${target}`;
}

/** A simple left-to-right layered layout for nodes saved without a position. */
export function autoLayout(nodes: readonly JourneyNode[], edges: readonly JourneyEdge[]): Map<string, { x: number; y: number }> {
  const incoming = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  for (const e of edges) incoming.set(e.to, (incoming.get(e.to) ?? 0) + 1);
  const depth = new Map<string, number>();
  const queue = nodes.filter((n) => (incoming.get(n.id) ?? 0) === 0 || n.type.startsWith("entry_")).map((n) => n.id);
  for (const id of queue) depth.set(id, 0);
  while (queue.length) {
    const id = queue.shift() as string;
    const d = depth.get(id) ?? 0;
    for (const e of edges) {
      if (e.from === id && !depth.has(e.to)) {
        depth.set(e.to, d + 1);
        queue.push(e.to);
      }
    }
  }
  const rows = new Map<number, number>();
  const placed = new Map<string, { x: number; y: number }>();
  for (const n of nodes) {
    const d = depth.get(n.id) ?? 0;
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    placed.set(n.id, { x: 40 + d * 260, y: 40 + row * 140 });
  }
  return placed;
}

/** The definition → settings, canvas nodes and edges. */
export function fromDefinition(definition: Partial<JourneyDefinition> & { nodes: JourneyNode[]; edges: JourneyEdge[] }): {
  settings: JourneySettings;
  nodes: CanvasNode[];
  edges: CanvasEdge[];
} {
  const { nodes, edges, ...rest } = definition;
  const settings: JourneySettings = {
    ...DEFAULT_SETTINGS,
    ...rest,
    schedule: { ...DEFAULT_SETTINGS.schedule, ...(rest.schedule ?? {}) },
    goals: rest.goals ?? [],
    layout: rest.layout ?? {},
  };
  const layout = autoLayout(nodes, edges);
  return {
    settings,
    nodes: nodes.map((node) => {
      const { position, ...fields } = node;
      return {
        id: node.id,
        type: "journey",
        position: position ? { x: position.x, y: position.y } : (layout.get(node.id) ?? { x: 0, y: 0 }),
        data: { node: fields as JourneyNode },
      };
    }),
    edges: edges.map((e) => {
      const port = e.port && e.port !== NEXT ? e.port : null;
      return { id: edgeId(e.from, port, e.to), source: e.from, target: e.to, sourceHandle: port };
    }),
  };
}

/** Drop empty optional fields so pydantic defaults apply (a blank label is no label). */
function cleanNode(node: JourneyNode): JourneyNode {
  const out: JourneyNode = { id: node.id, type: node.type };
  for (const [key, value] of Object.entries(node)) {
    if (key === "id" || key === "type" || key === "position") continue;
    if (value === undefined || value === null || value === "") continue;
    out[key] = value;
  }
  return out;
}

/** Canvas → definition (positions saved on each node, edges in canvas order). */
export function toDefinition(settings: JourneySettings, nodes: readonly CanvasNode[], edges: readonly CanvasEdge[]): JourneyDefinition {
  return {
    ...settings,
    nodes: nodes.map((n) => ({
      ...cleanNode(n.data.node),
      id: n.id,
      position: { x: Math.round(n.position.x), y: Math.round(n.position.y) },
    })),
    edges: edges.map((e) => {
      const edge: JourneyEdge = { from: e.source, to: e.target };
      if (e.sourceHandle && e.sourceHandle !== NEXT) edge.port = e.sourceHandle;
      return edge;
    }),
  };
}

/** A new canvas edge for a connection from ``source``'s ``handle`` (one edge per port). */
export function connect(edges: readonly CanvasEdge[], source: string, handle: string | null, target: string): CanvasEdge[] {
  if (source === target) return [...edges];
  const port = handle && handle !== NEXT ? handle : null;
  const kept = edges.filter((e) => !(e.source === source && (e.sourceHandle ?? null) === port));
  return [...kept, { id: edgeId(source, port, target), source, target, sourceHandle: port }];
}

/** A node id not used yet: ``<type>_<n>``. */
export function freshId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const base = type.replace(/^entry_/, "entry_").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 50);
  for (let n = 1; ; n++) {
    const id = `${base}_${n}`;
    if (!used.has(id)) return id;
  }
}

/** The fields a node of ``type`` starts with (enough for the form to show its defaults). */
export function starterNode(type: string, id: string): JourneyNode {
  const node: JourneyNode = { id, type };
  switch (type) {
    case "entry_segment":
      return { ...node, mode: "once" };
    case "entry_segment_change":
      return { ...node, change: "enter" };
    case "entry_not_done":
      return { ...node, within_seconds: 86400 };
    case "delay":
      return { ...node, mode: "duration", seconds: 86400 };
    case "wait_event":
      return { ...node, timeout_seconds: 86400 };
    case "condition":
      return { ...node, rule: { relation: "and", rules: [] } };
    case "split":
      return {
        ...node,
        branches: [
          { port: "a", weight: 50 },
          { port: "b", weight: 50 },
        ],
      };
    case "tag_branch":
      return { ...node, tag: "", cases: [{ port: "case_1", values: [] }] };
    case "send":
      return { ...node, channel: "sms", content: { text: "" } };
    case "webhook":
      return { ...node, webhook: { url: "", secret: "" } };
    case "recommend":
      return { ...node, n: 3 };
    case "set_tag":
      return { ...node, tag: "", value: "" };
    case "advisor_task":
      return { ...node, title: "", script: "", due_days: 3 };
    case "goal":
      return { ...node, window_seconds: 7 * 86400 };
    default:
      return node;
  }
}

/** Rename a split branch / tag case port and keep its edge attached. */
export function renamePort(edges: readonly CanvasEdge[], nodeId: string, from: string, to: string): CanvasEdge[] {
  return edges.map((e) =>
    e.source === nodeId && e.sourceHandle === from ? { ...e, sourceHandle: to, id: edgeId(nodeId, to, e.target) } : e,
  );
}

/** Edges whose port the node no longer has (after its branches or cases changed). */
export function dropStaleEdges(edges: readonly CanvasEdge[], nodes: readonly CanvasNode[], types: readonly NodeType[] = []): CanvasEdge[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return edges.filter((e) => {
    const source = byId.get(e.source);
    if (!source || !byId.has(e.target)) return false;
    const ports = outputPorts(source.data.node, types);
    return singleExit(ports) ? e.sourceHandle === null : ports.includes(e.sourceHandle ?? "");
  });
}

export interface ProblemMap {
  /** Messages per node id. */
  nodes: Map<string, Problem[]>;
  /** Messages per canvas edge id. */
  edges: Map<string, Problem[]>;
  /** Journey-level problems (no node, no edge). */
  general: Problem[];
}

/** Attach validation problems to the canvas: ``edge`` is an index into the saved edges, which
 *  ``toDefinition`` writes in canvas order; an edge's problem also marks its source node. */
export function mapProblems(problems: readonly Problem[], edges: readonly CanvasEdge[]): ProblemMap {
  const out: ProblemMap = { nodes: new Map(), edges: new Map(), general: [] };
  const add = <K>(map: Map<K, Problem[]>, key: K, problem: Problem) => map.set(key, [...(map.get(key) ?? []), problem]);
  for (const problem of problems) {
    let placed = false;
    if (problem.edge !== undefined && problem.edge !== null) {
      const edge = edges[problem.edge];
      if (edge) {
        add(out.edges, edge.id, problem);
        if (!problem.node) add(out.nodes, edge.source, problem);
        placed = true;
      }
    }
    if (problem.node) {
      add(out.nodes, problem.node, problem);
      placed = true;
    }
    if (!placed) out.general.push(problem);
  }
  return out;
}

/** Warnings (``warn_*``) do not block publishing. */
export function isWarning(problem: Problem): boolean {
  return problem.code.startsWith("warn_");
}

/** The pydantic 422 ``detail`` list → problems placed on nodes: ``["body", "nodes", 3, …]``
 *  names the fourth node. */
export function problemsFromPydantic(detail: unknown, nodes: readonly { id: string }[]): Problem[] {
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => {
    const entry = item as { loc?: unknown[]; msg?: string; type?: string };
    const loc = Array.isArray(entry.loc) ? entry.loc : [];
    const at = loc.indexOf("nodes");
    const index = at >= 0 ? loc[at + 1] : undefined;
    const node = typeof index === "number" ? nodes[index]?.id : undefined;
    const field = loc.slice(at >= 0 ? at + 3 : 1).filter((p) => typeof p === "string" || typeof p === "number").join(".");
    return { code: entry.type ?? "invalid", message: field ? `${field}: ${entry.msg ?? ""}` : (entry.msg ?? ""), node: node ?? null };
  });
}

// -- live counts -------------------------------------------------------------------------------

/** Live numbers of one node, as ``GET /journeys/{id}/stats`` and the analytics stream's
 *  ``counts`` events both carry them. ``counters`` are the engine's: ``entered``,
 *  ``port:<port>`` (named exits only), ``ended:<reason>``, ``goal:<event>`` … */
export interface LiveNodeCounts {
  node_id: string;
  type: string;
  entered: number;
  active: number;
  counters: Record<string, number>;
  messages: Record<string, number>;
  blocked: Record<string, number>;
}

/** A journey's live numbers (``JourneyStats`` server-side, and ``LiveCountsOut``). */
export interface LiveCounts {
  journey_id: number;
  version: number | null;
  entered: number;
  in_flight: number;
  completed: number;
  goals: Record<string, number>;
  nodes: LiveNodeCounts[];
}

/** The server-sent-events stream of a journey's live counts, for one version. */
export function liveStreamPath(journeyId: number, version: number): string {
  return `/api/v1/analytics/journeys/${journeyId}/stream?version=${version}`;
}

/** Customers who left a node through ``port`` (the engine counts named exits only, as
 *  ``port:<port>``; a single ``next`` exit has no counter). */
export function portCount(counters: Record<string, number> | undefined, port: string | null | undefined): number | undefined {
  if (!counters || !port || port === NEXT) return undefined;
  return counters[`port:${port}`];
}

/** The data of a stream ``counts`` event, or null when it is not live counts the canvas can
 *  draw (e.g. a server whose stream lacks the journey totals), so the caller polls instead. */
export function parseLiveCounts(data: string): LiveCounts | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  const numbers = [value.journey_id, value.entered, value.in_flight, value.completed];
  if (!numbers.every((n) => typeof n === "number") || !Array.isArray(value.nodes)) return null;
  const nodesOk = value.nodes.every(
    (n: unknown) =>
      isRecord(n) &&
      typeof n.node_id === "string" &&
      typeof n.entered === "number" &&
      typeof n.active === "number" &&
      [n.counters, n.messages, n.blocked].every(isRecord),
  );
  return nodesOk ? (value as unknown as LiveCounts) : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
