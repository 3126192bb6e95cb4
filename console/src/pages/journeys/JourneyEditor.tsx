// The journey canvas: palette (GET /journeys/node-types) dragged onto a React Flow canvas,
// a form per node, journey settings, validation on the canvas, save, publish, lifecycle, and
// live per-node counts (pushed by GET /analytics/journeys/{id}/stream; GET /journeys/{id}/stats
// polled when the stream fails).
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { Alert, App as AntApp, Badge, Button, Card, Drawer, Empty, Radio, Space, Spin, Tag, Tooltip, Typography } from "antd";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiAlert } from "../../components/ApiAlert";
import { ApiError, api, errorText } from "../../lib/api";
import { useAuth } from "../../lib/auth";
import { useI18n } from "../../lib/i18n";
import {
  CATEGORIES,
  connect,
  DEFAULT_SETTINGS,
  dropStaleEdges,
  freshId,
  fromDefinition,
  isWarning,
  liveStreamPath,
  mapProblems,
  parseLiveCounts,
  portCount,
  problemsFromPydantic,
  renamePort,
  starterNode,
  toDefinition,
  type CanvasEdge,
  type CanvasNode,
  type JourneyDefinition,
  type JourneyNode,
  type JourneySettings,
  type NodeType,
  type Problem,
} from "../../lib/journey";
import { useSchema } from "../../lib/schema";
import type { Segment } from "../../lib/types";
import { useApi } from "../../lib/useApi";
import { CanvasContext, CATEGORY_COLORS, JourneyNodeView, nodeTypeLabel, type NodeStats } from "./JourneyNodeView";
import { NodeForm, type Pickers } from "./NodeForm";
import { PublishRequestBanner } from "./PublishRequestBanner";
import { SettingsForm } from "./SettingsForm";
import { STATUS_COLORS } from "./status";
import type { JourneyOut, JourneyStats, ValidationOut } from "./types";

const NODE_TYPES = { journey: JourneyNodeView };
const DRAG_MIME = "application/x-flywheel-node";
const STATS_EVERY_MS = 5000;

function usePickers(): Pickers {
  const { schema } = useSchema();
  const segments = useApi((s) => api.get<Segment[]>("/api/v1/segments", undefined, s).catch(() => []), []);
  const contents = useApi((s) => api.get<Pickers["contents"]>("/api/v1/content/items", undefined, s).catch(() => []), []);
  const tags = useApi((s) => api.get<Pickers["tags"]>("/api/v1/tags", undefined, s).catch(() => []), []);
  const channels = useApi((s) => api.get<{ name: string }[]>("/api/v1/channels", undefined, s).catch(() => []), []);
  const scenes = useApi((s) => api.get<Pickers["scenes"]>("/api/v1/recommend/scenes", undefined, s).catch(() => []), []);
  return {
    schema,
    channels: (channels.data ?? []).map((c) => c.name),
    segments: segments.data ?? [],
    contents: contents.data ?? [],
    tags: tags.data ?? [],
    scenes: scenes.data ?? [],
  };
}

function Palette({ types }: { types: NodeType[] }) {
  const { t } = useI18n();
  return (
    <div data-testid="palette" style={{ width: 170, overflowY: "auto", paddingRight: 8 }}>
      {CATEGORIES.map((category) => (
        <div key={category} style={{ marginBottom: 8 }}>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {t(`journeys.category.${category}`)}
          </Typography.Text>
          {types
            .filter((type) => type.category === category)
            .map((type) => (
              <div
                key={type.type}
                draggable
                data-testid={`palette-${type.type}`}
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_MIME, type.type);
                  e.dataTransfer.effectAllowed = "move";
                }}
                style={{
                  cursor: "grab",
                  border: `1px solid ${CATEGORY_COLORS[category]}`,
                  borderLeft: `4px solid ${CATEGORY_COLORS[category]}`,
                  borderRadius: 4,
                  padding: "3px 6px",
                  margin: "4px 0",
                  background: "#fff",
                  fontSize: 12,
                }}
              >
                {nodeTypeLabel(t, type.type)}
              </div>
            ))}
        </div>
      ))}
    </div>
  );
}

function download(name: string, value: unknown) {
  const blob = new Blob([JSON.stringify(value, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

function Editor({ journeyId }: { journeyId: number | null }) {
  const { t } = useI18n();
  const { can } = useAuth();
  const { message, modal } = AntApp.useApp();
  const navigate = useNavigate();
  const flow = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);
  const pickers = usePickers();
  const nodeTypes = useApi((s) => api.get<NodeType[]>("/api/v1/journeys/node-types", undefined, s), []);
  const types = useMemo(() => nodeTypes.data ?? [], [nodeTypes.data]);
  const [journey, setJourney] = useState<JourneyOut | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [settings, setSettings] = useState<JourneySettings>({ ...DEFAULT_SETTINGS, name: "" });
  const [nodes, setNodes] = useState<CanvasNode[]>([]);
  const [edges, setEdges] = useState<CanvasEdge[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [problems, setProblems] = useState<Problem[] | null>(null);
  /** The last validation said the journey can be published (warnings aside). */
  const [valid, setValid] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [stats, setStats] = useState<JourneyStats | null>(null);
  const [statsError, setStatsError] = useState<unknown>(null);
  /** How live counts arrive: the analytics stream, or /stats polled once the stream failed. */
  const [liveSource, setLiveSource] = useState<"stream" | "poll">("stream");
  const [dirty, setDirty] = useState(false);
  const writable = can("journeys:write");

  const load = useCallback(
    (out: JourneyOut) => {
      setJourney(out);
      const graph = fromDefinition(out.definition as unknown as JourneyDefinition);
      setSettings(graph.settings);
      setNodes(graph.nodes);
      setEdges(graph.edges);
      setDirty(false);
    },
    [],
  );

  useEffect(() => {
    if (journeyId === null) {
      setSettingsOpen(true);
      return;
    }
    const controller = new AbortController();
    api
      .get<JourneyOut>(`/api/v1/journeys/${journeyId}`, undefined, controller.signal)
      .then(load)
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setLoadError(e);
      });
    return () => controller.abort();
  }, [journeyId, load]);

  // Live per-node counts while the journey runs: pushed by the analytics stream (EventSource
  // sends the HttpOnly session cookie set at login, not the bearer token); on any stream error
  // the canvas polls /stats instead for as long as it stays open. One mechanism at a time.
  const live = journey && journey.live_version !== null;
  const liveVersion = journey?.live_version?.number ?? null;
  useEffect(() => {
    if (liveVersion === null || journeyId === null) return;
    if (liveSource === "stream" && typeof EventSource !== "undefined") {
      const source = new EventSource(liveStreamPath(journeyId, liveVersion), { withCredentials: true });
      const fallBack = () => {
        source.close();
        setLiveSource("poll");
      };
      source.addEventListener("counts", (event: MessageEvent<string>) => {
        const counts = parseLiveCounts(event.data);
        if (counts) {
          setStats(counts);
          setStatsError(null);
        } else fallBack();
      });
      source.onerror = fallBack;
      return () => source.close();
    }
    let stopped = false;
    const poll = () =>
      api
        .get<JourneyStats>(`/api/v1/journeys/${journeyId}/stats`)
        .then((s) => {
          if (!stopped) {
            setStats(s);
            setStatsError(null);
          }
        })
        .catch((e: unknown) => !stopped && setStatsError(e));
    void poll();
    const timer = window.setInterval(() => void poll(), STATS_EVERY_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [liveVersion, journeyId, liveSource]);

  const problemMap = useMemo(() => mapProblems(problems ?? [], edges), [problems, edges]);
  const statsMap = useMemo(() => new Map<string, NodeStats>((stats?.nodes ?? []).map((n) => [n.node_id, n])), [stats]);
  const context = useMemo(() => ({ types, problems: problemMap.nodes, stats: statsMap }), [types, problemMap, statsMap]);
  const flowEdges = useMemo(
    () =>
      edges.map((e) => {
        const bad = problemMap.edges.get(e.id);
        const count = portCount(statsMap.get(e.source)?.counters, e.sourceHandle);
        return {
          ...e,
          animated: Boolean(live),
          label: bad ? bad.map((p) => p.message).join("; ") : count !== undefined ? String(count) : undefined,
          style: bad ? { stroke: "#ff4d4f", strokeWidth: 2 } : undefined,
          labelStyle: bad ? { fill: "#cf1322" } : undefined,
        };
      }),
    [edges, problemMap, statsMap, live],
  );

  const changed = () => {
    setDirty(true);
    setValid(false);
  };

  const onNodesChange = useCallback((changes: NodeChange[]) => {
    if (changes.some((c) => c.type !== "select" && c.type !== "dimensions")) setDirty(true);
    setNodes((current) => applyNodeChanges(changes, current as never) as unknown as CanvasNode[]);
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    if (changes.some((c) => c.type !== "select")) setDirty(true);
    setEdges((current) => applyEdgeChanges(changes, current as never) as unknown as CanvasEdge[]);
  }, []);
  const onConnect = useCallback((c: Connection) => {
    setEdges((current) => connect(current, c.source, c.sourceHandle ?? null, c.target));
    setDirty(true);
  }, []);

  const addNode = (type: string, position: { x: number; y: number }) => {
    setNodes((current) => {
      const id = freshId(type, current.map((n) => n.id));
      setSelected(id);
      return [...current, { id, type: "journey", position, data: { node: starterNode(type, id) } }];
    });
    changed();
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    const type = event.dataTransfer.getData(DRAG_MIME);
    if (!type || !writable) return;
    addNode(type, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
  };

  const selectedNode = nodes.find((n) => n.id === selected) ?? null;
  const updateNode = (next: JourneyNode) => {
    setNodes((current) => {
      const updated = current.map((n) => (n.id === next.id ? { ...n, data: { node: next } } : n));
      setEdges((es) => dropStaleEdges(es, updated, types));
      return updated;
    });
    changed();
  };

  const definition = () => toDefinition(settings, nodes, edges);

  const showProblems = (found: Problem[], isValid = false) => {
    setProblems(found);
    setValid(isValid);
    return found;
  };

  const problemsOf = (error: unknown): Problem[] | null => {
    if (!(error instanceof ApiError) || error.status !== 422) return null;
    const detail = error.detail;
    if (Array.isArray(detail)) return problemsFromPydantic(detail, nodes.map((n) => ({ id: n.id })));
    return null;
  };

  const validate = async () => {
    setBusy("validate");
    try {
      const out = await api.post<ValidationOut>("/api/v1/journeys/validate", definition());
      showProblems(out.problems, out.valid);
      if (out.valid && out.problems.length === 0) void message.success(t("journeys.valid"));
      else if (out.valid) void message.warning(t("journeys.validWithWarnings"));
      else void message.error(t("journeys.invalid", { n: out.problems.filter((p) => !isWarning(p)).length }));
    } catch (error) {
      const found = problemsOf(error);
      if (found) showProblems(found);
      else void message.error(errorText(error));
    } finally {
      setBusy(null);
    }
  };

  const save = async (): Promise<JourneyOut | null> => {
    setBusy("save");
    try {
      const out = journey
        ? await api.put<JourneyOut>(`/api/v1/journeys/${journey.id}`, definition())
        : await api.post<JourneyOut>("/api/v1/journeys", definition());
      setJourney(out);
      setDirty(false);
      setProblems(null);
      void message.success(t("journeys.saved"));
      if (!journey) navigate(`/journeys/${out.id}`, { replace: true });
      return out;
    } catch (error) {
      const found = problemsOf(error);
      if (found) showProblems(found);
      void message.error(errorText(error));
      return null;
    } finally {
      setBusy(null);
    }
  };

  const lifecycle = async (action: "pause" | "resume" | "stop") => {
    if (!journey) return;
    setBusy(action);
    try {
      load(await api.post<JourneyOut>(`/api/v1/journeys/${journey.id}/${action}`));
      void message.success(t(`journeys.done.${action}`));
    } catch (error) {
      void message.error(errorText(error));
    } finally {
      setBusy(null);
    }
  };

  const publishNow = async (saved: JourneyOut, inFlight: "drain" | "migrate") => {
    setBusy("publish");
    try {
      const out = await api.post<JourneyOut>(`/api/v1/journeys/${saved.id}/publish`, { in_flight: inFlight });
      load(out);
      setProblems(null);
      // Four-eyes setting: the answer is a request awaiting a second person, not a new version.
      if (out.publish_request) void message.info(t("journeys.publishRequested"));
      else void message.success(t("journeys.published", { n: out.live_version?.number ?? "" }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        const body = error.body as { problems?: Problem[]; detail?: { problems?: Problem[] } } | null;
        const raw = body?.problems ?? (Array.isArray(body?.detail) ? undefined : body?.detail?.problems);
        const found = raw ?? problemsOf(error) ?? [];
        showProblems(found);
      }
      void message.error(errorText(error));
    } finally {
      setBusy(null);
    }
  };

  const publish = async () => {
    const saved = dirty || !journey ? await save() : journey;
    if (!saved) return;
    if (saved.live_version) {
      let choice: "drain" | "migrate" = "drain";
      modal.confirm({
        title: t("journeys.publishNew", { n: saved.live_version.number }),
        content: (
          <Radio.Group
            defaultValue="drain"
            onChange={(e) => (choice = e.target.value as "drain" | "migrate")}
            data-testid="publish-in-flight"
            options={[
              { value: "drain", label: t("journeys.drain") },
              { value: "migrate", label: t("journeys.migrate") },
            ]}
          />
        ),
        okText: t("journeys.publish"),
        onOk: () => publishNow(saved, choice),
      });
    } else {
      await publishNow(saved, "drain");
    }
  };

  const exportJson = async () => {
    if (!journey) {
      download(`${settings.name || "journey"}.json`, definition());
      return;
    }
    try {
      download(`journey-${journey.id}.json`, await api.get<unknown>(`/api/v1/journeys/${journey.id}/export`));
    } catch (error) {
      void message.error(errorText(error));
    }
  };

  if (loadError) return <ApiAlert error={loadError} path={`/api/v1/journeys/${journeyId}`} />;
  if (journeyId !== null && !journey) return <Spin />;
  const status = journey?.status ?? "draft";
  const general = problemMap.general;

  return (
    <div data-testid="journey-editor">
      <Space style={{ marginBottom: 8, width: "100%", justifyContent: "space-between" }} wrap>
        <Space wrap>
          <Link to="/journeys">← {t("journeys.title")}</Link>
          <Typography.Title level={4} style={{ margin: 0 }} data-testid="journey-name">
            {settings.name || t("journeys.untitled")}
          </Typography.Title>
          <Tag color={STATUS_COLORS[status] ?? "default"} data-testid="journey-status">
            {t(`journeys.status.${status}` as never) ?? status}
          </Tag>
          {journey?.live_version && <Tag>{t("journeys.liveVersion", { n: journey.live_version.number })}</Tag>}
          {dirty && <Badge status="warning" text={t("journeys.unsaved")} />}
        </Space>
        <Space wrap>
          <Button onClick={() => setSettingsOpen(true)} data-testid="journey-settings">
            {t("journeys.settings")}
          </Button>
          <Button onClick={() => void validate()} loading={busy === "validate"} data-testid="journey-validate">
            {t("journeys.validate")}
          </Button>
          {writable && (
            <Button onClick={() => void save()} loading={busy === "save"} disabled={!settings.name.trim()} data-testid="journey-save">
              {t("journeys.saveDraft")}
            </Button>
          )}
          {can("journeys:publish") && status !== "stopped" && (
            <Button type="primary" onClick={() => void publish()} loading={busy === "publish"} disabled={!settings.name.trim() || (dirty && !writable)} data-testid="journey-publish">
              {t("journeys.publish")}
            </Button>
          )}
          {can("journeys:publish") && status === "published" && (
            <Button onClick={() => void lifecycle("pause")} loading={busy === "pause"} data-testid="journey-pause">
              {t("journeys.pause")}
            </Button>
          )}
          {can("journeys:publish") && status === "paused" && (
            <Button onClick={() => void lifecycle("resume")} loading={busy === "resume"} data-testid="journey-resume">
              {t("journeys.resume")}
            </Button>
          )}
          {can("journeys:publish") && (status === "published" || status === "paused") && (
            <Button
              danger
              onClick={() => modal.confirm({ title: t("journeys.stopConfirm"), onOk: () => lifecycle("stop") })}
              loading={busy === "stop"}
              data-testid="journey-stop"
            >
              {t("journeys.stop")}
            </Button>
          )}
          <Button onClick={() => void exportJson()} data-testid="journey-export">
            {t("journeys.export")}
          </Button>
          {journey && (
            <Link to={`/journeys/${journey.id}/report`} data-testid="journey-report-link">
              {t("journeys.report")}
            </Link>
          )}
        </Space>
      </Space>
      <ApiAlert error={nodeTypes.error} path="/api/v1/journeys/node-types" />
      {journey && <PublishRequestBanner journey={journey} onChanged={load} />}
      {general.length > 0 && (
        <Alert
          type={general.every(isWarning) ? "warning" : "error"}
          showIcon
          style={{ marginBottom: 8 }}
          data-testid="journey-problems"
          title={general.map((p) => p.message).join("; ")}
        />
      )}
      {problems && valid && (
        <Alert
          type="success"
          showIcon
          title={problems.length ? t("journeys.validWithWarnings") : t("journeys.valid")}
          style={{ marginBottom: 8 }}
          data-testid="journey-valid"
        />
      )}
      {live && (
        <Typography.Text type="secondary" data-testid="journey-live" data-live-source={liveSource}>
          {stats
            ? t("journeys.liveLine", { entered: stats.entered, inFlight: stats.in_flight, completed: stats.completed }) +
              t(liveSource === "stream" ? "journeys.liveStream" : "journeys.livePolled")
            : t("app.loading")}
        </Typography.Text>
      )}
      <ApiAlert error={statsError} path={`/api/v1/journeys/${journeyId}/stats`} />
      <div style={{ display: "flex", gap: 8, height: "calc(100vh - 220px)", minHeight: 480 }}>
        {writable && <Palette types={types} />}
        <div ref={wrapper} style={{ flex: 1, border: "1px solid #f0f0f0", borderRadius: 8 }} onDragOver={(e) => e.preventDefault()} onDrop={onDrop} data-testid="canvas">
          <CanvasContext.Provider value={context}>
            {nodes.length === 0 && (
              <div style={{ position: "absolute", margin: 24, zIndex: 5, pointerEvents: "none" }}>
                <Empty description={t("journeys.dropHere")} />
              </div>
            )}
            <ReactFlow
              nodes={nodes}
              edges={flowEdges}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onNodeClick={(_, node) => setSelected(node.id)}
              onPaneClick={() => setSelected(null)}
              nodesDraggable={writable}
              nodesConnectable={writable}
              elementsSelectable
              deleteKeyCode={writable ? ["Delete", "Backspace"] : null}
              fitView
              fitViewOptions={{ maxZoom: 1 }}
              proOptions={{ hideAttribution: true }}
            >
              <Background />
              <Controls />
              <MiniMap pannable zoomable />
            </ReactFlow>
          </CanvasContext.Provider>
        </div>
      </div>
      <Drawer
        open={selectedNode !== null}
        onClose={() => setSelected(null)}
        mask={false}
        size={420}
        title={selectedNode ? `${nodeTypeLabel(t, selectedNode.data.node.type)} · ${selectedNode.id}` : ""}
        extra={
          writable &&
          selectedNode && (
            <Button
              danger
              size="small"
              data-testid="node-delete"
              onClick={() => {
                setNodes((c) => c.filter((n) => n.id !== selectedNode.id));
                setEdges((c) => c.filter((e) => e.source !== selectedNode.id && e.target !== selectedNode.id));
                setSelected(null);
                changed();
              }}
            >
              {t("rules.remove")}
            </Button>
          )
        }
        data-testid="node-drawer"
      >
        {selectedNode && (
          <>
            {(problemMap.nodes.get(selectedNode.id) ?? []).map((p, i) => (
              <Alert key={i} type={isWarning(p) ? "warning" : "error"} title={`${p.message} (${p.code})`} style={{ marginBottom: 8 }} />
            ))}
            <fieldset disabled={!writable} style={{ border: 0, padding: 0, margin: 0 }}>
              <NodeForm
                key={selectedNode.id}
                node={selectedNode.data.node}
                onChange={updateNode}
                onPortRenamed={(from, to) => setEdges((c) => renamePort(c, selectedNode.id, from, to))}
                pickers={pickers}
              />
            </fieldset>
            {statsMap.get(selectedNode.id) && (
              <Card size="small" title={t("journeys.liveCounts")}>
                <pre style={{ fontSize: 12, margin: 0 }}>{JSON.stringify(statsMap.get(selectedNode.id), null, 1)}</pre>
              </Card>
            )}
          </>
        )}
      </Drawer>
      <Drawer open={settingsOpen} onClose={() => setSettingsOpen(false)} size={460} title={t("journeys.settings")} data-testid="settings-drawer">
        <fieldset disabled={!writable} style={{ border: 0, padding: 0, margin: 0 }}>
          <SettingsForm
            value={settings}
            schema={pickers.schema}
            onChange={(next) => {
              setSettings(next);
              changed();
            }}
          />
        </fieldset>
        <Tooltip title={t("journeys.settingsHelp")}>
          <Button type="primary" onClick={() => setSettingsOpen(false)} data-testid="settings-done">
            {t("journeys.done")}
          </Button>
        </Tooltip>
      </Drawer>
    </div>
  );
}

export default function JourneyEditor() {
  const params = useParams();
  const id = params.id && params.id !== "new" ? Number(params.id) : null;
  return (
    <ReactFlowProvider>
      <Editor key={id ?? "new"} journeyId={id} />
    </ReactFlowProvider>
  );
}
