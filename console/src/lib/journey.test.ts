import { describe, expect, it } from "vitest";
import {
  connect,
  dropStaleEdges,
  fromDefinition,
  liveStreamPath,
  mapProblems,
  outputPorts,
  parseLiveCounts,
  portCount,
  problemsFromPydantic,
  renamePort,
  singleExit,
  toDefinition,
  type JourneyDefinition,
  type LiveCounts,
  type NodeType,
} from "./journey";

const TYPES: NodeType[] = [
  { type: "entry_event", category: "entry", ports: ["next"] },
  { type: "condition", category: "flow", ports: ["yes", "no"] },
  { type: "wait_event", category: "flow", ports: ["event", "timeout"] },
  { type: "split", category: "flow", ports: "branches[].port (a branch named 'control' is the control group)" },
  { type: "tag_branch", category: "flow", ports: "cases[].port, else" },
  { type: "send", category: "action", ports: ["next"] },
  { type: "exit", category: "end", ports: [] },
];

// The canonical journey of issue #5, plus a condition and a split.
const CANONICAL: JourneyDefinition = {
  name: "first purchase thanks",
  description: "",
  campaign: null,
  purpose: "service",
  reentry: "never",
  reentry_cooldown_seconds: 0,
  priority: 0,
  control_percent: 0,
  schedule: { start_at: null, end_at: null },
  goals: [],
  layout: {},
  nodes: [
    { id: "in", type: "entry_event", event: "BuyFund", position: { x: 0, y: 0 } },
    { id: "rich", type: "condition", rule: { relation: "and", rules: [] }, position: { x: 200, y: 0 } },
    {
      id: "ab",
      type: "split",
      branches: [
        { port: "a", weight: 50 },
        { port: "control", weight: 50 },
      ],
      position: { x: 400, y: 0 },
    },
    {
      id: "send",
      type: "send",
      channel: "webhook",
      webhook: { url: "http://127.0.0.1:9/hook", secret: "s3cret" },
      content: { text: "感谢{{ user.name | default('客户') }}的首次申购" },
      position: { x: 600, y: 0 },
    },
    { id: "out", type: "exit", position: { x: 800, y: 0 } },
  ],
  edges: [
    { from: "in", to: "rich" },
    { from: "rich", to: "ab", port: "yes" },
    { from: "rich", to: "out", port: "no" },
    { from: "ab", to: "send", port: "a" },
    { from: "ab", to: "out", port: "control" },
    { from: "send", to: "out" },
  ],
};

describe("definition <-> canvas", () => {
  it("round-trips a definition unchanged", () => {
    const { settings, nodes, edges } = fromDefinition(CANONICAL);
    expect(nodes.map((n) => n.id)).toEqual(["in", "rich", "ab", "send", "out"]);
    expect(edges.find((e) => e.source === "rich" && e.target === "out")?.sourceHandle).toBe("no");
    expect(edges.find((e) => e.source === "in")?.sourceHandle).toBeNull();
    expect(toDefinition(settings, nodes, edges)).toEqual(CANONICAL);
  });

  it("places nodes saved without a position and keeps the moved ones", () => {
    const bare = {
      name: "x",
      nodes: CANONICAL.nodes.map(({ position: _p, ...n }) => n),
      edges: CANONICAL.edges,
    };
    const { nodes } = fromDefinition(bare);
    const xs = new Map(nodes.map((n) => [n.id, n.position.x]));
    expect(xs.get("in")).toBeLessThan(xs.get("rich") ?? 0);
    expect(xs.get("rich")).toBeLessThan(xs.get("ab") ?? 0);
    const moved = nodes.map((n) => (n.id === "in" ? { ...n, position: { x: 12.4, y: 7.6 } } : n));
    const saved = toDefinition(fromDefinition(bare).settings, moved, fromDefinition(bare).edges);
    expect(saved.nodes[0]?.position).toEqual({ x: 12, y: 8 });
    expect(saved.name).toBe("x");
    expect(saved.purpose).toBe("marketing");
  });

  it("drops blank optional fields (a cleared label is no label)", () => {
    const { settings, nodes, edges } = fromDefinition(CANONICAL);
    const first = nodes[0];
    if (!first) throw new Error("no node");
    first.data.node = { ...first.data.node, label: "", event: "BuyFund" };
    expect(toDefinition(settings, nodes, edges).nodes[0]).toEqual({ id: "in", type: "entry_event", event: "BuyFund", position: { x: 0, y: 0 } });
  });
});

describe("ports", () => {
  it("come from node-types, or from the node's own branches and cases", () => {
    expect(outputPorts({ id: "c", type: "condition" }, TYPES)).toEqual(["yes", "no"]);
    expect(outputPorts({ id: "w", type: "wait_event" }, TYPES)).toEqual(["event", "timeout"]);
    expect(outputPorts({ id: "s", type: "send" }, TYPES)).toEqual(["next"]);
    expect(singleExit(outputPorts({ id: "s", type: "send" }, TYPES))).toBe(true);
    expect(outputPorts({ id: "x", type: "exit" }, TYPES)).toEqual([]);
    expect(outputPorts(CANONICAL.nodes[2] ?? { id: "", type: "" }, TYPES)).toEqual(["a", "control"]);
    const tags = { id: "t", type: "tag_branch", cases: [{ port: "gold", values: ["金"] }, { port: "silver", values: ["银"] }] };
    expect(outputPorts(tags, TYPES)).toEqual(["gold", "silver", "else"]);
    // Without node-types (older server): the documented defaults.
    expect(outputPorts({ id: "g", type: "goal" })).toEqual(["reached", "timeout"]);
  });

  it("one edge per port: a new connection replaces the old one", () => {
    const { edges } = fromDefinition(CANONICAL);
    const next = connect(edges, "rich", "no", "send");
    expect(next.filter((e) => e.source === "rich")).toHaveLength(2);
    expect(next.find((e) => e.source === "rich" && e.sourceHandle === "no")?.target).toBe("send");
    expect(connect(edges, "send", "next", "send")).toEqual(edges); // no self loop
    expect(connect([], "in", "next", "out")[0]?.sourceHandle).toBeNull();
  });

  it("renaming a branch keeps its edge; removing it drops the edge", () => {
    const { nodes, edges } = fromDefinition(CANONICAL);
    const renamed = renamePort(edges, "ab", "a", "offer");
    expect(renamed.find((e) => e.source === "ab" && e.target === "send")?.sourceHandle).toBe("offer");
    const split = nodes.find((n) => n.id === "ab");
    if (!split) throw new Error("no split");
    split.data.node = { ...split.data.node, branches: [{ port: "offer", weight: 50 }, { port: "b", weight: 50 }] };
    const kept = dropStaleEdges(renamed, nodes, TYPES);
    expect(kept.some((e) => e.source === "ab" && e.sourceHandle === "control")).toBe(false);
    expect(kept.some((e) => e.source === "ab" && e.sourceHandle === "offer")).toBe(true);
    expect(kept).toHaveLength(edges.length - 1);
  });
});

describe("validation mapping", () => {
  it("puts node problems on nodes, edge problems on edges and their source", () => {
    const { edges } = fromDefinition(CANONICAL);
    const map = mapProblems(
      [
        { code: "unreachable", message: "node out is unreachable", node: "out" },
        { code: "unknown_port", message: "edge 2 uses port maybe", edge: 2 },
        { code: "no_entry", message: "no entry node" },
        { code: "dangling_edge", message: "edge 99", edge: 99 },
      ],
      edges,
    );
    expect(map.nodes.get("out")?.[0]?.code).toBe("unreachable");
    const third = edges[2];
    expect(third && map.edges.get(third.id)?.[0]?.code).toBe("unknown_port");
    expect(map.nodes.get("rich")?.[0]?.code).toBe("unknown_port");
    expect(map.general.map((p) => p.code)).toEqual(["no_entry", "dangling_edge"]);
  });

  it("reads pydantic errors back onto the node they name", () => {
    const problems = problemsFromPydantic(
      [
        { loc: ["body", "nodes", 3, "send", "channel"], msg: "Field required", type: "missing" },
        { loc: ["body", "name"], msg: "String should have at least 1 character", type: "string_too_short" },
      ],
      CANONICAL.nodes,
    );
    expect(problems[0]).toEqual({ code: "missing", message: "channel: Field required", node: "send" });
    expect(problems[1]?.node).toBeNull();
    expect(problems[1]?.message).toContain("name");
  });
});

describe("live counts", () => {
  const CONDITION = { entered: 5, "port:yes": 4, "port:no": 1 };
  // A `counts` event of GET /api/v1/analytics/journeys/{id}/stream, as the server sends it.
  const ENTRY = { node_id: "in", type: "entry_event", entered: 5, active: 0, counters: { entered: 5 }, messages: {}, blocked: {} };
  const EVENT: LiveCounts = {
    journey_id: 12,
    version: 1,
    entered: 5,
    in_flight: 2,
    completed: 3,
    goals: { BuyFund: 1 },
    nodes: [
      ENTRY,
      { node_id: "c", type: "condition", entered: 5, active: 0, counters: CONDITION, messages: { sent: 2 }, blocked: {} },
    ],
  };

  it("opens the stream of the live version", () => {
    expect(liveStreamPath(12, 3)).toBe("/api/v1/analytics/journeys/12/stream?version=3");
  });

  it("reads a counts event as the canvas's live counts", () => {
    const counts = parseLiveCounts(JSON.stringify(EVENT));
    expect(counts).toEqual(EVENT);
    expect(counts?.nodes[1]?.counters["port:yes"]).toBe(4);
  });

  it("refuses what the canvas cannot draw, so it polls instead", () => {
    expect(parseLiveCounts("not json")).toBeNull();
    expect(parseLiveCounts("null")).toBeNull();
    // A stream without the journey totals (an older server).
    const { entered: _e, in_flight: _f, completed: _c, ...nodesOnly } = EVENT;
    expect(parseLiveCounts(JSON.stringify(nodesOnly))).toBeNull();
    const noEntered = { ...EVENT, nodes: [{ ...ENTRY, entered: undefined }] };
    expect(parseLiveCounts(JSON.stringify(noEntered))).toBeNull();
    const noMessages = { ...EVENT, nodes: [{ ...ENTRY, messages: null }] };
    expect(parseLiveCounts(JSON.stringify(noMessages))).toBeNull();
  });

  it("counts a named exit from its port counter; a single exit has none", () => {
    const counters: Record<string, number> = CONDITION;
    expect(portCount(counters, "yes")).toBe(4);
    expect(portCount(counters, "no")).toBe(1);
    expect(portCount(counters, "else")).toBeUndefined();
    expect(portCount(counters, "next")).toBeUndefined();
    expect(portCount(counters, null)).toBeUndefined();
    expect(portCount(undefined, "yes")).toBeUndefined();
  });
});
