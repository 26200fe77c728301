"""The network map: the world's nodes at their geographic positions, and today's flows.

Nodes sit at their longitude and latitude (a Pacific-centred plate carrée: the Americas are
drawn east of Asia, so trans-Pacific lanes do not cross the whole map), nudged apart where
several crowd one city (Shanghai's hub, port and free-trade zone). Lanes are curves coloured
by mode, drawn as wide as the square root of today's flow (parcels a day; kg a day on bulk
sea and rail lanes, on their own scale). Idle lanes are thin and grey; lanes whose capacity a
shock cut today are marked with a red cross, and closed crossings with a red ring.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import matplotlib
import numpy as np
import solara
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from viz import charts, style
from viz.state import resource_totals
from viz.style import node_label

MAP_SIZE = (12.8, 5.4)  # inches at charts.DPI
AXES_RECT = (0.035, 0.17, 0.955, 0.8)  # left, bottom, width, height (figure fraction)
MIN_GAP_IN = 0.4  # nodes closer than this (inches on the figure) are pushed apart
PACIFIC_CUT = -30.0  # longitudes west of this are drawn east of 180 (the Americas)
IMG_CLASS = "fourpl-map-img"


def project(lon: float, lat: float) -> tuple[float, float]:
    """Pacific-centred plate carrée: (x, y) in degrees."""
    return (lon + 360.0 if lon < PACIFIC_CUT else lon), lat


@dataclass(frozen=True)
class Layout:
    """Where the map draws each node, and the map's extent."""

    nodes: tuple[str, ...]
    xy: np.ndarray  # drawn positions (degrees, after nudging), one row per node
    geo: np.ndarray  # true projected positions
    xlim: tuple[float, float]
    ylim: tuple[float, float]


def _extent(pts: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits around the points, with room for labels."""
    x0, x1 = pts[:, 0].min() - 20, pts[:, 0].max() + 20
    y0, y1 = pts[:, 1].min() - 6, pts[:, 1].max() + 8
    return (float(x0), float(x1)), (float(y0), float(y1))


def _nudge(target: np.ndarray) -> np.ndarray:
    """Push points closer than MIN_GAP_IN apart (inches), with a weak pull back to where they belong."""
    p = target.copy()
    golden = math.pi * (3 - math.sqrt(5))
    for _ in range(300):
        d = p[None, :, :] - p[:, None, :]  # d[i, j] = p[j] - p[i]
        dist = np.hypot(d[..., 0], d[..., 1])
        np.fill_diagonal(dist, np.inf)
        zero = dist < 1e-9
        if zero.any():  # coincident nodes: a fixed direction per pair, so the layout is deterministic
            i, j = np.nonzero(np.triu(zero, 1))
            ang = golden * (i + 1) * (j + 2)
            p[j] += 1e-3 * np.c_[np.cos(ang), np.sin(ang)]
            continue
        close = dist < MIN_GAP_IN
        if not close.any():
            break
        push = np.divide(MIN_GAP_IN - dist, 2.0 * dist, out=np.zeros_like(dist), where=close)
        p -= (push[..., None] * d).sum(axis=1)
        p += 0.03 * (target - p)
    return p


@lru_cache(maxsize=16)
def _layout(key: tuple) -> Layout:
    """Positions for a world (``key``: node ids with their lon, lat), nudged apart to be legible."""
    nodes = tuple(k[0] for k in key)
    geo = np.array([project(k[1], k[2]) for k in key], dtype=float)
    xy = geo
    for _ in range(2):  # the nudged nodes widen the extent, which changes the scale: twice is enough
        xlim, ylim = _extent(np.vstack([geo, xy]))
        scale = np.array([MAP_SIZE[0] * AXES_RECT[2] / (xlim[1] - xlim[0]),
                          MAP_SIZE[1] * AXES_RECT[3] / (ylim[1] - ylim[0])])
        xy = _nudge(geo * scale) / scale
    return Layout(nodes=nodes, xy=xy, geo=geo, xlim=xlim, ylim=ylim)


def layout_for(world) -> Layout:
    """The map layout of a world's nodes (cached per set of node positions)."""
    g = world.graph
    key = tuple((n, float(d.get("lon", 0.0)), float(d.get("lat", 0.0))) for n, d in g.nodes(data=True))
    return _layout(key)


def _short(name: str) -> str:
    """'Shanghai Pudong air hub' -> itself; 'US overseas warehouse (Inland Empire)' -> 'US overseas warehouse'."""
    return name.split(" (")[0]


def _bezier(p0: np.ndarray, p1: np.ndarray, bend: float, n: int = 24) -> np.ndarray:
    """A quadratic curve from p0 to p1 bowing ``bend`` x its length to the left."""
    mid = (p0 + p1) / 2
    d = p1 - p0
    ctrl = mid + bend * np.array([-d[1], d[0]])
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p1


@dataclass
class MapData:
    """What the map shows on one day (also used by tests and the caption)."""

    flow: np.ndarray  # per lane: parcels a day (kg a day on bulk lanes)
    capacity: np.ndarray  # per lane, today
    bulk: np.ndarray
    disrupted: np.ndarray  # per lane: capacity cut, transit stretched or risk raised by a shock today
    closed_lanes: np.ndarray  # per lane: no capacity left today
    closed_nodes: set
    shocks: str


def map_data(model) -> MapData:
    """Today's flow and capacity per lane, disrupted and closed lanes and nodes, shocks in force."""
    w = model.world
    lanes = w.lanes
    n = len(lanes)
    idx = np.array([ln.index for ln in lanes], dtype=np.int64)
    used, cap, base = resource_totals(model)
    bulk = np.array([bool(ln.spec.bulk) for ln in lanes])
    sb = getattr(model, "shockboard", None)
    dis_all = np.asarray(getattr(sb, "disrupted", np.zeros(len(w.resources), dtype=bool)), dtype=bool)
    dis = dis_all[idx] if dis_all.size >= len(w.resources) else np.zeros(n, dtype=bool)
    # closed: a shock cut the capacity to nothing (not a lane whose providers left the market)
    closed_res = (cap <= 1e-9) & (base > 0) & (dis_all if dis_all.size == cap.size else False)
    closed_lanes = closed_res[idx]
    closed_nodes: set = set()
    # a crossing, warehouse or customs point with no capacity today is closed; so is a node
    # whose every lane is closed
    for r in w.resources:
        if getattr(r, "lane", None) is None and closed_res[r.index]:
            closed_nodes.add(r.node)
    touching: dict[str, list[int]] = {}
    for i, ln in enumerate(lanes):
        touching.setdefault(ln.u, []).append(i)
        touching.setdefault(ln.v, []).append(i)
    for node, ls in touching.items():
        if all(closed_lanes[i] for i in ls):
            closed_nodes.add(node)
    names = sb.names_in_force() if sb is not None and hasattr(sb, "names_in_force") else ""
    return MapData(flow=used[idx], capacity=cap[idx], bulk=bulk, disrupted=dis | closed_lanes,
                   closed_lanes=closed_lanes, closed_nodes=closed_nodes, shocks=names)


def _territory_names(world) -> dict[str, str]:
    spec = getattr(world, "spec", None)
    terr = getattr(spec, "territories", {}) or {}
    return {k: getattr(v, "name", k) for k, v in terr.items()}


# ---------------------------------------------------------------- drawing, in three layers
#
# The map is three images of the same size: a background (graticule, territory names,
# legends), the day's lanes and disruption marks, and a foreground (nodes and their labels).
# Background and foreground depend on the world only: they are drawn once and cached. A day's
# redraw draws only the lanes and composites the three with numpy, which keeps it fast.


def _new_fig(transparent: bool) -> tuple[Figure, object]:
    fig = Figure(figsize=MAP_SIZE, dpi=charts.DPI, facecolor="none" if transparent else "white")
    ax = fig.add_axes(AXES_RECT)
    return fig, ax


def _frame(ax, lay: Layout, visible: bool) -> None:
    ax.set_xlim(*lay.xlim)
    ax.set_ylim(*lay.ylim)
    if not visible:
        ax.set_axis_off()
        ax.patch.set_visible(False)


def _rgba(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _world_key(world) -> tuple:
    g = world.graph
    nodes = tuple((n, float(d.get("lon", 0.0)), float(d.get("lat", 0.0)), d.get("kind"), d.get("name"),
                   d.get("warehouse"), d.get("territory")) for n, d in g.nodes(data=True))
    modes = tuple(sorted({(ln.spec.mode, bool(ln.spec.bulk)) for ln in world.lanes}))
    return nodes, modes


_LAYERS: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _layers(world) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(background RGB, foreground RGB x alpha, 1 - foreground alpha) as float32, cached per world."""
    key = _world_key(world)
    got = _LAYERS.get(key)
    if got is None:
        with matplotlib.rc_context(charts.FONT):
            bg = _rgba(_draw_background(world)).astype(np.float32)[..., :3]
            fg = _rgba(_draw_foreground(world)).astype(np.float32)
        a = fg[..., 3:4] / 255.0
        got = (bg, fg[..., :3] * a, 1.0 - a)
        if len(_LAYERS) >= 8:
            _LAYERS.clear()
        _LAYERS[key] = got
    return got


def _draw_background(world) -> Figure:
    g = world.graph
    lay = layout_for(world)
    fig, ax = _new_fig(transparent=False)
    _frame(ax, lay, visible=True)
    ax.set_facecolor("#f3f7fb")
    for side in ax.spines.values():
        side.set_color("#cfd8dc")
    # graticule, with real longitudes on the ticks
    xt = np.arange(math.ceil(lay.xlim[0] / 30) * 30, lay.xlim[1], 30)
    ax.set_xticks(xt)
    ax.set_xticklabels([_lon_label(x) for x in xt], fontsize=7, color=style.MUTED)
    yt = np.arange(math.ceil(lay.ylim[0] / 15) * 15, lay.ylim[1], 15)
    ax.set_yticks(yt)
    ax.set_yticklabels([f"{abs(y):.0f}°{'N' if y >= 0 else 'S'}" for y in yt], fontsize=7, color=style.MUTED)
    ax.tick_params(length=0, pad=2)
    ax.grid(True, color="#dde5ec", linewidth=0.7)
    # territory names, faint, above their nodes (of two neighbours, the one with more nodes)
    tnames = _territory_names(world)
    by_terr: dict[str, list[int]] = {}
    for i, n in enumerate(lay.nodes):
        by_terr.setdefault(g.nodes[n].get("territory", ""), []).append(i)
    placed: list[tuple[float, float]] = []
    deg_per_char = 11 * 0.7 / 72 * (lay.xlim[1] - lay.xlim[0]) / (MAP_SIZE[0] * AXES_RECT[2])
    for t, ids in sorted(by_terr.items(), key=lambda kv: -len(kv[1])):
        if not t or len(ids) < 2 or "bonded" in tnames.get(t, t).lower():
            continue
        name = tnames.get(t, t).upper()
        half = len(name) * deg_per_char / 2
        cx = float(np.median(lay.geo[ids, 0]))
        # above the territory's nodes, or below them if a node is in the way
        for cy, va in ((float(lay.xy[ids, 1].max()) + 2.5, "bottom"), (float(lay.xy[ids, 1].min()) - 2.5, "top")):
            y0, y1 = (cy, cy + 4.5) if va == "bottom" else (cy - 4.5, cy)
            blocked = ((np.abs(lay.xy[:, 0] - cx) < half + 2) & (lay.xy[:, 1] > y0 - 1) & (lay.xy[:, 1] < y1 + 1)).any()
            if not blocked and lay.ylim[0] < y0 and y1 < lay.ylim[1]:
                break
        else:
            continue
        if any(abs(cx - px) < half + 10 and abs(cy - py) < 8 for px, py in placed):
            continue
        placed.append((cx, cy))
        ax.text(cx, cy, name, ha="center", va=va, fontsize=11, color="#90a4ae", alpha=0.6, fontweight="bold")
    _map_legend(fig, world, g)
    return fig


def _draw_foreground(world) -> Figure:
    g = world.graph
    lay = layout_for(world)
    fig, ax = _new_fig(transparent=True)
    _frame(ax, lay, visible=False)
    for kind, st in style.NODE_STYLE.items():
        ids = [i for i, n in enumerate(lay.nodes) if g.nodes[n].get("kind") == kind]
        if not ids:
            continue
        if kind == "warehouse":
            cols = [style.WAREHOUSE_COLORS.get(g.nodes[lay.nodes[i]].get("warehouse"), st["color"]) for i in ids]
        else:
            cols = st["color"]
        ax.scatter(lay.xy[ids, 0], lay.xy[ids, 1], marker=st["marker"], s=st["size"], c=cols,
                   edgecolors="white", linewidths=1.2, zorder=7)
    for i, n, text, (dx, dy, ha, va) in _label_positions(world, lay):
        kind = g.nodes[n].get("kind")
        ax.annotate(text, lay.xy[i], xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    fontsize=LABEL_PT + (0.4 if kind == "market" else 0.0),
                    color=style.INK if kind in ("market", "warehouse", "border", "origin") else "#546e7a",
                    fontweight="bold" if kind == "market" else "normal", zorder=9,
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.7))
    return fig


LABEL_PT = 7.2
_LABEL_ORDER = {"market": 0, "warehouse": 1, "border": 2, "origin": 3, "gateway": 4}
# (dx, dy) in points, with the text alignment that puts the label on that side of its node
_CANDIDATES = [(8, 0, "left", "center"), (-8, 0, "right", "center"), (0, 7, "center", "bottom"),
               (0, -7, "center", "top"), (6, 5, "left", "bottom"), (-6, 5, "right", "bottom"),
               (6, -5, "left", "top"), (-6, -5, "right", "top")]


def _label_positions(world, lay: Layout) -> list[tuple[int, str, str, tuple]]:
    """Greedy label placement: each label takes the side of its node that overlaps least with
    the labels already placed and with the nodes (markets and warehouses first)."""
    g = world.graph
    px_per_pt = charts.DPI / 72.0
    ax_x0, ax_y0 = AXES_RECT[0] * MAP_SIZE[0] * charts.DPI, AXES_RECT[1] * MAP_SIZE[1] * charts.DPI
    ax_w, ax_h = AXES_RECT[2] * MAP_SIZE[0] * charts.DPI, AXES_RECT[3] * MAP_SIZE[1] * charts.DPI
    pix = np.c_[ax_x0 + (lay.xy[:, 0] - lay.xlim[0]) / (lay.xlim[1] - lay.xlim[0]) * ax_w,
                ax_y0 + (lay.xy[:, 1] - lay.ylim[0]) / (lay.ylim[1] - lay.ylim[0]) * ax_h]
    node_r = 7.0
    boxes: list[tuple[float, float, float, float]] = []

    def overlap(a, b) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    order = sorted(range(len(lay.nodes)), key=lambda i: (_LABEL_ORDER.get(g.nodes[lay.nodes[i]].get("kind"), 9), i))
    out = []
    for i in order:
        n = lay.nodes[i]
        text = node_label(n, g.nodes[n])
        bold = g.nodes[n].get("kind") == "market"
        pt = LABEL_PT + (0.4 if bold else 0.0)
        w = len(text) * pt * (0.66 if bold else 0.6) * px_per_pt + 4
        h = pt * 1.35 * px_per_pt
        # prefer the side away from the crowd the node sits in
        near = np.hypot(*(lay.xy - lay.xy[i]).T) < 9.0
        away = lay.xy[i] - lay.xy[near].mean(axis=0)
        best, best_score = None, math.inf
        for cand in _CANDIDATES:
            dx, dy, ha, va = cand
            x = pix[i, 0] + dx * px_per_pt
            y = pix[i, 1] + dy * px_per_pt
            x0 = x if ha == "left" else x - w if ha == "right" else x - w / 2
            y0 = y if va == "bottom" else y - h if va == "top" else y - h / 2
            box = (x0, y0, x0 + w, y0 + h)
            score = sum(overlap(box, b) for b in boxes)
            score += sum(overlap(box, (px - node_r, py - node_r, px + node_r, py + node_r))
                         for j, (px, py) in enumerate(pix) if j != i) * 2.0
            outside = (max(0.0, ax_x0 - box[0]) + max(0.0, box[2] - ax_x0 - ax_w)
                       + max(0.0, ax_y0 - box[1]) + max(0.0, box[3] - ax_y0 - ax_h))
            score += outside * h * 20  # a label must stay on the map
            score -= 0.02 * w * h * (dx * away[0] + dy * away[1]) / (math.hypot(dx, dy) * (math.hypot(*away) + 1e-9))
            if score < best_score:
                best, best_score = (cand, box), score
        boxes.append(best[1])
        out.append((i, n, text, best[0]))
    return out


def _lane_bends(lanes) -> np.ndarray:
    """Parallel lanes between the same two nodes fan out (either direction on one side)."""
    pairs: dict[tuple, list[int]] = {}
    for i, ln in enumerate(lanes):
        pairs.setdefault(tuple(sorted((ln.u, ln.v))), []).append(i)
    bend = np.zeros(len(lanes))
    for (a, _b), ids in pairs.items():
        k = len(ids)
        ids = sorted(ids, key=lambda i: (lanes[i].spec.mode, lanes[i].u != a, bool(lanes[i].spec.bulk)))
        for j, i in enumerate(ids):
            sign = 1.0 if lanes[i].u == a else -1.0
            bend[i] = sign * (0.09 * (j - (k - 1) / 2) + (0.04 if k == 1 else 0.0))
    return bend


def _draw_lanes(model, data: MapData) -> Figure:
    """The day's layer: lanes by mode and flow, disrupted lanes, closed nodes."""
    w = model.world
    lay = layout_for(w)
    pos = {n: lay.xy[i] for i, n in enumerate(lay.nodes)}
    fig, ax = _new_fig(transparent=True)
    _frame(ax, lay, visible=False)
    lanes = w.lanes
    bend = _lane_bends(lanes)
    flow = np.nan_to_num(data.flow)
    parcel_max = flow[~data.bulk].max() if (~data.bulk).any() else 0.0
    bulk_max = flow[data.bulk].max() if data.bulk.any() else 0.0
    idle, busy = [], []
    marks, marks_closed = [], []
    for i, ln in enumerate(lanes):
        if ln.u not in pos or ln.v not in pos:
            continue
        curve = _bezier(pos[ln.u], pos[ln.v], bend[i])
        top = bulk_max if data.bulk[i] else parcel_max
        dashes = (0, (4, 2)) if data.bulk[i] else "solid"
        if flow[i] > 0 and top > 0:
            busy.append((curve, 0.9 + 6.0 * math.sqrt(flow[i] / top), style.mode_color(ln.spec.mode), dashes))
        else:
            idle.append((curve, 0.6, style.IDLE, dashes))
        if data.disrupted[i]:
            (marks_closed if data.closed_lanes[i] else marks).append(curve[len(curve) // 2])
    for group, alpha, z in ((idle, 0.9, 2), (busy, 0.85, 3)):
        if group:
            ax.add_collection(LineCollection([c for c, _, _, _ in group], linewidths=[lw for _, lw, _, _ in group],
                                             colors=[col for _, _, col, _ in group],
                                             linestyles=[ls for _, _, _, ls in group], alpha=alpha,
                                             capstyle="round", zorder=z))
    for pts, size in ((marks, 60), (marks_closed, 90)):
        if pts:
            pts = np.array(pts)
            ax.scatter(pts[:, 0], pts[:, 1], marker="X", s=size, color=style.DISRUPTED, edgecolors="white",
                       linewidths=0.8, zorder=6)
    for n in sorted(data.closed_nodes):
        if n in pos:
            ax.scatter([pos[n][0]], [pos[n][1]], marker="o", s=420, facecolors="none",
                       edgecolors=style.DISRUPTED, linewidths=2.2, zorder=8)
    return fig


def map_image(model, data: MapData | None = None) -> np.ndarray:
    """Today's map as an RGB array (height x width x 3, uint8)."""
    data = data or map_data(model)
    bg, fg_premul, fg_keep = _layers(model.world)
    with matplotlib.rc_context(charts.FONT):
        lanes = _rgba(_draw_lanes(model, data)).astype(np.float32)
    a = lanes[..., 3:4] * (1.0 / 255.0)
    out = bg * (1.0 - a) + lanes[..., :3] * a
    out = out * fg_keep + fg_premul
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def map_png(model, data: MapData | None = None) -> bytes:
    """Today's map as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(map_image(model, data), "RGB").save(buf, format="PNG", compress_level=charts.PNG_COMPRESSION)
    return buf.getvalue()


def _lon_label(x: float) -> str:
    lon = x - 360 if x > 180 else x
    return f"{abs(lon):.0f}°{'E' if lon >= 0 else 'W'}"


def _map_legend(fig, w, g) -> None:
    order = list(style.MODE_COLORS)
    modes = sorted({ln.spec.mode for ln in w.lanes}, key=lambda m: order.index(m) if m in order else 99)
    bulk_modes = {ln.spec.mode for ln in w.lanes if ln.spec.bulk}
    mode_handles = [Line2D([], [], color=style.mode_color(m), linewidth=3,
                           linestyle=(0, (2, 1)) if m in bulk_modes else "solid", label=style.mode_label(m))
                    for m in modes]
    kinds = {d.get("kind") for _, d in g.nodes(data=True)}
    node_handles = []
    for kind, st in style.NODE_STYLE.items():
        if kind not in kinds:
            continue
        if kind == "warehouse":
            whs = sorted({d.get("warehouse") for _, d in g.nodes(data=True) if d.get("kind") == "warehouse"} - {None})
            for wk in whs:
                node_handles.append(Line2D([], [], marker=st["marker"], linestyle="none", markersize=8,
                                           markerfacecolor=style.WAREHOUSE_COLORS.get(wk, st["color"]),
                                           markeredgecolor="white", label=style.WAREHOUSE_LABELS.get(wk, wk)))
        else:
            node_handles.append(Line2D([], [], marker=st["marker"], linestyle="none", markersize=7.5,
                                       markerfacecolor=st["color"], markeredgecolor="white", label=st["label"]))
    today_handles = [
        Line2D([], [], color="#607d8b", linewidth=6.0, label="Busiest lane of its kind today"),
        Line2D([], [], color=style.IDLE, linewidth=0.8, label="No flow today"),
        Line2D([], [], marker="X", linestyle="none", markersize=8, markerfacecolor=style.DISRUPTED,
               markeredgecolor="white", label="Capacity cut by a shock"),
        Line2D([], [], marker="o", linestyle="none", markersize=10, markerfacecolor="none",
               markeredgecolor=style.DISRUPTED, markeredgewidth=2, label="Closed (no capacity)"),
    ]
    common = dict(frameon=False, fontsize=7.8, handlelength=2.0, columnspacing=1.2, labelspacing=0.3,
                  borderaxespad=0.0, title_fontsize=8.0, alignment="left")
    fig.legend(handles=mode_handles, loc="upper left", bbox_to_anchor=(0.035, 0.145), ncol=4,
               title="Lanes by mode (width ∝ √ today's flow; bulk lanes dashed, in kg)", **common)
    fig.legend(handles=node_handles, loc="upper left", bbox_to_anchor=(0.45, 0.145), ncol=2, title="Nodes",
               **common)
    fig.legend(handles=today_handles, loc="upper left", bbox_to_anchor=(0.79, 0.145), ncol=1, title="Today",
               **common)


def map_caption(model, data: MapData | None = None) -> str:
    """One line under the map: lanes in use, parcel-legs moved today, disrupted lanes, closed places."""
    data = data or map_data(model)
    lanes = model.world.lanes
    busy = int(((np.nan_to_num(data.flow) > 0)).sum())
    parcels = float(np.nan_to_num(data.flow[~data.bulk]).sum()) if (~data.bulk).any() else 0.0
    parts = [f"{busy} of {len(lanes)} lanes in use", f"{style.fmt_int(parcels)} parcel-legs moved today"]
    n_dis = int(data.disrupted.sum())
    if n_dis:
        parts.append(f"{n_dis} lane{'s' if n_dis != 1 else ''} disrupted")
    if data.closed_nodes:
        parts.append("closed: " + ", ".join(sorted(_short(model.world.graph.nodes[n].get("name", n))
                                                    for n in data.closed_nodes)))
    return " · ".join(parts)


@solara.component
def NetworkMap(model, day: int | None = None):
    """The map card: today's network, redrawn each day."""
    steps = int(getattr(model, "steps", 0) if day is None else day)

    def build():
        data = map_data(model)
        return map_png(model, data), map_caption(model, data), data.shocks

    image, caption, shocks = solara.use_memo(build, dependencies=[model, steps])
    with solara.Card("Network map", subtitle="Nodes at their geographic positions; lanes coloured by mode, "
                     "as wide as today's flow", classes=["fourpl-card", "fourpl-map"]):
        if shocks:
            solara.Warning(f"In force today: {shocks}", dense=True, classes=["fourpl-shock-banner"])
        solara.Image(image, width="100%", classes=[IMG_CLASS])
        solara.Text(caption, classes=["fourpl-caption"], style={"color": style.MUTED, "font-size": "0.85em"})
