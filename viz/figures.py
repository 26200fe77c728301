"""Interactive Plotly charts of the daily record, for one run or several overlaid.

A chart is a list of series (columns of a run's daily record, or a sweep point's mean with its
confidence band), drawn over dates with the run's shocks shaded and its dated customs rule
changes marked. Nothing here knows today's column names except for choosing units and nicer
labels: a column the recorder adds tomorrow is drawn the same way (see :func:`kind_of`).
Figures are ``plotly.graph_objects.Figure``; the app shows them with :func:`PlotlyFigure`
(hover values, zoom, legend toggles, all offline: plotly's JavaScript ships in the Python package)
and :func:`ChartFigure` adds the figure's export row: the toolbar's camera saves it as PNG (twice the
screen's pixels, named after the chart), the row's "Image (SVG)" button as SVG, both drawn in the
browser by plotly.js itself.
"""

from __future__ import annotations

import base64
import re
from copy import deepcopy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from viz import plotly_bundle, style

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
HEIGHT = 320
PCT_WORDS = ("rate", "share", "utilisation", "space_used", "efficiency", "coverage")
USD_WORDS = ("usd", "price", "cost", "cash", "premium", "payout", "landed", "duty", "vat", "fee")
DAY_WORDS = ("days", "lead_time")

# plotly.js's config of every chart (the widget's ``_config``, handed to ``Plotly.newPlot``):
# responsive (a window 'resize' event resizes the chart: components/viewport.vue relies on it); the
# camera saves a PNG at the size shown (width and height None: the plot's own) at twice the
# pixels; no plotly logo; no lasso or box select (nothing selects points) and no "Share chart"
# (it uploads the chart to Plotly's cloud: this app works offline and keeps its data local)
CONFIG = {"displaylogo": False, "responsive": True,
          "toImageButtonOptions": {"format": "png", "scale": 2, "width": None, "height": None},
          "modeBarButtonsToRemove": ["select2d", "lasso2d", "sendChartToCloud"]}


def file_stem(name: str) -> str:
    """A file name (without extension) from a chart's key or title: 'Network map · day 3' ->
    'Network-map-day-3'; 'chart' for nothing usable."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name or "")).strip("-.")[:80].strip("-.")
    return stem or "chart"


def config_for(name: str) -> dict:
    """The plotly.js config of a chart whose images are called ``name`` (see :func:`file_stem`)."""
    return {**CONFIG, "toImageButtonOptions": {**CONFIG["toImageButtonOptions"], "filename": file_stem(name)}}


def kind_of(column: str) -> str:
    """'pct' (a share 0..1, shown in percent), 'usd', 'days', 'fx' (an exchange rate, units of a
    currency per USD: ``rate_EUR``) or 'count', from the name."""
    if FX_COLUMN.match(column):
        return "fx"
    c = column.lower()
    if c.startswith("markup_"):
        return "pct"
    if any(w in c for w in PCT_WORDS) and not c.endswith("_usd"):
        return "pct"
    if any(w in c for w in DAY_WORDS):
        return "days"
    if any(w in c for w in USD_WORDS):
        return "usd"
    return "count"


FX_COLUMN = re.compile(r"^rate_[A-Z]{3}$")


def label_of(column: str) -> str:
    """A readable name of a column: 'on_time_rate' -> 'On time rate'."""
    s = column.replace("_usd", " (USD)").replace("_", " ").strip()
    return s[:1].upper() + s[1:]


def member_label(dim: str, member: str) -> str:
    if dim == "channel":
        return style.channel_label(member)
    if dim == "mode":
        return style.mode_label(member)
    return member.replace("_", " ")


@dataclass
class Series:
    """One line: x, y (already scaled), an optional band (lo, hi), and how to draw it."""

    name: str
    x: object
    y: object
    lo: object = None
    hi: object = None
    color: str | None = None
    dash: str = "solid"
    group: str | None = None  # legend group (a run, when several are overlaid)
    stack: bool = False


def _scale(kind: str) -> float:
    return 100.0 if kind == "pct" else 1.0


def _xs(daily: pd.DataFrame):
    return daily["date"] if "date" in daily.columns else daily.get("day", pd.Series(range(len(daily))))


def series_of(daily: pd.DataFrame, column: str, name: str, kind: str | None = None, **kw) -> Series | None:
    if column not in daily.columns:
        return None
    y = pd.to_numeric(daily[column], errors="coerce")
    if y.isna().all():
        return None
    return Series(name=name, x=_xs(daily), y=y * _scale(kind or kind_of(column)), **kw)


DAY_MARK = "fourpl-day"  # the name of the line marking the chosen day (the time slider)


def day_shapes(day) -> list[dict]:
    """The vertical line marking a chosen day on a time chart (none for None)."""
    if day is None:
        return []
    return [dict(type="line", name=DAY_MARK, xref="x", yref="paper", x0=day, x1=day, y0=0, y1=1,
                 line=dict(color=style.INK, width=1.5), layer="above")]


def time_figure(series: list[Series], *, title: str = "", kind: str = "count", shocks=(), rules=(),
                log: bool = False, height: int = HEIGHT, empty_text: str = "Nothing to show yet",
                mark=None) -> go.Figure:
    """A time chart: lines (bands shaded), shocks as red spans, customs rule changes as dotted
    lines with their territory, a unified hover, the legend under the plot; ``mark``, a date,
    is drawn as a solid vertical line (the day the time slider chose).

    Built as plain dicts and handed to ``go.Figure`` unvalidated (the values are ours and
    valid; validating each shape and trace cost tens of milliseconds a chart a day).
    """
    traces: list[dict] = []
    shapes: list[dict] = []
    notes: list[dict] = []
    for s in series:
        color = s.color
        if s.lo is not None and s.hi is not None:
            xs = _xarr(s.x)
            hi, lo = np.asarray(s.hi, dtype=float), np.asarray(s.lo, dtype=float)
            ok = np.isfinite(hi) & np.isfinite(lo)
            x = np.concatenate([xs[ok], xs[ok][::-1]])
            y = np.concatenate([hi[ok], lo[ok][::-1]])
            traces.append(dict(type="scatter", x=x, y=y, fill="toself", mode="lines", line=dict(width=0),
                               fillcolor=_rgba(color or style.ACCENT, 0.18), hoverinfo="skip",
                               showlegend=False, legendgroup=s.group or s.name, name=f"{s.name} (95% CI)"))
        line = dict(dash=s.dash, width=1.8)
        if color:
            line["color"] = color
        trace = dict(type="scatter", x=_xarr(s.x), y=np.asarray(s.y, dtype=float), name=s.name, mode="lines",
                     legendgroup=s.group or s.name, line=line, hovertemplate=_hover(kind))
        if s.stack:
            trace["stackgroup"] = "one"
        traces.append(trace)
    if not series:
        notes.append(dict(text=empty_text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font=dict(color=style.MUTED, size=13)))
    for x0, x1, names in shocks:
        x1 = pd.Timestamp(x1) + pd.Timedelta(days=1) if isinstance(x1, (pd.Timestamp, np.datetime64)) else x1
        shapes.append(dict(type="rect", xref="x", yref="y domain", x0=x0, x1=x1, y0=0, y1=1,
                           fillcolor=style.DISRUPTED, opacity=0.08, line=dict(width=0), layer="below"))
        notes.append(dict(x=x0, y=1.0, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                          text=f"⚠ {names}", font=dict(size=9, color=style.DISRUPTED),
                          bgcolor="rgba(255,255,255,0.7)", hovertext=f"shock in force: {names}"))
    for t, terr, src in rules:
        shapes.append(dict(type="line", xref="x", yref="y domain", x0=t, x1=t, y0=0, y1=1,
                           line=dict(color="#6a1b9a", width=1, dash="dot")))
        notes.append(dict(x=t, y=0.0, yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                          text=f"§ {terr}", font=dict(size=9, color="#6a1b9a"),
                          hovertext=f"{terr} customs rule from {pd.Timestamp(t).date()}: {src}",
                          bgcolor="rgba(255,255,255,0.7)"))
    shapes += day_shapes(mark)
    yaxis = dict(title=dict(text=_ytitle(kind)), gridcolor=style.GRID, zeroline=False, automargin=True)
    if log:
        yaxis.update(type="log", dtick="D2")
        if kind == "usd":
            yaxis["tickformat"] = "$.2~f"
    elif kind == "pct":
        yaxis.update(ticksuffix="%", rangemode="tozero")
    elif kind == "usd":
        yaxis.update(tickprefix="$", tickformat=",.2~f", rangemode="tozero")
    else:
        yaxis.update(tickformat=",.4~g", rangemode="tozero")
    layout = dict(
        height=height, margin=dict(l=10, r=10, t=34 if title else 12, b=10),
        hovermode="x unified", plot_bgcolor="white", paper_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0, font=dict(size=10)),
        xaxis=dict(gridcolor=style.GRID, automargin=True, showspikes=True, spikethickness=1),
        yaxis=yaxis, font=dict(size=11, color=style.INK), shapes=shapes, annotations=notes,
    )
    if title:
        layout["title"] = dict(text=title, font=dict(size=13), x=0.01)
    return go.Figure(data=traces, layout=layout, _validate=False)


def _xarr(x) -> np.ndarray:
    """x values as a numpy array (dates as datetime64): sent to the browser as binary, NaN-safe."""
    a = np.asarray(pd.Series(x).values if not isinstance(x, np.ndarray) else x)
    if a.dtype == object:
        try:
            a = a.astype("datetime64[ns]")
        except (TypeError, ValueError):
            pass
    return a


def _ytitle(kind: str) -> str:
    return {"pct": "percent", "usd": "USD", "days": "days", "fx": "units per USD", "count": ""}[kind]


def _hover(kind: str) -> str:
    fmt = {"pct": "%{y:.1f}%", "usd": "$%{y:,.2f}", "days": "%{y:.2f} d", "fx": "%{y:,.4~f} per USD",
           "count": "%{y:,.2~f}"}[kind]
    return fmt + "<extra>%{fullData.name}</extra>"


def _rgba(color: str, alpha: float) -> str:
    c = color.lstrip("#")
    if len(c) != 6:
        return f"rgba(21,101,192,{alpha})"
    r, g, b = int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
    return f"rgba({r},{g},{b},{alpha})"


def color(i: int) -> str:
    return style.SERIES[i % len(style.SERIES)]


def _on_points(on_click):
    def callback(data):
        if on_click and data and data.get("event_type") == "plotly_click":
            on_click(data)

    return callback


class _Held:
    """A figure handed to the widget component, compared by identity: reacton compares a
    component's props with ``==`` to decide whether to re-render it, and a Plotly figure's
    ``==`` walks every value of every trace (tens of milliseconds a chart, every day)."""

    __slots__ = ("fig",)

    def __init__(self, fig):
        self.fig = fig

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


def figure_json(fig) -> dict:
    """A figure (``go.Figure`` or its dict) as plain JSON-ready data: dates as ISO strings."""
    d = fig if isinstance(fig, dict) else fig.to_plotly_json()
    return {"data": [_plain(t) for t in d.get("data", ())], "layout": _plain(d.get("layout", {}))}


def _plain(v):
    if isinstance(v, dict):
        if "bdata" in v and "dtype" in v:  # plotly's base64 form of a numpy array: the array again
            a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
            shape = v.get("shape")
            if isinstance(shape, str):  # "3, 2"
                shape = [int(x) for x in shape.split(",")]
            return a.reshape(shape) if shape else a
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "M":
            day = v.astype("datetime64[D]")
            return np.datetime_as_string(day if (day == v).all() else v.astype("datetime64[s]")).tolist()
        # a column of a 2-D array is a strided view: the widget sends arrays as raw buffers, which
        # must be contiguous (else the kernel drops the whole message)
        return np.ascontiguousarray(v)
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v).isoformat()
    return v


def _flat(d: dict, prefix: str = "", out: dict | None = None) -> dict:
    """A nested dict as dotted paths to its leaves (lists and arrays are leaves)."""
    out = {} if out is None else out
    for k, v in d.items():
        if isinstance(v, dict) and v:
            _flat(v, f"{prefix}{k}.", out)
        else:
            out[f"{prefix}{k}"] = v
    return out


_FIXED = ("type", "uid")


def _same(a, b) -> bool:
    """Whether two property values are equal (arrays by value, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        try:
            return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc"))
        except TypeError:
            return bool(np.array_equal(a.astype(object), b.astype(object)))
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False


def _set_path(d: dict, path: str, value) -> None:
    """Set (or, for None, remove) a dotted path in a figure's raw dict."""
    *parents, last = path.split(".")
    for p in parents:
        child = d.get(p)
        if not isinstance(child, dict):
            child = d[p] = {}
        d = child
    if value is None:
        d.pop(last, None)
    else:
        d[last] = value


def _diff(new: dict, old: dict) -> list[str]:
    return [k for k in new.keys() | old.keys() if not _same(new.get(k), old.get(k))]


def _state_of(spec: dict) -> tuple[list[dict], dict]:
    """A figure as flat property paths: per trace (type and uid left out), and the layout's."""
    lay = _flat({k: v for k, v in spec["layout"].items() if k != "template"})
    return [{k: v for k, v in _flat(t).items() if k not in _FIXED} for t in spec["data"]], lay


def apply_figure(w, spec: dict) -> str:
    """Bring a FigureWidget to ``spec`` (:func:`figure_json`); return what was sent: "new",
    "update" or "none".

    A widget whose traces are of other kinds or number gets the figure whole (its traces
    validated once). Otherwise one ``Plotly.update`` message carries only what changed since
    the last figure: the properties that differ (new points, a width, a shape), for the traces
    where something differs, unvalidated (plotly validates each property path of each trace:
    on the map's hundred lanes that cost more than the day's simulation). Properties set last
    time and absent now are reset (sent as null). The widget's own record (``w.data``) is kept
    in step; the layout's template is set once.
    """
    data, layout = spec["data"], spec["layout"]
    kinds = [t.get("type", "scatter") for t in data]
    state = getattr(w, "_fourpl_state", None)
    flats, lay = _state_of(spec)
    if state is None or [t.type for t in w.data] != kinds:
        with w.batch_update():
            w.data = ()
            w.add_traces(data)
            w.layout = layout
        w._fourpl_state = (flats, lay)
        _keep_state_for_late_listeners(w)
        return "new"
    prev_traces, prev_layout = state
    changed: dict[str, set[int]] = {}
    for i, (new, old) in enumerate(zip(flats, prev_traces)):
        for k in _diff(new, old):
            changed.setdefault(k, set()).add(i)
    traces = sorted(set().union(*changed.values())) if changed else []
    restyle = {k: [flats[i].get(k) for i in traces] for k in changed}
    relayout = {k: lay.get(k) for k in _diff(lay, prev_layout)}
    w._fourpl_state = (flats, lay)
    if not restyle and not relayout:
        return "none"
    for k, vals in restyle.items():
        for i, v in zip(traces, vals):
            _set_path(w._data[i], k, v)
    for k, v in relayout.items():
        _set_path(w._layout, k, v)
        # the layout object caches its lists of shapes and annotations: rebuilt from the dict
        w.layout._compound_array_props.pop(k.split(".")[0], None)
    w._send_update_msg(restyle_data=restyle, relayout_data=relayout, trace_indexes=traces)
    _keep_state_for_late_listeners(w)
    return "update"


def _keep_state_for_late_listeners(w) -> None:
    """Until plotly's model in the browser listens (it says so once: ``PLOTLY_MODULE``), also
    send the whole figure as the widget's state.

    Plotly's front end applies an update message to its copy of the figure only once its
    bundle has loaded and its model subscribed; an update arriving earlier changes nothing,
    and a plot drawn afterwards would show the older figure for good (seen: the map kept its
    day-0 picture after three quick steps while plotly.js was loading). The state sent here
    replaces the copy the plot is drawn from; an update that did arrive in time changes
    nothing more (both set the same values).
    """
    if getattr(w, "_fourpl_listening", True):
        return
    w._widget_data = deepcopy(w._data)
    w._widget_layout = deepcopy(w._layout_obj._props)


def PlotlyFigure(fig, on_click=None, version=None, name: str = "chart"):
    """A Plotly figure as a widget, kept from one ``version`` (a day, a selection) to the next.

    ``name`` names its image files (the toolbar's PNG; :func:`ChartFigure` adds an SVG button).

    Each FigureWidget carries plotly.js in its first message (megabytes), so a new widget a
    day is slow; ``solara.FigurePlotly`` keeps one but rebuilds its traces. Here the widget is
    kept while the figure has the same traces (kinds and count), and a new version sends only
    what changed (:func:`apply_figure`); a figure with other traces gets a new widget.
    """
    shape = tuple((t.get("type", "scatter") if isinstance(t, dict) else getattr(t, "type", "?"))
                  for t in (fig["data"] if isinstance(fig, dict) else fig.data))
    return _Plotly(_Held(fig), on_click, version, file_stem(name)).key(f"plotly-{len(shape)}-{hash(shape)}")


def plotly_module_esm() -> str | None:
    """The front-end module of the app's Plotly widgets: a few lines importing plotly's widget
    bundle, published once for the app's pages (:mod:`viz.plotly_bundle`), or None where it
    cannot be published (each widget then carries the 5 MB bundle itself).

    Each widget carried the bundle over the websocket before, and the browser evaluated it
    again for each: a tab of 17 charts sent 85 MB, and under load the page's keepalive pong
    waited behind it past uvicorn's 20 s and the connection dropped.
    """
    name = plotly_bundle.publish()
    if name is None:
        return None
    return PLOTLY_MODULE.replace("BUNDLE_NAME", name)


# The module of every Plotly widget. anywidget gives a widget's module 2 s to load and
# initialize, then drops every message to that widget for good; plotly's bundle can take longer
# (a cold cache, a busy machine; assets/custom.js starts loading it when the page opens). So
# initialize returns at once and plotly's own model is made when the bundle arrives; until it
# says it listens, Python also sends each update as the whole figure
# (_keep_state_for_late_listeners).
PLOTLY_MODULE = """\
const root = (globalThis.solara && globalThis.solara.rootPath) || '';
const url = location.origin + root + '/static/public/BUNDLE_NAME';
export default () => {
  let plotly = null;
  return {
    initialize(context) {
      plotly = import(url).then((bundle) => {
        const widget = bundle.default();
        widget.initialize(context);
        context.model.send({ fourpl: 'listening' });
        return widget;
      });
    },
    async render(context) {
      const widget = await plotly;
      // a view removed while the bundle loaded is not drawn (drawn and purged at once,
      // plotly's pending margin redraw would throw)
      if (context.signal && context.signal.aborted) return;
      return widget.render(context);
    },
  };
};
"""


def _plotly_component():
    import solara
    from plotly.graph_objs import FigureWidget

    shared_esm = plotly_module_esm()

    class KeptFigure(FigureWidget):
        """A FigureWidget made with its first figure in its initial state (``initial``, a
        :func:`figure_json` dict), not filled by a message after it appeared: the browser
        builds it from that state even when its plotly.js module loads slowly (a message
        sent meanwhile can be lost for good, and this widget lives on from day to day).
        Later values of ``initial`` (each render passes one) are ignored: new versions of
        the figure are applied by :func:`apply_figure`.

        ``config`` is plotly.js's config (:func:`config_for`), set with the first figure: the
        browser reads it when it first draws the plot. A later config (another name for a
        kept widget's images) is stored for views drawn later; the plot on the page takes its
        new file name from the chart's SVG button (``components/figure_tools.vue``)."""

        def __init__(self, initial=None, config=None, **kwargs):
            spec = initial or {"data": [], "layout": {}}
            # plotly's widget opens its comm (the browser's model, with the widget's state)
            # before it has put the figure in that state, then sends the figure in a message;
            # the browser can draw the plot before that message is applied, and plotly's
            # front end ignores it afterwards: a blank plot for good (seen when plotly.js
            # loaded slowly). Opened here once the state holds the figure.
            self._fourpl_building = True
            # the spec is a validated figure's JSON already (figure_json): validating it again
            # here took half of a chart grid's render
            super().__init__(data=spec["data"], layout=spec["layout"], _validate=False, **kwargs)
            self._config = dict(config if config is not None else CONFIG)
            self._fourpl_state = _state_of(spec)
            # set once plotly's model in the browser listens to updates (PLOTLY_MODULE); until
            # then each update also sends the whole figure (_keep_state_for_late_listeners)
            self._fourpl_listening = False
            self.on_msg(self._front_end_says)
            self._fourpl_building = False
            self.open()

        def _front_end_says(self, _widget, content, _buffers):
            if isinstance(content, dict) and content.get("fourpl") == "listening":
                self._fourpl_listening = True

        def open(self):
            if not getattr(self, "_fourpl_building", False):
                super().open()

        @property
        def config(self):
            return self._config

        @config.setter
        def config(self, value):
            if value is not None and value != self._config:
                self._config = dict(value)

        @property
        def initial(self):
            return None

        @initial.setter
        def initial(self, _value):
            pass

    if shared_esm is not None:
        KeptFigure._esm = shared_esm   # read by anywidget when each widget is made

    @solara.component
    def _Plotly(held, on_click, version, name="chart"):
        first = solara.use_memo(lambda: figure_json(held.fig), [])
        config = solara.use_memo(lambda: config_for(name), [name])
        el = KeptFigure.element(initial=first, config=config, on__js2py_pointsCallback=_on_points(on_click))

        def draw():
            apply_figure(solara.get_widget(el), figure_json(held.fig))

        solara.use_effect(draw, [repr(version)])
        return el

    return _Plotly, KeptFigure


_Plotly, KeptFigure = _plotly_component()
