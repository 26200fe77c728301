"""The map as an interactive Plotly figure, and what each lane and node did day by day.

* :class:`LaneHistory` records, after every step of a live model, each resource's (lane's,
  warehouse's, customs point's) use, capacity and mean contract rate of a parcel, and the
  providers offering it: what a click on a lane or node shows over time.
* :func:`map_figure` draws the network without online tiles (nodes at their geographic
  positions, nudged apart where they crowd, lanes coloured by mode and as wide as today's
  flow, disrupted lanes and closed nodes in red). Each lane has a clickable midpoint marker
  (``customdata`` = ``("lane", index)``), each node a marker (``("node", id)``).
* :func:`lane_frame` / :func:`node_frame`: the history of one lane / node as a table.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from viz import style
from viz.components.network_map import MapData, _lane_bends, _short, layout_for, map_data
from viz.state import resource_totals


class LaneHistory:
    """Per resource a day: used, capacity, mean contract rate (USD per parcel), providers."""

    def __init__(self, model):
        self._model = weakref.ref(model)
        self.dates: list = []
        self.used: list[np.ndarray] = []
        self.cap: list[np.ndarray] = []
        self.rate: list[np.ndarray] = []
        self.providers: list[dict[int, tuple[str, ...]]] = []
        self._event = None
        try:
            from mesa.time import Priority, Schedule

            self._event = model.schedule_recurring(
                self.record, Schedule(interval=1.0, start=float(model.time) + 1.0), priority=Priority.LOW)
        except (ImportError, AttributeError, ValueError, TypeError):
            self._event = None

    def record(self) -> None:
        m = self._model()
        if m is None or int(m.steps) == 0:
            return
        used, cap, _ = resource_totals(m)
        n = len(used)
        rate = np.full(n, np.nan)
        try:
            cb = m.contracts
            act = np.asarray(m.active_contracts, dtype=np.int64)
            res = np.asarray(cb.resource)[act]
            ok = res >= 0
            s = np.bincount(res[ok], weights=np.asarray(cb.rate_parcel)[act][ok], minlength=n)[:n]
            c = np.bincount(res[ok], minlength=n)[:n]
            rate = np.divide(s, c, out=np.full(n, np.nan), where=c > 0)
        except (AttributeError, IndexError, TypeError, ValueError):
            pass
        o = m.offers
        prov: dict[int, tuple[str, ...]] = {}
        try:
            names = {a.unique_id: a.name for a in m.agents}
            active = np.asarray(getattr(o, "active", np.ones(o.n, bool)), dtype=bool)
            for r, p in zip(np.asarray(o.resource)[active], np.asarray(o.provider)[active]):
                prov.setdefault(int(r), ())
                prov[int(r)] = prov[int(r)] + (names.get(int(p), str(p)),)
        except (AttributeError, TypeError):
            pass
        self.dates.append(pd.Timestamp(m.date))
        self.used.append(np.asarray(used, dtype=float))
        self.cap.append(np.asarray(cap, dtype=float))
        self.rate.append(rate)
        self.providers.append(prov)

    def frame(self, resource: int) -> pd.DataFrame:
        """One resource's history: date, used, capacity, utilisation, contract rate, providers."""
        r = int(resource)
        rows = {"date": self.dates,
                "used": [u[r] if r < len(u) else np.nan for u in self.used],
                "capacity": [c[r] if r < len(c) else np.nan for c in self.cap],
                "contract_rate_usd": [x[r] if r < len(x) else np.nan for x in self.rate],
                "providers": [", ".join(sorted(set(p.get(r, ())))) for p in self.providers]}
        df = pd.DataFrame(rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            df["utilisation"] = df["used"] / df["capacity"].where(df["capacity"] > 0)
        return df


_HISTORIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def lane_history_for(model) -> LaneHistory:
    h = _HISTORIES.get(model)
    if h is None:
        h = _HISTORIES[model] = LaneHistory(model)
    return h


def lane_name(world, i: int) -> str:
    ln = world.lanes[int(i)]
    g = world.graph
    a = _short(g.nodes[ln.u].get("name", ln.u))
    b = _short(g.nodes[ln.v].get("name", ln.v))
    return f"{a} → {b} ({style.mode_label(ln.spec.mode)})"


def node_resources(world, node: str) -> list[int]:
    """The resources at a node (warehouse space, customs, crossings), not lanes."""
    return [r.index for r in world.resources if getattr(r, "lane", None) is None and getattr(r, "node", None) == node]


def lane_frame(model, i: int) -> pd.DataFrame:
    return lane_history_for(model).frame(model.world.lanes[int(i)].index)


def node_frame(model, node: str) -> pd.DataFrame:
    """A node's history: its own resources summed, plus the parcels on the lanes through it."""
    h = lane_history_for(model)
    w = model.world
    res = node_resources(w, node)
    lanes_in = [ln.index for ln in w.lanes if ln.v == node]
    lanes_out = [ln.index for ln in w.lanes if ln.u == node]

    def total(rs, arrs):
        return [float(np.nansum([a[r] for r in rs if r < len(a)])) if rs else np.nan for a in arrs]

    prov = [", ".join(sorted({n for r in res for n in p.get(r, ())})) for p in h.providers]
    return pd.DataFrame({"date": h.dates, "inbound_flow": total(lanes_in, h.used),
                         "outbound_flow": total(lanes_out, h.used), "used": total(res, h.used),
                         "capacity": total(res, h.cap), "providers": prov})


MID = 8  # the lane curve's middle point (of 16)


def _lane_curve(p0: np.ndarray, p1: np.ndarray, bend: float, n: int = 16) -> np.ndarray:
    """A lane's curve: a quadratic Bezier bowing ``bend`` x its length to the left."""
    t = np.linspace(0, 1, n)
    mid = (p0 + p1) / 2
    d = p1 - p0
    ctrl = mid + bend * np.array([-d[1], d[0]])
    return ((1 - t) ** 2)[:, None] * p0 + (2 * (1 - t) * t)[:, None] * ctrl + (t ** 2)[:, None] * p1


LANE_SLOTS = 40  # lane traces on the map, always this many (the unused ones empty)


def _lane_slots(styled: list[tuple]) -> list[dict]:
    """The lanes as LANE_SLOTS line traces, one per (colour, width, dash) drawn today.

    Lanes of one colour, width and dash share a trace (curves joined with gaps), so the
    browser redraws a few dozen paths, not one per lane; widths are rounded to half a point,
    coarser if there would be more kinds than slots. The number of traces never changes: the
    widget is kept and updated in place from day to day (a new one would ship plotly.js again).
    """
    for step in (0.5, 1.0, 2.0, 4.0, 8.0):
        groups: dict[tuple, list] = {}
        for col, width, dashed, curve in styled:
            groups.setdefault((col, round(width / step) * step, dashed), []).append(curve)
        if len(groups) <= LANE_SLOTS:
            break
    out = []
    gap = np.full((1, 2), np.nan)
    for (col, width, dashed), curves in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        pts = np.concatenate([np.vstack([c, gap]) for c in curves])
        out.append(dict(type="scatter", x=pts[:, 0], y=pts[:, 1], mode="lines", hoverinfo="skip", showlegend=False,
                        line=dict(color=col, width=max(float(width), 0.8), dash="dash" if dashed else "solid")))
    while len(out) < LANE_SLOTS:
        out.append(dict(type="scatter", x=np.zeros(0), y=np.zeros(0), mode="lines", hoverinfo="skip",
                        showlegend=False, line=dict(color=style.IDLE, width=0.8, dash="solid")))
    return out[:LANE_SLOTS]


def map_figure(model, data: MapData | None = None, selected: tuple | None = None, height: int = 470) -> dict:
    """Today's network as a Plotly figure (no tiles): lanes by mode, width by flow; nodes.

    A plain figure dict (``{"data": [...], "layout": {...}}``, what ``go.Figure(...)`` accepts),
    not a ``go.Figure`` (validating it cost more than the day's simulation): LANE_SLOTS line
    traces (:func:`_lane_slots`), then the lanes' midpoint markers (``name="lanes"``,
    ``customdata`` ``["lane", index]``, today's figures as hover text), then the nodes by kind
    (``customdata`` ``["node", id]``). The same traces every day.
    """
    data = data or map_data(model)
    w = model.world
    g = w.graph
    lay = layout_for(w)
    pos = {n: lay.xy[i] for i, n in enumerate(lay.nodes)}
    lanes = w.lanes
    bend = _lane_bends(lanes)
    flow = np.nan_to_num(data.flow)
    cap = np.nan_to_num(data.capacity)
    pmax = flow[~data.bulk].max() if (~data.bulk).any() else 0.0
    bmax = flow[data.bulk].max() if data.bulk.any() else 0.0
    traces: list[dict] = []
    mids_x, mids_y, mids_c, mids_t, mids_col = [], [], [], [], []
    styled = []  # (colour, width, dashed, curve) of each lane drawn
    for i, ln in enumerate(lanes):
        if ln.u not in pos or ln.v not in pos:
            continue
        curve = _lane_curve(pos[ln.u], pos[ln.v], bend[i])
        top = bmax if data.bulk[i] else pmax
        width = 1.0 + 6.0 * math.sqrt(flow[i] / top) if flow[i] > 0 and top > 0 else 0.8
        col = style.DISRUPTED if data.disrupted[i] else (style.mode_color(ln.spec.mode) if flow[i] > 0 else style.IDLE)
        styled.append((col, width, bool(data.bulk[i]), curve))
        mids_x.append(curve[MID, 0])
        mids_y.append(curve[MID, 1])
        mids_c.append(["lane", i])
        unit = "kg" if data.bulk[i] else "parcels"
        mids_t.append(f"<b>{lane_name(w, i)}</b><br>today: {flow[i]:,.0f} {unit} of {cap[i]:,.0f} capacity"
                      + ("<br><span style='color:#d62728'>disrupted</span>" if data.disrupted[i] else ""))
        mids_col.append(col)
    traces += _lane_slots(styled)
    traces.append(dict(type="scatter", x=np.array(mids_x), y=np.array(mids_y), mode="markers", customdata=mids_c,
                       text=mids_t, name="lanes", hovertemplate="%{text}<extra></extra>", showlegend=False,
                       marker=dict(size=9, color=mids_col, opacity=0.55, line=dict(width=1, color="white"),
                                   symbol="diamond")))
    kinds: dict[str, list[int]] = {}
    for i, n in enumerate(lay.nodes):
        kinds.setdefault(g.nodes[n].get("kind", "node"), []).append(i)
    for kind, idx in kinds.items():
        st = style.NODE_STYLE.get(kind, {"color": style.INK, "label": kind})
        names = [g.nodes[lay.nodes[i]].get("name", lay.nodes[i]) for i in idx]
        closed = [lay.nodes[i] in data.closed_nodes for i in idx]
        traces.append(dict(
            type="scatter", x=lay.xy[idx, 0], y=lay.xy[idx, 1], mode="markers+text", name=st.get("label", kind),
            text=[_short(nm) if kind in ("market", "warehouse") else "" for nm in names], textposition="top center",
            textfont=dict(size=9, color=style.INK),
            customdata=[["node", lay.nodes[i]] for i in idx],
            hovertext=[f"<b>{nm}</b> ({kind})" + (" — closed" if c else "") for nm, c in zip(names, closed)],
            hovertemplate="%{hovertext}<extra></extra>",
            marker=dict(size=[16 if c else 11 for c in closed], color=st.get("color", style.INK),
                        line=dict(width=[3 if c else 1 for c in closed],
                                  color=[style.DISRUPTED if c else "white" for c in closed]))))
    if selected:
        kind, ident = selected
        if kind == "lane" and int(ident) < len(mids_x):
            traces.append(dict(type="scatter", x=[mids_x[int(ident)]], y=[mids_y[int(ident)]], mode="markers",
                               showlegend=False, hoverinfo="skip",
                               marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=3, color=style.INK))))
    # no fixed aspect: the layout was nudged apart for the map's own aspect (network_map.MAP_SIZE)
    layout = dict(height=height, margin=dict(l=4, r=4, t=4, b=4), plot_bgcolor="#f4f7f9", paper_bgcolor="white",
                  legend=dict(orientation="h", y=-0.02, yanchor="top", font=dict(size=10)), dragmode="pan",
                  hovermode="closest", clickmode="event",
                  xaxis=dict(visible=False, range=list(lay.xlim)), yaxis=dict(visible=False, range=list(lay.ylim)))
    return {"data": traces, "layout": layout}


def clicked_item(fig: dict, click: dict) -> tuple | None:
    """What a click on the map picked, from plotly's click event and the map's figure:
    ("lane", lane index) or ("node", node name); None where the click hit nothing of ours."""
    try:
        points = click["points"]
        trace, idx = points["trace_indexes"][0], points["point_indexes"][0]
        kind, item = fig["data"][trace]["customdata"][idx][:2]
        return (str(kind), int(item) if kind == "lane" else str(item))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def selection_frame(model, selected: tuple | None) -> tuple[str, pd.DataFrame]:
    """The title and history table of a clicked lane or node."""
    if not selected:
        return "", pd.DataFrame()
    kind, ident = selected
    if kind == "lane":
        return lane_name(model.world, int(ident)), lane_frame(model, int(ident))
    g = model.world.graph
    return str(g.nodes[ident].get("name", ident)) if ident in g.nodes else str(ident), node_frame(model, ident)


def selection_figure(title: str, df: pd.DataFrame):
    """Volume and capacity (left), contract rate (right) of a lane or node over time."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if not df.empty:
        for col, name, colr in (("used", "used", style.ACCENT), ("capacity", "capacity", style.MUTED),
                                ("inbound_flow", "inbound flow", "#2e7d32"), ("outbound_flow", "outbound flow", "#ef6c00")):
            if col in df.columns and df[col].notna().any():
                fig.add_trace(go.Scatter(x=df["date"], y=df[col], name=name, line=dict(color=colr)), secondary_y=False)
        if "contract_rate_usd" in df.columns and df["contract_rate_usd"].notna().any():
            fig.add_trace(go.Scatter(x=df["date"], y=df["contract_rate_usd"], name="mean contract rate (USD/parcel)",
                                     line=dict(color="#c62828", dash="dot")), secondary_y=True)
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), hovermode="x unified",
                      title=dict(text=title, font=dict(size=12)), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.15, font=dict(size=10)))
    fig.update_yaxes(title_text="a day", secondary_y=False, gridcolor=style.GRID, rangemode="tozero")
    fig.update_yaxes(title_text="USD", secondary_y=True, showgrid=False, rangemode="tozero")
    return fig
