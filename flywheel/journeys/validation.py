"""Graph checks on a journey definition: what the canvas shows and what publish requires.

Structure (no session needed): one or more entries with no incoming edge, no dangling edges,
known ports with one edge each, every node reachable from an entry, every path ends in an
exit, loops only through a waiting node (a delay or a wait with timeout). References (with a
session): segments, content, tags, scenes and channels exist; inline texts pass the claims
checker and the template sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flywheel.journeys.schemas import (
    ENTRY_TYPES,
    Edge,
    JourneyDefinition,
    Node,
    Problem,
    Split,
    TagBranch,
)

NEXT = "next"
#: Node types whose ports are fixed (besides the single ``next``).
FIXED_PORTS: dict[str, tuple[str, ...]] = {
    "wait_event": ("event", "timeout"),
    "goal": ("reached", "timeout"),
    "condition": ("yes", "no"),
    "exit": (),
}
#: Nodes that make time pass: a loop must go through one.
WAITING_TYPES = frozenset({"delay", "wait_event", "goal"})
CONTROL_PORT = "control"


def ports_of(node: Node) -> tuple[str, ...]:
    """The exits of ``node`` (``next`` for single-exit nodes)."""
    if node.type in FIXED_PORTS:
        return FIXED_PORTS[node.type]
    if isinstance(node, Split):
        return tuple(b.port for b in node.branches)
    if isinstance(node, TagBranch):
        return (*(c.port for c in node.cases), "else")
    return (NEXT,)


def optional_ports(node: Node) -> frozenset[str]:
    """Ports that may be left unconnected (a split's control group simply ends)."""
    return frozenset({CONTROL_PORT}) if isinstance(node, Split) else frozenset()


def edge_port(edge: Edge) -> str:
    return edge.port or NEXT


@dataclass(frozen=True)
class Graph:
    """A definition indexed for the engine and the checks."""

    nodes: dict[str, Node]
    #: (node id, port) → target node id
    edges: dict[tuple[str, str], str]
    entries: tuple[str, ...]

    def target(self, node_id: str, port: str) -> str | None:
        return self.edges.get((node_id, port))

    def successors(self, node_id: str) -> list[str]:
        return [t for (s, _), t in self.edges.items() if s == node_id]


def build_graph(definition: JourneyDefinition) -> Graph:
    """Index a definition (assumes :func:`structure_problems` found nothing)."""
    nodes = {n.id: n for n in definition.nodes}
    edges = {(e.source, edge_port(e)): e.target for e in definition.edges}
    entries = tuple(n.id for n in definition.nodes if n.type in ENTRY_TYPES)
    return Graph(nodes=nodes, edges=edges, entries=entries)


def structure_problems(definition: JourneyDefinition) -> list[Problem]:
    """Every structural problem of the graph (empty when it can be published)."""
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}
    for node in definition.nodes:
        if node.id in nodes:
            problems.append(
                Problem(
                    code="duplicate_node",
                    message=f"node id {node.id!r} is used twice",
                    node=node.id,
                )
            )
        nodes[node.id] = node
    entries = [n.id for n in definition.nodes if n.type in ENTRY_TYPES]
    if not entries:
        problems.append(Problem(code="no_entry", message="the journey has no entry node"))

    edges: dict[tuple[str, str], str] = {}
    incoming: dict[str, int] = {}
    for index, edge in enumerate(definition.edges):
        source, target = nodes.get(edge.source), nodes.get(edge.target)
        if source is None or target is None:
            missing = edge.source if source is None else edge.target
            problems.append(
                Problem(
                    code="dangling_edge",
                    message=f"edge points to unknown node {missing!r}",
                    edge=index,
                )
            )
            continue
        port = edge_port(edge)
        if port not in ports_of(source):
            allowed = ", ".join(ports_of(source)) or "none"
            problems.append(
                Problem(
                    code="unknown_port",
                    message=f"{source.type} node {source.id!r} has no exit {port!r} "
                    f"(exits: {allowed})",
                    node=source.id,
                    edge=index,
                )
            )
            continue
        if (source.id, port) in edges:
            problems.append(
                Problem(
                    code="duplicate_edge",
                    message=f"exit {port!r} of {source.id!r} is connected twice",
                    node=source.id,
                    edge=index,
                )
            )
            continue
        if target.type in ENTRY_TYPES:
            problems.append(
                Problem(
                    code="edge_into_entry",
                    message=f"entry node {target.id!r} cannot have incoming edges",
                    node=target.id,
                    edge=index,
                )
            )
            continue
        edges[(source.id, port)] = target.id
        incoming[target.id] = incoming.get(target.id, 0) + 1

    for node in nodes.values():
        for port in ports_of(node):
            if (node.id, port) not in edges and port not in optional_ports(node):
                label = "its exit" if port == NEXT else f"exit {port!r}"
                problems.append(
                    Problem(
                        code="missing_port",
                        message=f"{label} of {node.type} node {node.id!r} is not connected",
                        node=node.id,
                    )
                )

    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for (src, _), dst in edges.items():
        successors[src].append(dst)
    reachable = _reach(entries, successors)
    for node_id in nodes:
        if node_id not in reachable:
            problems.append(
                Problem(
                    code="unreachable",
                    message=f"node {node_id!r} cannot be reached from any entry",
                    node=node_id,
                )
            )
    predecessors: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dsts in successors.items():
        for dst in dsts:
            predecessors[dst].append(src)
    # Nodes that end the journey: exits, and splits whose control group simply ends.
    ends = [n.id for n in nodes.values() if n.type == "exit"] + [
        n.id
        for n in nodes.values()
        if isinstance(n, Split)
        and any(b.port == CONTROL_PORT and (n.id, CONTROL_PORT) not in edges for b in n.branches)
    ]
    finishing = _reach(ends, predecessors)
    for node_id in reachable:
        if node_id not in finishing:
            problems.append(
                Problem(
                    code="no_exit_path",
                    message=f"no path from node {node_id!r} reaches an exit",
                    node=node_id,
                )
            )
    problems.extend(_loops_without_wait(nodes, successors))
    return problems


def _reach(starts: Iterable[str], graph: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [s for s in starts if s in graph]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(graph.get(node, ()))
    return seen


def _loops_without_wait(
    nodes: Mapping[str, Node], successors: Mapping[str, list[str]]
) -> list[Problem]:
    """A cycle made only of instant nodes would spin forever: refuse it."""
    instant = {n for n, node in nodes.items() if node.type not in WAITING_TYPES}
    graph = {n: [t for t in successors[n] if t in instant] for n in instant}
    problems: list[Problem] = []
    for component in _strongly_connected(graph):
        looping = len(component) > 1 or any(n in graph[n] for n in component)
        if looping:
            first = sorted(component)[0]
            problems.append(
                Problem(
                    code="loop_without_delay",
                    message="a loop must pass through a delay or a wait: "
                    + " → ".join(sorted(component)),
                    node=first,
                )
            )
    return problems


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found


ReferenceCheck = Callable[[JourneyDefinition], list[Problem]]


def validate(
    definition: JourneyDefinition, reference_checks: Iterable[ReferenceCheck] = ()
) -> list[Problem]:
    """Structure problems, then whatever the reference checks find."""
    problems = structure_problems(definition)
    for check in reference_checks:
        problems.extend(check(definition))
    return problems


def blocking(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that prevent publishing (``warn_*`` codes do not)."""
    return [p for p in problems if not p.code.startswith("warn_")]
