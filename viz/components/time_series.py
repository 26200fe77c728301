"""Time-series plots of the run so far: one card per chart of ``viz.charts.CHARTS``.

Parcels a day by channel; mean and p95 delivery time; on-time rate; contract and spot prices
by mode; integrator markups and 4PL share; provider utilisation by mode. Each chart is redrawn
only when the model has stepped (or was rebuilt), not on every re-render of the page.
"""

from __future__ import annotations

import solara

from viz import charts
from viz.state import series

IMG_CLASS = "fourpl-chart-img"


@solara.component
def TimeSeriesChart(model, key: str, day: int | None = None):
    """One chart card (``key`` is a ``viz.charts.CHARTS`` key, e.g. ``"parcels"``)."""
    spec = charts.CHART_BY_KEY[key]
    steps = int(getattr(model, "steps", 0) if day is None else day)
    image = solara.use_memo(lambda: charts.chart_png(key, series(model)), dependencies=[model, steps, key])
    with solara.Card(spec.title, subtitle=spec.subtitle, classes=["fourpl-card", f"fourpl-chart-{key}"]):
        solara.Image(image, width="100%", classes=[IMG_CLASS, f"{IMG_CLASS}-{key}"])


@solara.component
def TimeSeries(model, keys: list[str] | None = None, day: int | None = None):
    """The charts in a responsive grid: two a row on a wide screen, one on a narrow one."""
    keys = list(keys) if keys else [c.key for c in charts.CHARTS]
    with solara.ColumnsResponsive(12, large=6, classes=["fourpl-charts"]):
        for key in keys:
            TimeSeriesChart(model, key, day=int(getattr(model, "steps", 0)) if day is None else day)
