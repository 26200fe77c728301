"""The app shows issue 13's services: returns and currencies in the charts and the Market tab,
tracking in the agent inspector. Checked against figures the model keeps elsewhere (the daily
record's counters, the exchange-rate process, the integrator's own figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("solara")

import ipyvuetify as v  # noqa: E402
import solara  # noqa: E402

from viz import figures  # noqa: E402
from viz.components.agent_inspector import AgentInspector, visibility_table  # noqa: E402
from viz.components.analysis import CHART_BY_KEY, _columns_of, chart_figure  # noqa: E402
from viz.components.market_view import MarketView, currency_table, returns_table  # noqa: E402
from viz.runs import column_families, run_from_model  # noqa: E402
from viz.state import AppModel, agents_of, series  # noqa: E402
from viz.store import Entry  # noqa: E402

SMALL = {"merchants.exporters": 6, "merchants.importers": 2}
DAYS = 45
DEVALUATION = {"shocks": [{"name": "rouble devaluation", "kind": "currency", "day": 20, "factor": 0.6,
                           "currencies": ["RUB"]}]}


@pytest.fixture(scope="module")
def model():
    m = AppModel("baseline", 3, None, **SMALL, **DEVALUATION)
    for _ in range(DAYS):
        m.step()
    return m


def test_rates_are_an_exchange_rate_kind_and_a_currency_breakdown():
    assert figures.kind_of("rate_EUR") == "fx" and figures.kind_of("rate_RUB") == "fx"
    assert figures.kind_of("on_time_rate") == "pct"        # a rate that is a share stays a share
    assert figures.kind_of("tracking_coverage_4PL-1") == "pct"
    cols = ["on_time_rate", "rate_EUR", "rate_GBP", "rate_RUB", "share_4PL-1", "markup_4PL-1"]
    fams, _ = column_families(cols)
    assert [(f.stem, f.dim, sorted(f.members)) for f in fams if f.dim == "currency"] == [
        ("rate", "currency", ["EUR", "GBP", "RUB"])]


def test_currency_table_shows_the_devaluation(model):
    fx = currency_table(model).set_index("currency")
    rates = model.rates
    for i, code in enumerate(rates.names):
        if code == "USD":
            continue
        assert fx.loc[code, "per USD, day 0"] == pytest.approx(rates.history[0][i], abs=1e-4)
        assert fx.loc[code, "per USD, today"] == pytest.approx(rates.per_usd[i], abs=1e-4)
    # the rouble lost 40% on day 20: its value against the USD is down by about that much
    change = float(fx.loc["RUB", "value vs USD since day 0"].rstrip("%")) / 100
    assert -0.5 < change < -0.3


def test_returns_by_market_add_up_to_the_daily_counters(model):
    rt = returns_table(model)
    daily = pd.DataFrame(series(model))
    assert rt["returns"].sum() == daily["returns_opened"].sum() > 0
    assert rt["refunds_usd"].sum() == pytest.approx(daily["return_refunds_usd"].sum(), abs=0.05 * len(rt))
    status_cols = [c for c in rt.columns if c in ("in_transit", "resold", "liquidated", "scrapped", "back_at_origin")]
    assert (rt[status_cols].sum(axis=1) == rt["returns"]).all()
    assert set(rt["market"]) <= set(model.world.markets)


def test_new_charts_draw_returns_currencies_payment_tracking_contacts(model):
    run = run_from_model(model)
    for key in ("returns", "returns_money", "currency", "payment", "tracking", "contacts"):
        chart = CHART_BY_KEY[key]
        cols = [c for c, _ in _columns_of(run, chart)]
        assert cols, key
        fig, table = chart_figure([Entry(run)], chart)
        assert len(fig.data) == len(cols)
        # what the chart draws is the daily record (shares in percent)
        for col in cols:
            got = table[table["column"] == col]["value"].to_numpy(dtype=float)
            scale = 100.0 if figures.kind_of(col) == "pct" else 1.0
            assert np.allclose(got, run.daily[col].to_numpy(dtype=float) * scale, equal_nan=True), (key, col)
    assert {c for c, _ in _columns_of(run, CHART_BY_KEY["currency"])} == {"rate_EUR", "rate_GBP", "rate_RUB", "rate_CNY"}


def test_inspector_shows_tracking_and_the_market_tab_currencies_and_returns(model):
    integrator = agents_of(model, "integrator")[0]
    table = visibility_table(integrator).set_index("figure")
    vis = integrator.visibility()
    assert table.loc["control tower", "value"] == str(vis["control_tower"])
    provider = agents_of(model, "carrier")[0]
    assert 0.0 <= provider.tracking_coverage <= 1.0
    box, rc = solara.render(AgentInspector(model), handle_error=False)
    rc.find(v.Select, label="Kind of agent").widget.v_model = "4PL integrator"
    rc.find(v.Select, label="Agent", v_model=integrator.name).wait_for(timeout=5)
    assert cards(rc, "fourpl-visibility")
    assert "Tracking coverage" in box_text(box) and "Control tower" in box_text(box)
    rc.close()
    box, rc = solara.render(MarketView(model), handle_error=False)
    assert cards(rc, "fourpl-currencies") and cards(rc, "fourpl-returns")
    rc.close()


def cards(rc, cls: str) -> list:
    return [w for w in rc.find(v.Card).widgets if cls in (w.class_ or "").split()]


def box_text(widget) -> str:
    """Every string under a widget (children and slots)."""
    out = []
    stack = [widget]
    while stack:
        w = stack.pop()
        for attr in ("children", "v_slots"):
            for kid in getattr(w, attr, None) or []:
                kid = kid.get("children") if isinstance(kid, dict) else kid
                if isinstance(kid, str):
                    out.append(kid)
                elif kid is not None:
                    stack.append(kid)
        for attr in ("label", "value", "title"):
            val = getattr(w, attr, None)
            if isinstance(val, str):
                out.append(val)
    return " ".join(out)
