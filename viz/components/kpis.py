"""The headline strip: the day counter and today's key figures, above every tab."""

from __future__ import annotations

import solara

from viz import style
from viz.state import column

DAY_CLASS = "fourpl-day-counter"
DATE_CLASS = "fourpl-date"


@solara.component
def Kpi(label: str, value: str, sub: str = "", classes: list[str] | None = None,
        value_classes: list[str] | None = None):
    """One figure: a small label, a big value, an optional line under it."""
    with solara.Div(classes=["fourpl-kpi", *(classes or [])]):
        solara.Div(children=[label], classes=["fourpl-kpi-label"])
        if value_classes:  # an element of its own, so tests and styles can find it by one class
            solara.Div(children=[solara.Text(value, classes=list(value_classes))], classes=["fourpl-kpi-value"])
        else:
            solara.Div(children=[value], classes=["fourpl-kpi-value"])
        if sub:
            solara.Div(children=[sub], classes=["fourpl-kpi-sub"])


@solara.component
def KpiStrip(model, day: int | None = None):
    """Day, parcels created / delivered / in transit, on-time rate, delivery time, 4PL share,
    cost per parcel and contracts: today's values from ``model.today``."""
    steps = int(getattr(model, "steps", 0) if day is None else day)
    horizon = int(getattr(model, "horizon", 0) or getattr(getattr(getattr(model, "config", None), "simulation", None),
                                                            "days", 0) or 0)
    if steps:
        date = getattr(model, "date", None)
        when = date.strftime("%d %b %Y") if date is not None else ""
    else:
        start = model.config.simulation.start_date
        when = f"starts {start.strftime('%d %b %Y')}"
    created = column(model, "parcels_created")
    delivered = column(model, "parcels_delivered")
    lost = column(model, "parcels_lost")
    with solara.Row(classes=["fourpl-kpis"], gap="8px", style={"flex-wrap": "wrap"}):
        Kpi("Day", f"Day {steps}", f"{when}" + (f" · of {horizon}" if horizon else ""),
            classes=["fourpl-kpi-day"], value_classes=[DAY_CLASS])
        Kpi("Created today", style.fmt_int(created) if steps else "–",
            f"{style.fmt_int(column(model, 'parcels_in_transit'))} in transit")
        Kpi("Delivered today", style.fmt_int(delivered) if steps else "–",
            f"{style.fmt_int(lost)} lost" if steps else "")
        Kpi("On time", style.fmt_pct(column(model, "on_time_rate")) if steps else "–", "delivered today")
        Kpi("Delivery time", style.fmt_days(column(model, "mean_lead_time_days")) if steps else "–",
            f"p95 {style.fmt_days(column(model, 'p95_lead_time_days'))}" if steps else "mean")
        Kpi("4PL share", style.fmt_pct(column(model, "fourpl_share")) if steps else "–",
            f"{len(getattr(model, 'integrators', []))} integrator(s)")
        Kpi("Cost / parcel", style.fmt_usd(column(model, "mean_logistics_cost")) if steps else "–",
            "logistics")
        spot = column(model, "spot_share_of_legs")
        Kpi("Contracts", style.fmt_int(column(model, "active_contracts")),
            f"active; spot {style.fmt_pct(spot, 0)} of legs" if steps and spot is not None else "active")
