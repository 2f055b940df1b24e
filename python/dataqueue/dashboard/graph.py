"""The dependency graph around one job: collected breadth-first (bounded), collapsed when large,
laid out on the server with grandalf's Sugiyama layout and drawn as SVG.

Nodes are jobs, tag-drain barriers (a job's ``depends_on_tags``, with the active jobs that hold
it) and, in large graphs, groups ("37 x resize / completed") standing for collapsed jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from markupsafe import escape

from dataqueue.dashboard.data import cascade_root, gather_bounded
from dataqueue.lifecycle import ACTIVE_STATUSES
from dataqueue.queue_async import AsyncJobQueue
from dataqueue.records import JobRecord, JobStatus

__all__ = ["Graph", "collect_graph", "layout", "render_svg"]

#: Jobs loaded around the focus job at most; edges to jobs beyond become "+N more" nodes.
MAX_NODES: Final = 200
#: Above this many jobs the graph collapses everything but the focus and its neighbours into
#: (job type, status) groups.
COLLAPSE_ABOVE: Final = 60
#: In a collapsed graph, the focus job's first neighbours on each side stay individual nodes.
KEEP_NEIGHBOURS: Final = 12
#: Cancelled jobs whose events are read to find their cascade root, at most.
MAX_EVENT_LOOKUPS: Final = 50
#: Holders listed per tag-drain barrier.
MAX_HOLDERS: Final = 20

NODE_W: Final = 170
NODE_H: Final = 46


@dataclass
class Node:
    key: str  # "j<id>", "d<id>" (the drain of job id), "g<type>|<status>", "m<id>|up"
    kind: str  # job | drain | group | more
    label: str
    sub: str
    status: str | None = None
    job_id: int | None = None
    count: int = 1
    focus: bool = False
    cascade_root: int | None = None  # set on cascade-cancelled jobs
    is_cascade_root: bool = False
    holders: list[int] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0


@dataclass
class Graph:
    focus: int
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    paths: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    truncated: bool = False
    collapsed: bool = False
    width: float = 0.0
    height: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "focus": self.focus,
            "truncated": self.truncated,
            "collapsed": self.collapsed,
            "nodes": [
                {
                    "key": n.key,
                    "kind": n.kind,
                    "label": n.label,
                    "detail": n.sub,
                    "status": n.status,
                    "job_id": n.job_id,
                    "count": n.count,
                    "focus": n.focus,
                    "cascade_root_job_id": n.cascade_root,
                    "is_cascade_root": n.is_cascade_root,
                    "holders": n.holders,
                    "x": round(n.x, 1),
                    "y": round(n.y, 1),
                }
                for n in self.nodes.values()
            ],
            "edges": [{"from": a, "to": b} for a, b in sorted(self.edges)],
        }


async def _records(q: AsyncJobQueue, ids: Iterable[int]) -> dict[int, JobRecord]:
    return {r.id: r for r in await q._backend.get_jobs_by_ids(list(ids))}


async def collect_graph(
    q: AsyncJobQueue, job_id: int, *, max_nodes: int = MAX_NODES, collapse: bool | None = None
) -> Graph | None:
    """The focus job's upstream and downstream closure, breadth-first, at most ``max_nodes``
    jobs. ``collapse``: None = automatically above COLLAPSE_ABOVE jobs."""
    focus = await q.get_job(job_id)
    if focus is None:
        return None
    backend = q._backend
    jobs: dict[int, JobRecord] = {focus.id: focus}
    edges: set[tuple[int, int]] = set()  # prerequisite → dependent (job ids)
    drains: dict[int, list[int]] = {}  # job id → holders of its tag drain
    drain_edges: set[tuple[int, int]] = set()  # holder job → drain of job
    overflow: dict[tuple[int, str], int] = {}  # (job id, "up"/"down") → jobs not loaded
    frontier = [focus.id]
    seen = {focus.id}
    while frontier:
        up: dict[int, list[int]] = {}
        for i in frontier:
            rec = jobs[i]
            up[i] = list(rec.depends_on_job_ids or ())
        down, holder_lists = await asyncio.gather(
            backend.get_dependents(frontier, max_nodes * 4),
            gather_bounded(
                backend.get_tag_holders(jobs[i].depends_on_tags or (), i, MAX_HOLDERS)
                for i in frontier
                if jobs[i].depends_on_tags
            ),
        )
        holder_iter = iter(holder_lists)
        holders_of = [next(holder_iter) if jobs[i].depends_on_tags else [] for i in frontier]
        waiters_by = dict(
            zip(
                [i for i in frontier if _holds(jobs[i])],
                await gather_bounded(
                    backend.get_drain_waiters(jobs[i].tags or (), MAX_HOLDERS)
                    for i in frontier
                    if _holds(jobs[i])
                ),
                strict=True,
            )
        )
        waiter_lists = [waiters_by.get(i, []) for i in frontier]
        nxt: list[int] = []
        for i, holders, waiters in zip(frontier, holders_of, waiter_lists, strict=True):
            if jobs[i].depends_on_tags:
                drains[i] = holders
            neighbours: list[tuple[int, str]] = [(p, "up") for p in up[i]]
            neighbours += [(d, "down") for d in down.get(i, [])]
            neighbours += [(h, "holder") for h in holders]
            neighbours += [(w, "waiter") for w in waiters if w != i]
            for other, how in neighbours:
                if how == "up":
                    edges.add((other, i))
                elif how == "down":
                    edges.add((i, other))
                elif how == "holder":
                    drain_edges.add((other, i))
                else:
                    drain_edges.add((i, other))
                if other in seen:
                    continue
                if len(seen) >= max_nodes:
                    side = "up" if how in ("up", "holder") else "down"
                    overflow[(i, side)] = overflow.get((i, side), 0) + 1
                    continue
                seen.add(other)
                nxt.append(other)
        loaded = await _records(q, nxt)
        jobs.update(loaded)
        frontier = [i for i in nxt if i in loaded]
    # Edges to jobs that vanished (cleaned up) are dropped.
    edges = {(a, b) for a, b in edges if a in jobs and b in jobs}
    drain_edges = {(a, b) for a, b in drain_edges if a in jobs and b in jobs}
    for i in list(drains):
        drains[i] = [h for h in drains[i] if h in jobs]
    overflow = {k: v for k, v in overflow.items() if k[0] in jobs}
    cancelled = [j for j in jobs.values() if j.status is JobStatus.CANCELLED]
    # PostgreSQL records the cascade root on the job; otherwise read (a bounded number of)
    # cancelled jobs' events.
    roots = {j.id: cascade_root(j) for j in cancelled}
    unknown = [j for j in cancelled if roots[j.id] is None][:MAX_EVENT_LOOKUPS]
    events = await gather_bounded(q.get_job_events(j.id) for j in unknown)
    roots.update({j.id: cascade_root(j, ev) for j, ev in zip(unknown, events, strict=True)})
    do_collapse = collapse if collapse is not None else len(jobs) > COLLAPSE_ABOVE
    return _build(focus.id, jobs, edges, drains, drain_edges, overflow, roots, do_collapse)


def _holds(job: JobRecord) -> bool:
    """May this job hold some tag drain (tagged and active)?"""
    return bool(job.tags) and job.status in ACTIVE_STATUSES


def _build(
    focus: int,
    jobs: dict[int, JobRecord],
    edges: set[tuple[int, int]],
    drains: dict[int, list[int]],
    drain_edges: set[tuple[int, int]],
    overflow: dict[tuple[int, str], int],
    roots: dict[int, int | None],
    collapse: bool,
) -> Graph:
    g = Graph(focus=focus, truncated=bool(overflow), collapsed=collapse)
    keep = {focus}
    if collapse:
        ups = sorted(a for a, b in edges | drain_edges if b == focus)
        downs = sorted(b for a, b in edges | drain_edges if a == focus)
        keep.update(ups[:KEEP_NEIGHBOURS])
        keep.update(downs[:KEEP_NEIGHBOURS])
        keep.update(i for i in drains if i in keep)
        keep.update(r for r in roots.values() if r is not None and r in jobs)
    root_ids = {r for r in roots.values() if r is not None}

    def key_of(i: int) -> str:
        if not collapse or i in keep:
            return f"j{i}"
        j = jobs[i]
        return f"g{j.job_type}|{j.status.value}"

    for i, j in jobs.items():
        k = key_of(i)
        if k.startswith("g"):
            n = g.nodes.get(k)
            if n is None:
                g.nodes[k] = Node(k, "group", j.job_type, "", status=j.status.value, count=1)
            else:
                n.count += 1
            continue
        root = roots.get(i)
        sub = j.status.value
        if root is not None:
            sub = f"cancelled by #{root}"
        elif j.status is JobStatus.PROCESSING and j.progress is not None:
            sub = f"processing {j.progress}%"
        g.nodes[k] = Node(
            k,
            "job",
            f"#{i} {j.job_type}",
            sub,
            status=j.status.value,
            job_id=i,
            focus=i == focus,
            cascade_root=root,
            is_cascade_root=i in root_ids,
        )
    for n in g.nodes.values():
        if n.kind == "group":
            n.sub = f"{n.count} x {n.status}"
    for i, holders in drains.items():
        dk = f"d{i}"
        tags = ", ".join(jobs[i].depends_on_tags or ())
        g.nodes[dk] = Node(
            dk,
            "drain",
            f"drain [{tags}]",
            f"{len(holders)} holder(s)" if holders else "clear",
            holders=list(holders),
        )
        g.edges.add((dk, key_of(i)))
    for a, b in edges:
        ka, kb = key_of(a), key_of(b)
        if ka != kb:
            g.edges.add((ka, kb))
    for holder, waiter in drain_edges:
        dk = f"d{waiter}"
        if dk in g.nodes:
            kh = key_of(holder)
            g.edges.add((kh, dk))
    for (i, side), count in overflow.items():
        mk = f"m{i}|{side}"
        g.nodes[mk] = Node(mk, "more", f"+{count} more", "not loaded", count=count)
        g.edges.add((mk, key_of(i)) if side == "up" else (key_of(i), mk))
    return g


def layout(g: Graph) -> Graph:
    """Positions nodes (top: prerequisites, bottom: dependents) with a Sugiyama layout; each
    connected component is laid out on its own and placed left to right."""
    from grandalf.graphs import Edge, Vertex
    from grandalf.graphs import Graph as GGraph
    from grandalf.layouts import SugiyamaLayout

    class _View:
        def __init__(self) -> None:
            self.w, self.h = NODE_W, NODE_H
            self.xy = (0.0, 0.0)

    class _EdgeView:
        def __init__(self) -> None:
            self.pts: list[tuple[float, float]] = []

        def setpath(self, pts: list[tuple[float, float]]) -> None:
            self.pts = pts

    keys = list(g.nodes)
    verts = {k: Vertex(k) for k in keys}
    for v in verts.values():
        v.view = _View()
    gedges = []
    for a, b in sorted(g.edges):
        e = Edge(verts[a], verts[b])
        e.view = _EdgeView()
        gedges.append(e)
    gg = GGraph(list(verts.values()), gedges)
    offset_x, height = 20.0, 0.0
    for comp in gg.C:
        sug = SugiyamaLayout(comp)
        sug.xspace, sug.yspace = 30, 50
        roots = [v for v in comp.sV if len(v.e_in()) == 0] or None
        sug.init_all(roots=roots)
        sug.draw()
        xs = [v.view.xy[0] for v in comp.sV]
        ys = [v.view.xy[1] for v in comp.sV]
        min_x, min_y = min(xs) - NODE_W / 2, min(ys) - NODE_H / 2
        dx, dy = offset_x - min_x, 20.0 - min_y
        for v in comp.sV:
            n = g.nodes[v.data]
            n.x, n.y = v.view.xy[0] + dx, v.view.xy[1] + dy
        for e in comp.sE:
            pts = e.view.pts or [e.v[0].view.xy, e.v[1].view.xy]
            g.paths[(e.v[0].data, e.v[1].data)] = [(x + dx, y + dy) for x, y in pts]
        offset_x += max(xs) - min(xs) + NODE_W + 40
        height = max(height, max(ys) - min(ys) + NODE_H + 40)
    g.width, g.height = max(offset_x, NODE_W + 40), max(height, NODE_H + 40)
    return g


def _e(text: Any) -> str:
    return str(escape(str(text)))


def render_svg(g: Graph, *, link_prefix: str = "") -> str:
    """The laid-out graph as an SVG document fragment; every text is escaped."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dq-graph" role="img" '
        f'width="{g.width:.0f}" height="{g.height:.0f}" '
        f'viewBox="0 0 {g.width:.0f} {g.height:.0f}">',
        '<defs><marker id="dq-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="dq-arrowhead"/></marker></defs>',
    ]
    for (a, b), pts in sorted(g.paths.items()):
        na, nb = g.nodes[a], g.nodes[b]
        start = (na.x, na.y + NODE_H / 2)
        end = (nb.x, nb.y - NODE_H / 2)
        mid = pts[1:-1]
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in [start, *mid, end])
        cls = "dq-edge drain-edge" if a.startswith("d") or b.startswith("d") else "dq-edge"
        out.append(
            f'<polyline class="{cls}" data-from="{_e(a)}" data-to="{_e(b)}" points="{d}" '
            'marker-end="url(#dq-arrow)"/>'
        )
    for n in g.nodes.values():
        x, y = n.x - NODE_W / 2, n.y - NODE_H / 2
        classes = ["dq-node", f"kind-{n.kind}"]
        if n.status:
            classes.append(f"status-{n.status}")
        if n.focus:
            classes.append("focus")
        if n.cascade_root is not None:
            classes.append("cascaded")
        if n.is_cascade_root:
            classes.append("cascade-root")
        title = n.label + " — " + n.sub
        if n.holders:
            title += " — held by " + ", ".join(f"#{h}" for h in n.holders)
        attrs = f'class="{" ".join(classes)}" data-key="{_e(n.key)}"'
        if n.job_id is not None:
            attrs += f' data-job-id="{n.job_id}"'
        body = [f"<title>{_e(title)}</title>"]
        if n.kind == "drain":
            poly = (
                f"{x + 12:.1f},{y:.1f} {x + NODE_W - 12:.1f},{y:.1f} {x + NODE_W:.1f},"
                f"{n.y:.1f} {x + NODE_W - 12:.1f},{y + NODE_H:.1f} {x + 12:.1f},"
                f"{y + NODE_H:.1f} {x:.1f},{n.y:.1f}"
            )
            body.append(f'<polygon points="{poly}"/>')
        else:
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            )
        body.append(f'<text x="{n.x:.1f}" y="{n.y - 4:.1f}" class="l1">{_e(_clip(n.label))}</text>')
        body.append(f'<text x="{n.x:.1f}" y="{n.y + 13:.1f}" class="l2">{_e(_clip(n.sub))}</text>')
        inner = "".join(body)
        if n.job_id is not None:
            href = f"{link_prefix}/jobs/{n.job_id}/graph"
            out.append(f'<a href="{_e(href)}"><g {attrs}>{inner}</g></a>')
        else:
            out.append(f"<g {attrs}>{inner}</g>")
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
