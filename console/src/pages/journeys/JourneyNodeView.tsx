// One node on the journey canvas: its label and summary, a target handle (except entries), one
// source handle per output port, problems outlined in red, and live counts when published.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { Tooltip } from "antd";
import { createContext, useContext } from "react";
import { useI18n, type MessageKey } from "../../lib/i18n";
import { categoryOf, isWarning, NEXT, outputPorts, portCount, singleExit, type CanvasNodeData, type LiveNodeCounts, type NodeType, type Problem } from "../../lib/journey";

/** A node's live numbers (polled from /stats or pushed by the analytics stream). */
export type NodeStats = LiveNodeCounts;

/** What every node view reads besides its own data: node-types, problems, live stats. */
export interface CanvasContextValue {
  types: NodeType[];
  problems: Map<string, Problem[]>;
  stats: Map<string, NodeStats>;
}

export const CanvasContext = createContext<CanvasContextValue>({ types: [], problems: new Map(), stats: new Map() });

export const CATEGORY_COLORS: Record<string, string> = {
  entry: "#1677ff",
  flow: "#fa8c16",
  action: "#52c41a",
  end: "#8c8c8c",
};

export function nodeTypeLabel(t: (key: MessageKey) => string, type: string): string {
  const key = `jnode.${type}` as MessageKey;
  const text = t(key);
  return text === undefined || text === key ? type : text;
}

export function portLabel(t: (key: MessageKey) => string, port: string): string {
  const key = `jport.${port}` as MessageKey;
  const text = t(key);
  return text === undefined || text === key ? port : text;
}

function summary(node: CanvasNodeData["node"]): string {
  const n = node as Record<string, unknown>;
  switch (node.type) {
    case "entry_segment":
    case "entry_segment_change":
      return n.segment_id ? `#${String(n.segment_id)}` : "";
    case "entry_event":
    case "wait_event":
    case "goal":
      return String(n.event ?? "");
    case "entry_not_done":
      return `${String(n.event ?? "")} ⇏ ${String(n.not_event ?? "")}`;
    case "send": {
      const content = (n.content ?? {}) as Record<string, unknown>;
      const what = content.content_id ? `#${String(content.content_id)}` : String(content.text ?? "").slice(0, 18);
      return `${String(n.channel ?? "")} · ${what}`;
    }
    case "recommend":
      return String(n.scene ?? "");
    case "set_tag":
      return `${String(n.tag ?? "")}=${String(n.value ?? "")}`;
    case "tag_branch":
      return String(n.tag ?? "");
    case "advisor_task":
      return String(n.title ?? "");
    case "delay":
      return String(n.mode ?? "");
    default:
      return "";
  }
}

export function JourneyNodeView({ id, data, selected }: NodeProps<Node<CanvasNodeData>>) {
  const { t } = useI18n();
  const { types, problems, stats } = useContext(CanvasContext);
  const node = data.node;
  const category = categoryOf(node.type, types);
  const ports = outputPorts(node, types);
  const mine = problems.get(id) ?? [];
  const errors = mine.filter((p) => !isWarning(p));
  const live = stats.get(id);
  const color = CATEGORY_COLORS[category] ?? "#999";
  const border = errors.length ? "2px solid #ff4d4f" : mine.length ? "2px solid #faad14" : selected ? `2px solid ${color}` : "1px solid #d9d9d9";
  return (
    <div
      data-testid={`node-${id}`}
      data-problem={errors.length ? "error" : mine.length ? "warning" : "none"}
      style={{ background: "#fff", border, borderRadius: 8, minWidth: 170, maxWidth: 220, boxShadow: "0 1px 3px rgba(0,0,0,.08)", fontSize: 12 }}
    >
      {category !== "entry" && <Handle type="target" position={Position.Left} data-testid={`in-${id}`} />}
      <div style={{ background: color, color: "#fff", padding: "3px 8px", borderRadius: "6px 6px 0 0", display: "flex", justifyContent: "space-between" }}>
        <span>{nodeTypeLabel(t, node.type)}</span>
        <span style={{ opacity: 0.8 }}>{id}</span>
      </div>
      <div style={{ padding: "4px 8px" }}>
        {node.label ? <div style={{ fontWeight: 600 }}>{node.label}</div> : null}
        <div style={{ color: "#666", whiteSpace: "nowrap", overflow: "hidden", textOverflow: "ellipsis" }}>{summary(node) || "\u00a0"}</div>
        {live && (
          <div data-testid={`stats-${id}`} style={{ marginTop: 2, color: "#1677ff" }}>
            {t("journeys.statEntered")} {live.entered.toLocaleString()} · {t("journeys.statActive")} {live.active.toLocaleString()}
            {Object.entries(live.messages).length > 0 && (
              <div>{Object.entries(live.messages).map(([k, v]) => `${k} ${v}`).join(" · ")}</div>
            )}
            {Object.values(live.blocked).reduce((a, b) => a + b, 0) > 0 && (
              <div style={{ color: "#cf1322" }}>
                {t("journeys.statBlocked")} {Object.values(live.blocked).reduce((a, b) => a + b, 0)}
              </div>
            )}
          </div>
        )}
        {mine.map((p, i) => (
          <div key={i} data-testid={`problem-${id}`} style={{ color: isWarning(p) ? "#d48806" : "#cf1322", marginTop: 2 }}>
            {p.message}
          </div>
        ))}
      </div>
      {!singleExit(ports) && ports.length > 0 && (
        <div style={{ borderTop: "1px dashed #eee", padding: "2px 0" }}>
          {ports.map((port) => (
            <div key={port} style={{ position: "relative", textAlign: "right", paddingRight: 12, height: 18, lineHeight: "18px", color: "#555" }}>
              <Tooltip title={port}>
                <span>
                  {portLabel(t, port)}
                  {portCount(live?.counters, port) !== undefined ? ` (${portCount(live?.counters, port)})` : ""}
                </span>
              </Tooltip>
              <Handle type="source" id={port} position={Position.Right} data-testid={`out-${id}-${port}`} style={{ top: 9 }} />
            </div>
          ))}
        </div>
      )}
      {singleExit(ports) && <Handle type="source" position={Position.Right} data-testid={`out-${id}-${NEXT}`} />}
    </div>
  );
}
