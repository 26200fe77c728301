"""Interactive Plotly charts of the daily record, for one run or several overlaid.

A chart is a list of series (columns of a run's daily record, or a sweep point's mean with its
confidence band), drawn over dates with the run's shocks shaded and its dated customs rule
changes marked. Nothing here knows today's column names except for choosing units and nicer
labels: a column the recorder adds tomorrow is drawn the same way (see :func:`kind_of`).
Figures are ``plotly.graph_objects.Figure``; the app shows them with :func:`PlotlyFigure`
(hover values, zoom, legend toggles, a PNG download in the toolbar, all offline: plotly's
JavaScript ships in the Python package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from viz import style

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
HEIGHT = 320
PCT_WORDS = ("rate", "share", "utilisation", "space_used", "efficiency", "coverage")
USD_WORDS = ("usd", "price", "cost", "cash", "premium", "payout", "landed", "duty", "vat", "fee")
DAY_WORDS = ("days", "lead_time")

CONFIG = {"displaylogo": False, "responsive": True,
          "toImageButtonOptions": {"format": "png", "scale": 2},
          "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


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


def time_figure(series: list[Series], *, title: str = "", kind: str = "count", shocks=(), rules=(),
                log: bool = False, height: int = HEIGHT, empty_text: str = "Nothing to show yet") -> go.Figure:
    """A time chart: lines (bands shaded), shocks as red spans, customs rule changes as dotted
    lines with their territory, a unified hover, the legend under the plot."""
    fig = go.Figure()
    for s in series:
        color = s.color
        if s.lo is not None and s.hi is not None:
            xs = _xarr(s.x)
            hi, lo = np.asarray(s.hi, dtype=float), np.asarray(s.lo, dtype=float)
            ok = np.isfinite(hi) & np.isfinite(lo)
            x = np.concatenate([xs[ok], xs[ok][::-1]])
            y = np.concatenate([hi[ok], lo[ok][::-1]])
            fig.add_trace(go.Scatter(x=x, y=y, fill="toself", mode="lines", line=dict(width=0),
                                     fillcolor=_rgba(color or style.ACCENT, 0.18), hoverinfo="skip",
                                     showlegend=False, legendgroup=s.group or s.name, name=f"{s.name} (95% CI)"))
        fig.add_trace(go.Scatter(x=_xarr(s.x), y=np.asarray(s.y, dtype=float), name=s.name, mode="lines", legendgroup=s.group or s.name,
                                 line=dict(color=color, dash=s.dash, width=1.8),
                                 stackgroup="one" if s.stack else None,
                                 hovertemplate=_hover(kind)))
    if not series:
        fig.add_annotation(text=empty_text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(color=style.MUTED, size=13))
    for x0, x1, names in shocks:
        x1 = pd.Timestamp(x1) + pd.Timedelta(days=1) if isinstance(x1, (pd.Timestamp, np.datetime64)) else x1
        fig.add_vrect(x0=x0, x1=x1, fillcolor=style.DISRUPTED, opacity=0.08, line_width=0, layer="below")
        fig.add_annotation(x=x0, y=1.0, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                           text=f"⚠ {names}", font=dict(size=9, color=style.DISRUPTED),
                           bgcolor="rgba(255,255,255,0.7)", hovertext=f"shock in force: {names}")
    for t, terr, src in rules:
        fig.add_vline(x=t, line=dict(color="#6a1b9a", width=1, dash="dot"))
        fig.add_annotation(x=t, y=0.0, yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                           text=f"§ {terr}", font=dict(size=9, color="#6a1b9a"),
                           hovertext=f"{terr} customs rule from {pd.Timestamp(t).date()}: {src}",
                           bgcolor="rgba(255,255,255,0.7)")
    yaxis = dict(title=_ytitle(kind), gridcolor=style.GRID, zeroline=False, automargin=True)
    if log:
        yaxis.update(type="log", tickformat="$.2~f" if kind == "usd" else None, dtick="D2")
    elif kind == "pct":
        yaxis.update(ticksuffix="%", rangemode="tozero")
    elif kind == "usd":
        yaxis.update(tickprefix="$", tickformat=",.2~f", rangemode="tozero")
    else:
        yaxis.update(tickformat=",.4~g", rangemode="tozero")
    fig.update_layout(
        title=dict(text=title, font=dict(size=13), x=0.01) if title else None,
        height=height, margin=dict(l=10, r=10, t=34 if title else 12, b=10),
        hovermode="x unified", plot_bgcolor="white", paper_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0, font=dict(size=10)),
        xaxis=dict(gridcolor=style.GRID, automargin=True, showspikes=True, spikethickness=1),
        yaxis=yaxis, font=dict(size=11, color=style.INK),
    )
    return fig


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


def PlotlyFigure(fig: go.Figure, on_click=None, version=None):
    """A Plotly figure as a widget, kept from one ``version`` (a day, a selection) to the next.

    Each FigureWidget carries plotly.js in its first message (megabytes), so a new widget a
    day is slow; ``solara.FigurePlotly`` keeps one but updates it by adding the new traces and
    deleting the old ones, which the browser applies asynchronously: under quick steps traces
    piled up or a plot went blank. Here the widget is kept while the figure has the same traces
    (kinds and count), and a new version restyles them in place (one message, no indices that
    can go stale); a figure with other traces gets a new widget.
    """
    shape = tuple(getattr(t, "type", "?") for t in fig.data)
    return _Plotly(fig, on_click, version).key(f"plotly-{len(shape)}-{hash(shape)}")


def _plotly_component():
    import solara
    from plotly.graph_objs import FigureWidget

    @solara.component
    def _Plotly(fig, on_click, version):
        el = FigureWidget.element(on__js2py_pointsCallback=_on_points(on_click))

        def draw():
            w = solara.get_widget(el)
            with w.batch_update():
                if len(w.data) != len(fig.data):  # a new widget: its figure
                    w.data = ()
                    w.add_traces(fig.data)
                else:  # the same traces: their new values in place
                    for old, new in zip(w.data, fig.data):
                        old.update(new.to_plotly_json(), overwrite=True)
                w.layout.update(fig.layout.to_plotly_json(), overwrite=True)

        solara.use_effect(draw, [repr(version)])
        return el

    return _Plotly


_Plotly = _plotly_component()
