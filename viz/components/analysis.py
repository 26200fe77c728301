"""The analysis views: interactive charts of any runs kept, comparison, difference, loading.

* :data:`HEADLINE`: the dashboard's charts, each named by column names or *families* (a figure
  broken down by market, channel, mode, ...; see ``viz.runs.column_families``); columns a run
  does not have are left out, new family members appear by themselves.
* :func:`chart_figure`: one chart of several runs overlaid (a colour per series, a dash per run;
  a sweep point with its 95% band), the first run's shocks shaded and customs rules marked.
* Components: :func:`ChartCard`, :func:`ChartGrid`, :func:`Explorer` (any series, any
  breakdown, per-market panels), :func:`DifferenceView`, :func:`RunsPanel` (keep, open from
  disk, pick, export).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd
import reacton.core
import solara

from viz import figures, style
from viz.components.export import ChartFigure
from viz.figures import Series
from viz.runs import (
    Run,
    column_families,
    differing_params,
    paired_difference,
    rule_changes,
    shock_spans,
    sweep_paired_difference,
)
from viz.store import Entry, csv_bytes


@dataclass(frozen=True)
class ChartDef:
    key: str
    title: str
    columns: tuple[str, ...] = ()  # single columns
    families: tuple[str, ...] = ()  # family stems (all members)
    log: bool = False
    stack: bool = False
    note: str = ""


HEADLINE: tuple[ChartDef, ...] = (
    ChartDef("parcels", "Parcels a day by channel", families=("created",), columns=("parcels_delivered",),
             note="created by channel; delivered (all channels)"),
    ChartDef("ontime", "On-time rate", columns=("on_time_rate",), note="share delivered within the promise"),
    ChartDef("lead", "Delivery time", columns=("mean_lead_time_days", "p95_lead_time_days")),
    ChartDef("prices", "Contract price of a 1-kg parcel leg, by mode", families=("contract_price",), log=True),
    ChartDef("spot", "Spot price of a 1-kg parcel leg, by mode", families=("spot_price",), log=True),
    ChartDef("integrators", "4PL share and markups", columns=("fourpl_share",), families=("share", "markup")),
    ChartDef("utilisation", "Capacity used by mode", families=("utilisation",)),
    ChartDef("space", "Warehouse space holding stock", families=("space_used",)),
    ChartDef("orders", "Orders by market", families=("orders",)),
    ChartDef("duty", "Duty and import taxes per delivered parcel, by market", columns=("duty_per_parcel",),
             families=("duty_per_parcel", "vat_per_parcel")),
    ChartDef("landed", "Landed cost per delivered parcel (logistics + duty), by market",
             columns=("landed_cost_per_parcel",), families=("landed_cost_per_parcel",)),
    ChartDef("returns", "Returns a day, and where they went",
             columns=("returns_opened", "returns_in_transit_back", "returns_resold", "returns_liquidated",
                      "returns_scrapped", "returns_back_at_origin"),
             note="opened; in transit back (stock); resold, liquidated, scrapped, back at origin"),
    ChartDef("returns_money", "Money of returns a day",
             columns=("return_refunds_usd", "return_costs_usd", "return_recovered_usd", "return_drawback_usd"),
             note="refunds paid, reverse-logistics costs, value recovered, duty drawback"),
    ChartDef("currency", "Exchange rates, units per USD", families=("rate",), log=True,
             note="each market's currency; shocks shaded"),
    ChartDef("payment", "Payment and exchange a day",
             columns=("payment_fees_usd", "fx_gains_usd", "fx_losses_usd", "hedge_costs_usd"),
             note="payment providers' fees, exchange gains and losses on settlement, hedging cost"),
    ChartDef("tracking", "Tracking coverage", columns=("tracking_coverage",), families=("tracking_coverage",),
             note="share of legs whose tracking event the buyer saw; per integrator"),
    ChartDef("contacts", "After-sales contacts and delays a day",
             columns=("contacts_wismo", "contacts_damage", "contacts_dispute", "delays_detected", "delays_missed"),
             note="where-is-my-order, damage and dispute contacts; delays detected in time or missed"),
)
CHART_BY_KEY = {c.key: c for c in HEADLINE}


def _columns_of(run: Run, chart: ChartDef) -> list[tuple[str, str]]:
    """(column, label) of a chart in a run: its single columns, then its families' members."""
    cols = list(run.daily.columns)
    fams, _ = column_families(cols, run.world)
    out = [(c, figures.label_of(c)) for c in chart.columns if c in cols]
    for stem in chart.families:
        for f in fams:
            if f.stem == stem:
                multi = len(chart.families) > 1 or chart.columns
                for m, c in f.members.items():
                    lab = figures.member_label(f.dim, m)
                    out.append((c, f"{figures.label_of(stem)} {lab}" if multi else lab))
        # a family of one member (one integrator) is a single column
        single = [c for c in cols if c.startswith(stem + "_") and c not in {x for x, _ in out}
                  and not any(c in f.members.values() for f in fams)]
        if not any(f.stem == stem for f in fams) and len(single) == 1:
            out.append((single[0], figures.label_of(single[0])))
    return out


def chart_figure(entries: list[Entry], chart: ChartDef, height: int = figures.HEIGHT, mark=None):
    """One chart of the kept runs overlaid, and the table of what it draws; ``mark``, a date, is
    drawn as a vertical line (the day a replay's slider chose)."""
    series: list[Series] = []
    table = None
    kind = None
    colours: dict[str, str] = {}
    many = len(entries) > 1
    for r, e in enumerate(entries):
        run = e.run
        cols = _columns_of(run, chart)
        dash = figures.DASHES[r % len(figures.DASHES)]
        for j, (col, lab) in enumerate(cols):
            k = figures.kind_of(col)
            kind = kind or k
            c = colours.setdefault(col, figures.color(len(colours)))
            if many and len(cols) == 1:
                c = figures.color(r)
            name = f"{lab} · {run.label}" if many else lab
            s = figures.series_of(run.daily, col, name, kind=k, color=c, dash=dash if many else "solid",
                                  group=run.label if many else None)
            if s is None:
                continue
            if e.point is not None:
                b = e.point.sweep.band(e.point.point, col, list(e.point.replications) if e.point.replications else None)
                if len(b) == len(run.daily):
                    scale = 100.0 if k == "pct" else 1.0
                    s.lo, s.hi = b["lo"].values * scale, b["hi"].values * scale
            series.append(s)
            part = pd.DataFrame({"run": run.label, "date": s.x, "column": col, "value": s.y})
            table = part if table is None else pd.concat([table, part], ignore_index=True)
    first = entries[0].run if entries else None
    shocks = shock_spans(first.daily) if first is not None else []
    rules = rule_changes(first.daily, first.world) if first is not None else []
    fig = figures.time_figure(series, kind=kind or "count", shocks=shocks, rules=rules, log=chart.log, height=height,
                              empty_text="No data for this chart in these runs", mark=mark)
    return fig, (table if table is not None else pd.DataFrame(columns=["run", "date", "column", "value"]))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text).strip("-")[:60] or "table"


@solara.component
def CsvButton(df: pd.DataFrame, name: str, label: str = "CSV"):
    """Download a table as CSV."""
    with solara.Div(classes=["fourpl-csv"]):
        solara.FileDownload(lambda: csv_bytes(df), filename=f"{_slug(name)}.csv", label=label,
                            icon_name="mdi-download")


@solara.component
def ChartCard(entries: list, chart: ChartDef, day: int = 0, height: int = figures.HEIGHT, mark=None):
    """A chart card: the interactive figure, its image as SVG (PNG in its toolbar) and a CSV of its
    data (``mark``: a day marked)."""
    keys = tuple(e.key for e in entries)
    fig, table = solara.use_memo(lambda: chart_figure(entries, chart, height, mark=mark),
                                 dependencies=[keys, day, chart.key, str(mark)])
    with solara.Card(chart.title, subtitle=chart.note or None, classes=["fourpl-card", f"fourpl-chart-{chart.key}",
                                                                         "fourpl-plotly-card"]):
        with ChartFigure(fig, name=chart.key, version=(keys, day, chart.key, str(mark))):
            CsvButton(table, f"{chart.key}", label="Data (CSV)")


@solara.component
def ChartGrid(entries: list, keys: list[str] | None = None, day: int = 0, mark=None):
    """Charts two a row on a wide screen, one on a narrow one; charts with no data left out
    (``mark``, a date: a vertical line on each chart)."""
    charts = [CHART_BY_KEY[k] for k in keys] if keys else list(HEADLINE)
    shown = [c for c in charts if any(_columns_of(e.run, c) for e in entries)]
    drawn, set_drawn = solara.use_state(FIRST_CHARTS)
    render_lock = reacton.core.get_render_context().thread_lock
    solara.use_effect(lambda: _draw_more_later(drawn, len(shown), set_drawn, render_lock), [drawn, len(shown)])
    if not shown:
        solara.Info("No days to chart yet: press Step or Play, or open a results folder.", dense=True)
        return
    with solara.ColumnsResponsive(12, large=6, classes=["fourpl-charts"]):
        for c in shown[:drawn]:
            ChartCard(entries, c, day=day, mark=mark)


# A grid that opens draws its first charts at once and the rest a few at a time, each batch a
# render of its own from another thread: a tab of 17 charts over kept sweep points took seconds
# in one kernel message, and while the kernel renders it cannot answer the page's reconnect
# probe (Solara gives a lost connection three tries of 2 s, then shuts the session down).
FIRST_CHARTS = 4
MORE_CHARTS = 3


def _draw_more_later(drawn: int, total: int, set_drawn, render_lock: threading.Lock):
    """Draw the next few charts in a render of their own, once the render under way is done."""
    if drawn >= total:
        return None
    stop = threading.Event()

    def more():
        with render_lock:  # wait for the render that started this to end: a state set while it
            pass           # runs would be drawn by it, in the same kernel message
        if not stop.is_set():
            set_drawn(lambda n: max(n, min(total, drawn + MORE_CHARTS)))

    # a Thread made in a render inherits the session's kernel context (solara.server.patch)
    threading.Thread(target=more, name="fourpl-more-charts", daemon=True).start()
    return stop.set


@solara.component
def Explorer(entries: list, day: int = 0):
    """Any series of the daily record, whole or broken down; per-market panels."""
    run = max((e.run for e in entries), key=lambda r: r.days) if entries else None
    fams, singles = column_families(run.daily.columns, run.world) if run is not None else ([], [])
    options = [f"{figures.label_of(f.stem)} by {f.dim}" for f in fams] + [figures.label_of(c) for c in singles
                                                                          if c != "shocks_in_force"]
    choice = solara.use_reactive(options[0] if options else "")
    if run is None or not run.days or not options:
        return
    if choice.value not in options:
        choice.set(options[0])
    with solara.Card("Any series", subtitle="every column of the daily record; breakdowns found from the column names",
                     classes=["fourpl-card", "fourpl-explorer"]):
        solara.Select("Series", values=options, value=choice, classes=["fourpl-explorer-select"])
        fam = next((f for f in fams if f"{figures.label_of(f.stem)} by {f.dim}" == choice.value), None)
        if fam is not None:
            chart = ChartDef(f"x-{fam.stem}-{fam.dim}", choice.value, families=(fam.stem,))
        else:
            col = next((c for c in singles if figures.label_of(c) == choice.value), None)
            chart = ChartDef(f"x-{col}", choice.value, columns=(col,) if col else ())
        ChartCard(entries, chart, day=day, height=380)
    markets = sorted({m for f in fams if f.dim == "market" for m in f.members})
    if markets:
        MarketPanels(entries, markets, day=day)


def market_figure(entries: list, market: str, height_each: int = 220):
    """Every series the record has for one market, a panel each (one figure), runs overlaid."""
    from plotly.subplots import make_subplots

    run = entries[0].run
    fams, _ = column_families(run.daily.columns, run.world)
    rows = [f for f in fams if f.dim == "market" and market in f.members]
    if not rows:
        return figures.time_figure([], empty_text=f"No series for {market}"), pd.DataFrame()
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[figures.label_of(f.stem) for f in rows])
    parts = []
    many = len(entries) > 1
    for i, f in enumerate(rows, start=1):
        col = f.members[market]
        k = figures.kind_of(col)
        for r, e in enumerate(entries):
            s = figures.series_of(e.run.daily, col, e.run.label, kind=k)
            if s is None:
                continue
            fig.add_trace(dict(type="scatter", x=figures._xarr(s.x), y=s.y.values, name=e.run.label, mode="lines",
                               legendgroup=e.run.label, showlegend=i == 1,
                               line=dict(color=figures.color(r), dash=figures.DASHES[r % 6] if many else "solid"),
                               hovertemplate=figures._hover(k)), row=i, col=1)
            parts.append(pd.DataFrame({"run": e.run.label, "date": s.x, "column": col, "value": s.y}))
        fig.update_yaxes(ticksuffix="%" if k == "pct" else None, tickprefix="$" if k == "usd" else None,
                         gridcolor=style.GRID, rangemode="tozero", row=i, col=1)
    for x0, x1, names in shock_spans(run.daily):
        fig.add_vrect(x0=x0, x1=pd.Timestamp(x1) + pd.Timedelta(days=1), fillcolor=style.DISRUPTED, opacity=0.08,
                      line_width=0, layer="below")
    for t, terr, _src in rule_changes(run.daily, run.world):
        fig.add_vline(x=t, line=dict(color="#6a1b9a", width=1, dash="dot"))
    fig.update_layout(height=max(260, height_each * len(rows)), margin=dict(l=10, r=10, t=30, b=10),
                      hovermode="x unified", plot_bgcolor="white", font=dict(size=11, color=style.INK),
                      legend=dict(orientation="h", y=-0.05, yanchor="top"))
    return fig, (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame())


@solara.component
def MarketPanels(entries: list, markets: list[str], day: int = 0):
    """One market at a time: every figure the record has for it (orders, sales, duty, landed cost...)."""
    market = solara.use_reactive(markets[0])
    if market.value not in markets:
        market.set(markets[0])
    keys = tuple(e.key for e in entries)
    fig, table = solara.use_memo(lambda: market_figure(entries, market.value), dependencies=[keys, day, market.value])
    with solara.Card("Per market", subtitle="each market's own series, one panel each",
                     classes=["fourpl-card", "fourpl-markets"]):
        with solara.Div(classes=["fourpl-market-select"]):
            solara.ToggleButtonsSingle(value=market, values=markets)
        with ChartFigure(fig, name=f"market-{market.value}", version=(keys, day, market.value)):
            CsvButton(table, f"market-{market.value}", label="Data (CSV)")


def difference_figure(a: Entry, b: Entry, column: str):
    """B minus A of a column: paired by seed (with a 95% band) for two points of one sweep."""
    k = figures.kind_of(column)
    scale = 100.0 if k == "pct" else 1.0
    if a.point is not None and b.point is not None and a.point.sweep.folder == b.point.sweep.folder:
        d = sweep_paired_difference(a.point.sweep, a.point.point, b.point.point, column)
        s = Series(name=f"B − A, mean over {int(d['n'].max()) if len(d) else 0} seed pairs", x=d["x"],
                   y=d["mean"] * scale, lo=d["lo"] * scale, hi=d["hi"] * scale, color=style.ACCENT)
        note = "paired by seed (common random numbers): each replication of B minus the same seed's of A"
        table = d
    else:
        d = paired_difference(a.run, b.run, column)
        s = Series(name="B − A", x=d["x"], y=d["diff"] * scale, color=style.ACCENT)
        same = a.run.seed is not None and a.run.seed == b.run.seed
        note = ("same seed: the difference is the parameters' effect on the same random draws" if same else
                f"different seeds ({a.run.seed} vs {b.run.seed}): the difference mixes noise and effect")
        table = d
    fig = figures.time_figure([s] if len(d) else [], kind=k, shocks=shock_spans(b.run.daily),
                              rules=rule_changes(b.run.daily, b.run.world), height=340)
    fig.add_hline(y=0, line=dict(color=style.MUTED, width=1))
    return fig, table, note


@solara.component
def DifferenceView(entries: list, day: int = 0):
    """Pick A and B among the kept runs and a series: B minus A a day."""
    labels = [e.run.label for e in entries]
    a_lab = solara.use_reactive(labels[0] if labels else "")
    b_lab = solara.use_reactive(labels[1] if len(labels) > 1 else "")
    first = entries[0].run.daily if entries else None
    cols = [] if first is None else [c for c in first.columns if c not in ("day", "date", "shocks_in_force")
                                     and pd.api.types.is_numeric_dtype(first[c])]
    col = solara.use_reactive("parcels_created" if "parcels_created" in cols else (cols[0] if cols else ""))
    if len(entries) < 2:
        solara.Info("Keep or open two runs (or sweep points) and tick them in the sidebar to see B minus A.")
        return
    if a_lab.value not in labels:
        a_lab.set(labels[0])
    if b_lab.value not in labels:
        b_lab.set(labels[1])
    a = entries[labels.index(a_lab.value)]
    b = entries[labels.index(b_lab.value)]
    with solara.Card("Difference: B minus A", classes=["fourpl-card", "fourpl-difference"]):
        with solara.Row(classes=["fourpl-wrap"]):
            solara.Select("A", values=labels, value=a_lab, classes=["fourpl-diff-a"])
            solara.Select("B", values=labels, value=b_lab, classes=["fourpl-diff-b"])
            solara.Select("Series", values=cols, value=col, classes=["fourpl-diff-col"])
        if col.value:
            fig, table, note = difference_figure(a, b, col.value)
            solara.Text(note, classes=["fourpl-diff-note"], style={"color": style.MUTED, "font-size": "0.85em"})
            with ChartFigure(fig, name=f"difference-{col.value}", version=(a.key, b.key, col.value, day)):
                CsvButton(table, f"difference-{col.value}", label="Data (CSV)")


@solara.component
def DifferingParams(entries: list):
    """The parameters in which the overlaid runs differ, as a table."""
    diff = differing_params([e.run for e in entries])
    if len(entries) < 2:
        return
    if not diff:
        solara.Text("The overlaid runs have the same parameters and seed.", classes=["fourpl-differing"])
        return
    rows = [{"parameter": k, **{f"{chr(65 + i)}: {entries[i].run.label}": _short(v) for i, v in enumerate(vs)}}
            for k, vs in diff.items()]
    df = pd.DataFrame(rows)
    with solara.Div(classes=["fourpl-differing", "fourpl-table-wrap"]):
        solara.Markdown("**Parameters that differ** (A, B, ... in the order ticked)")
        solara.DataFrame(df, items_per_page=12)
        CsvButton(df, "differing-parameters")


def _short(v) -> str:
    s = str(v)
    return s if len(s) <= 40 else s[:37] + "..."
