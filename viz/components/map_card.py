"""The interactive network map: hover a lane or node for today's figures, click it for its
history (volumes, capacity, contract rate, providers) since the run began."""

from __future__ import annotations

import solara

from viz import style
from viz.components.analysis import CsvButton
from viz.components.export import ChartFigure
from viz.components.network_map import map_caption, map_data
from viz.lanes import clicked_item, lane_history_for, map_figure, selection_figure, selection_frame


@solara.component
def MapCard(model, day: int = 0):
    selected = solara.use_reactive(None)
    lane_history_for(model)  # recording from the first render on

    def build():
        data = map_data(model)
        return map_figure(model, data), map_caption(model, data), data.shocks

    # not redrawn on a click (a new map widget while the history's is made lost the latter's
    # figure in the browser): the clicked lane is named above its history instead
    fig, caption, shocks = solara.use_memo(build, dependencies=[id(model), day])

    def on_click(data):
        picked = clicked_item(fig, data)
        if picked is not None:
            selected.set(picked)

    with solara.Card("Network map", subtitle="hover a lane or node for today's figures; click it for its history; "
                     "drag to pan, scroll to zoom", classes=["fourpl-card", "fourpl-map"]):
        if shocks:
            solara.Warning(f"In force today: {shocks}", dense=True, classes=["fourpl-shock-banner"])
        ChartFigure(fig, name=f"network-map-{model.date}", on_click=on_click, version=(id(model), day))
        solara.Text(caption, classes=["fourpl-caption"], style={"color": style.MUTED, "font-size": "0.85em"})
        if selected.value:
            title, df = selection_frame(model, selected.value)
            with solara.Div(classes=["fourpl-selection"]):
                if not df.empty:
                    last = df.iloc[-1]
                    solara.Text(f"{title} · providers today: {last.get('providers') or 'none'}",
                                classes=["fourpl-selection-title"], style={"font-size": "0.85em"})
                with ChartFigure(selection_figure(title, df), name=f"history-{title}", version=(selected.value, day)):
                    CsvButton(df, f"history-{title}", label="History (CSV)")
                    solara.Button("Close", text=True, on_click=lambda: selected.set(None))
