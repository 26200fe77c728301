"""The 4PL's composition: for an integrator and a route family (origin, market, channel), the
Pareto front of end-to-end services its service graph offers (cost, days, risk), the menu it
picked from it (economy / standard / express: route, legs, providers, cost, days, risk), which
of them it sold (its parcels on each route variant), and how the menu changed day by day
(recorded for every family it has quoted, so a shock's effect shows as new rows).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import solara

from viz import style
from viz.components.analysis import CsvButton
from viz.components.export import ChartFigure
from viz.state import resource_label


def family_label(family: tuple) -> str:
    origin, market, channel = (list(family) + ["", "", ""])[:3]
    return f"{origin} → {market} ({style.channel_label(channel)})"


def _names(model) -> dict[int, str]:
    return {a.unique_id: a.name for a in model.agents}


def _legs(model, offers: tuple[int, ...], names: dict[int, str]) -> list[tuple[str, str]]:
    o = model.offers
    out = []
    for k in offers:
        res = int(o.resource[k])
        out.append((resource_label(model, res), names.get(int(o.provider[k]), str(int(o.provider[k])))))
    return out


def _catalogue(model, integrator):
    if integrator.catalogue is None:
        from market.integration.services import ServiceCatalogue

        integrator.catalogue = ServiceCatalogue(model, integrator)
    return integrator.catalogue


def sold_by_route(model, integrator) -> dict[int, int]:
    """Parcels in flight that the integrator sold, by route variant."""
    P = model.parcels
    try:
        mine = np.asarray(P["integrator"]) == integrator.unique_id  # the agent id (integrator_idx: its index)
        routes = np.asarray(P["route"])[mine]
    except (KeyError, IndexError, ValueError, AttributeError):
        return {}
    r, n = np.unique(routes, return_counts=True)
    return {int(a): int(b) for a, b in zip(r, n)}


def families_of(model, integrator) -> list[tuple]:
    """The route families the integrator sells on (its parcels' routes) first, then the rest."""
    w = model.world
    sold = sold_by_route(model, integrator)
    fam_sold: dict[tuple, int] = {}
    for r, n in sold.items():
        if 0 <= r < len(w.routes):
            fam_sold[w.routes[r].family] = fam_sold.get(w.routes[r].family, 0) + n
    rest = [f for f in w.route_variants if f and f[2] != "replenish" and f not in fam_sold]
    return sorted(fam_sold, key=lambda f: -fam_sold[f]) + sorted(rest)


def menu_frame(model, integrator, family: tuple) -> pd.DataFrame:
    """The integrator's menu for a family: one row per service offered."""
    cat = _catalogue(model, integrator)
    menu = cat.offers(family)
    names = _names(model)
    sold = sold_by_route(model, integrator)
    rows = []
    for name, s in menu.items():
        legs = _legs(model, s.offers, names)
        rows.append({"service": name, "route": s.route, "legs": " · ".join(lab for lab, _ in legs),
                     "providers": ", ".join(p for _, p in legs), "cost_parcel_usd": round(s.cost_parcel, 3),
                     "cost_kg_usd": round(s.cost_kg, 3), "days": round(s.days, 2), "risk": round(s.risk, 4),
                     "parcels_in_flight_on_route": sold.get(int(s.route), 0)})
    return pd.DataFrame(rows)


def front_frame(model, integrator, family: tuple) -> pd.DataFrame:
    """The Pareto front (cost, days, risk) the menu was picked from."""
    cat = _catalogue(model, integrator)
    front = cat.services(family)
    names = _names(model)
    o = model.offers
    rows = []
    for svc in front:
        offers = tuple(k for u, v, k in svc.legs if k != -1)
        route = next((u[0] for u, v, k in svc.legs if k != -1), -1)
        provs = [names.get(int(o.provider[k]), str(int(o.provider[k]))) for k in offers]
        rows.append({"route": int(route), "cost": float(svc.cost), "days": float(svc.time), "risk": float(svc.risk),
                     "capacity": float(svc.capacity), "providers": ", ".join(provs), "offers": offers})
    return pd.DataFrame(rows)


class MenuHistory:
    """Each day, the menu of every family the integrator has quoted: rows appended on change."""

    def __init__(self, model, integrator):
        self._model = weakref.ref(model)
        self.integrator = integrator
        self.rows: list[dict] = []
        self._last: dict[tuple, tuple] = {}
        try:
            from mesa.time import Priority, Schedule

            model.schedule_recurring(self.record, Schedule(interval=1.0, start=float(model.time) + 1.0),
                                     priority=Priority.LOW)
        except (ImportError, AttributeError, ValueError, TypeError):
            pass

    def record(self) -> None:
        m = self._model()
        cat = getattr(self.integrator, "catalogue", None)
        if m is None or cat is None:
            return
        fams = list(dict.fromkeys(k[0] for k in list(cat._menus)))[:40]
        names = None
        for fam in fams:
            menu = cat.offers(fam)
            sig = tuple((n, s.route, s.offers) for n, s in sorted(menu.items()))
            if self._last.get(fam) == sig:
                continue
            self._last[fam] = sig
            names = names or _names(m)
            for n, s in menu.items():
                legs = _legs(m, s.offers, names)
                self.rows.append({"date": pd.Timestamp(m.date), "family": family_label(fam), "service": n,
                                  "route": s.route, "providers": ", ".join(p for _, p in legs),
                                  "cost_parcel_usd": round(s.cost_parcel, 3), "days": round(s.days, 2),
                                  "risk": round(s.risk, 4)})

    def frame(self, family: tuple | None = None) -> pd.DataFrame:
        df = pd.DataFrame(self.rows)
        if family is not None and not df.empty:
            df = df[df["family"] == family_label(family)]
        return df


_MENUS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def menu_history_for(model, integrator) -> MenuHistory:
    per = _MENUS.setdefault(model, {})
    h = per.get(integrator.index)
    if h is None:
        h = per[integrator.index] = MenuHistory(model, integrator)
    return h


def front_figure(front: pd.DataFrame, menu: pd.DataFrame, title: str) -> go.Figure:
    fig = go.Figure()
    if not front.empty:
        fig.add_trace(go.Scatter(
            x=front["days"], y=front["cost"], mode="markers", name="Pareto front",
            marker=dict(size=10, color=front["risk"] * 100, colorscale="Reds", showscale=True,
                        colorbar=dict(title="risk %", thickness=10), line=dict(width=1, color="white")),
            customdata=np.c_[front["route"], front["risk"] * 100, front["providers"]],
            hovertemplate="route %{customdata[0]}<br>%{x:.1f} days, $%{y:.2f} cost<br>risk %{customdata[1]:.2f}%"
                          "<br>%{customdata[2]}<extra></extra>"))
    if not menu.empty:
        # each service offered, where it sits on the front (same route and providers)
        at = menu.merge(front[["route", "providers", "cost", "days"]].rename(columns={"days": "front_days"}),
                        on=["route", "providers"], how="left") if not front.empty else menu.assign(cost=np.nan)
        x = at["front_days"].fillna(at["days"]) if "front_days" in at else at["days"]
        y = at["cost"].fillna(at["cost_parcel_usd"])
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="markers+text", name="offered", text=at["service"],
            textposition="top center", marker=dict(size=16, symbol="circle-open", color=style.ACCENT,
                                                   line=dict(width=2.5)),
            hovertemplate="%{text}: %{x:.2f} days, $%{y:.2f} cost<extra></extra>"))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=34, b=10), title=dict(text=title, font=dict(size=12)),
                      xaxis=dict(title="expected days door to door", gridcolor=style.GRID),
                      yaxis=dict(title="cost of the service (USD, the front's objective)", gridcolor=style.GRID,
                                 tickprefix="$"),
                      plot_bgcolor="white", legend=dict(orientation="h", y=-0.2))
    return fig


@solara.component
def CompositionView(model, day: int = 0):
    """Pick an integrator and a route family: its front, its menu, what it sold, the menu's history."""
    integrators = list(getattr(model, "integrators", []) or [])
    names = [it.name for it in integrators]
    it_name = solara.use_reactive(names[0] if names else "")
    fam_key = solara.use_reactive("")
    it = (integrators[names.index(it_name.value)] if it_name.value in names else integrators[0]) if integrators else None
    fams = solara.use_memo(lambda: families_of(model, it) if it is not None else [],
                           dependencies=[id(model), it_name.value, day // 7])
    if it is None:
        solara.Info("No 4PL integrator in this scenario.")
        return
    for x in integrators:
        menu_history_for(model, x)
    labels = [family_label(f) for f in fams]
    if fam_key.value not in labels and labels:
        fam_key.set(labels[0])
        return
    fam = fams[labels.index(fam_key.value)] if fam_key.value in labels else None
    with solara.Card("The 4PL's composition", subtitle="end-to-end services composed from providers' legs: the "
                     "Pareto front over cost, days and risk, and the menu picked from it",
                     classes=["fourpl-card", "fourpl-composition"]):
        with solara.Row(classes=["fourpl-wrap"]):
            solara.Select("Integrator", values=names, value=it_name, classes=["fourpl-comp-integrator"])
            solara.Select("Route family (origin → market, channel)", values=labels, value=fam_key,
                          classes=["fourpl-comp-family"])
        if fam is None:
            return
        menu = menu_frame(model, it, fam)
        front = front_frame(model, it, fam)
        ChartFigure(front_figure(front, menu, f"{it.name}: {family_label(fam)} on {model.date}"),
                    name=f"front-{it.name}-{family_label(fam)}", version=(it.name, fam_key.value, day))
        solara.Markdown(f"**Menu offered** ({len(menu)} services; parcels in flight sold on each route)")
        with solara.Div(classes=["fourpl-table-wrap", "fourpl-menu"]):
            solara.DataFrame(menu, items_per_page=5)
        CsvButton(menu, f"menu-{it.name}-{family_label(fam)}", label="Menu (CSV)")
        hist = menu_history_for(model, it).frame(fam)
        solara.Markdown(f"**How the menu changed** ({len(hist)} rows: a row set each day the menu changed)")
        with solara.Div(classes=["fourpl-table-wrap", "fourpl-menu-history"]):
            solara.DataFrame(hist, items_per_page=9)
        CsvButton(hist, f"menu-history-{it.name}", label="History (CSV)")
        with solara.Div(classes=["fourpl-table-wrap", "fourpl-front"]):
            solara.Markdown(f"**Pareto front** ({len(front)} services)")
            solara.DataFrame(front.drop(columns=["offers"]) if not front.empty else front, items_per_page=8)
        CsvButton(front.drop(columns=["offers"]) if not front.empty else front, f"front-{it.name}", label="Front (CSV)")
