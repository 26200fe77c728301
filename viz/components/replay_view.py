"""The Replay tab: scrub a kept ``fourpl run`` folder day by day.

Pick one of the run folders kept in the sidebar's Runs card; a day slider moves through its
days. For the chosen day: the headline figures (that day's row of ``timeseries.parquet``), the
map of that run (the live map's figure, :func:`viz.lanes.map_figure`, with that day's lane
flows, contract capacity and disruptions from :mod:`viz.replay`), and the charts with a
vertical line at the day. A click on a lane or node shows its history from the files
(parcels, contract capacity and rate, providers), drawn as the live model's.
"""

from __future__ import annotations

import pandas as pd
import solara

from viz import figures, style
from viz.components.analysis import ChartGrid, CsvButton
from viz.components.kpis import Kpi
from viz.components.network_map import map_caption
from viz.lanes import clicked_item, map_figure, selection_figure
from viz.replay import Replay, replay_of
from viz.runs import LoadError
from viz.store import Entry

REPLAY_CHARTS = ["parcels", "ontime", "lead", "prices", "integrators", "utilisation"]


def replay_map_figure(replay: Replay, day: int) -> tuple[dict, str, str]:
    """(figure, caption, shocks in force) of the run's network on ``day``: the live map's figure,
    its lane hover naming the day and saying the capacity is the contracts'."""
    data = replay.map_data(day)
    fig = map_figure(replay, data)
    when = _when(replay, day)
    for t in fig["data"]:
        if t.get("name") == "lanes":
            t["text"] = [s.replace("<br>today: ", f"<br>{when}: ").replace(" of 0 capacity", ", no contract")
                         .replace(" capacity", " contract capacity") for s in t["text"]]
    return fig, map_caption(replay, data).replace("moved today", "moved that day"), data.shocks


def _when(replay: Replay, day: int) -> str:
    d = replay.dates[replay.clamp(day)]
    return d.strftime("%d %b %Y") if isinstance(d, pd.Timestamp) else f"day {d}"


@solara.component
def ReplayKpis(replay: Replay, day: int):
    """The chosen day's headline figures, from the run's timeseries.parquet."""
    row = replay.row(day)

    def get(key):
        v = row.get(key) if key in row.index else None
        return None if v is None or (isinstance(v, float) and pd.isna(v)) else v

    with solara.Row(classes=["fourpl-kpis", "fourpl-replay-kpis"], gap="8px", style={"flex-wrap": "wrap"}):
        Kpi("Day", f"Day {replay.clamp(day)}", f"{_when(replay, day)} · of {replay.days}",
            classes=["fourpl-kpi-day"], value_classes=["fourpl-replay-day"])
        Kpi("Created that day", style.fmt_int(get("parcels_created")),
            f"{style.fmt_int(get('parcels_in_transit'))} in transit", value_classes=["fourpl-replay-created"])
        Kpi("Delivered that day", style.fmt_int(get("parcels_delivered")), f"{style.fmt_int(get('parcels_lost'))} lost",
            value_classes=["fourpl-replay-delivered"])
        Kpi("On time", style.fmt_pct(get("on_time_rate")), "delivered that day", value_classes=["fourpl-replay-ontime"])
        Kpi("Delivery time", style.fmt_days(get("mean_lead_time_days")),
            f"p95 {style.fmt_days(get('p95_lead_time_days'))}")
        Kpi("4PL share", style.fmt_pct(get("fourpl_share")), "of parcels created")
        Kpi("Cost / parcel", style.fmt_usd(get("mean_logistics_cost")), "logistics")
        Kpi("Contracts", style.fmt_int(get("active_contracts")), "active")


@solara.component
def ReplayMap(replay: Replay, day: int):
    """The run's network on the chosen day; a click on a lane or node shows its history."""
    selected = solara.use_reactive(None)
    d = replay.clamp(day)
    key = replay.run.key
    fig, caption, shocks = solara.use_memo(lambda: replay_map_figure(replay, d), dependencies=[key, d])

    def on_click(data):
        picked = clicked_item(fig, data)
        if picked is not None:
            selected.set(picked)

    with solara.Card("Network map of the run", subtitle="that day's flows (parcels starting a leg) and contract "
                     "capacity, from the run's files; click a lane or node for its history",
                     classes=["fourpl-card", "fourpl-replay-map"]):
        if shocks:
            solara.Warning(f"In force that day: {shocks}", dense=True, classes=["fourpl-replay-shock-banner"])
        figures.PlotlyFigure(fig, on_click=on_click, version=(key, d))
        solara.Text(caption, classes=["fourpl-caption"], style={"color": style.MUTED, "font-size": "0.85em"})
        if selected.value:
            title, df = replay.selection_frame(selected.value)
            sel_fig = selection_figure(title, df)
            sel_fig.update_layout(shapes=figures.day_shapes(replay.dates[d]))
            with solara.Div(classes=["fourpl-replay-selection"]):
                figures.PlotlyFigure(sel_fig, version=(key, selected.value, d))
                if not df.empty:
                    r = df.iloc[d]
                    used = f"{style.fmt_int(r['used'])} parcels" if pd.notna(r.get("used")) else "no volume"
                    cap = (f" · contract capacity {style.fmt_int(r['capacity'])}"
                           if pd.notna(r.get("capacity")) and r["capacity"] > 0 else " · no contract capacity")
                    solara.Text(f"{title} · {_when(replay, d)}: {used}{cap} · providers that day: "
                                f"{r.get('providers') or 'none'}", classes=["fourpl-replay-selection-title"],
                                style={"font-size": "0.85em"})
                with solara.Row(justify="end"):
                    CsvButton(df, f"history-{title}", label="History (CSV)")
                    solara.Button("Close", text=True, on_click=lambda: selected.set(None))


@solara.component
def ReplayView(store, version: int = 0):
    """Choose a kept run folder, scrub its days with a slider."""
    runs = [e.run for e in store.entries.values() if e.run.folder is not None]
    chosen = solara.use_reactive("")
    day = solara.use_reactive(0)
    labels = [r.label for r in runs]
    label = chosen.value if chosen.value in labels else (labels[-1] if labels else "")
    run = runs[labels.index(label)] if runs else None

    def load():
        if run is None:
            return None, ""
        try:
            return replay_of(run), ""
        except LoadError as exc:
            return None, str(exc)

    replay, error = solara.use_memo(load, dependencies=[run.key if run is not None else "", version])
    if run is None:
        solara.Info("Open a `fourpl run` folder in the sidebar's Runs card to replay it here: a day slider, "
                    "the map of that run and each lane's history from its files.", classes=["fourpl-replay-none"])
        return
    with solara.Column(gap="12px", classes=["fourpl-replay"]):
        with solara.Card(classes=["fourpl-card"]), solara.Row(gap="16px", style={"align-items": "center",
                                                                                 "flex-wrap": "wrap"}):
            solara.Select("Run", values=labels, value=label, on_value=lambda v: (chosen.set(v), day.set(0)),
                          classes=["fourpl-replay-run"], style={"min-width": "320px"})
            if replay is not None:
                with solara.Div(classes=["fourpl-replay-slider"], style={"flex": "1 1 320px"}):
                    solara.SliderInt("Day", value=day, min=0, max=max(replay.days - 1, 0), tick_labels="end_points")
        if replay is None:
            solara.Error(error, classes=["fourpl-replay-error"])
            return
        d = replay.clamp(day.value)
        ReplayKpis(replay, d)
        ReplayMap(replay, d)
        mark = replay.dates[d] if isinstance(replay.dates[d], pd.Timestamp) else None
        ChartGrid([Entry(run)], REPLAY_CHARTS, day=d, mark=mark)
