"""The Plotly charts and the composition tables, checked against the data they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("plotly")

from viz import figures  # noqa: E402
from viz.components.analysis import CHART_BY_KEY, chart_figure  # noqa: E402
from viz.runs import Run, load_run, rule_changes, shock_spans  # noqa: E402
from viz.store import Entry, SweepPoint  # noqa: E402
from viz.runs import load_sweep  # noqa: E402


def _run(key, shocks, values):
    n = len(values)
    d = pd.DataFrame({"day": range(n), "date": pd.date_range("2025-04-28", periods=n),
                      "on_time_rate": values, "shocks_in_force": shocks})
    return Run(key=key, label=key, scenario="x", seed=1, params={}, daily=d)


def test_shocks_are_shaded_and_rule_changes_marked_on_the_time_axis():
    r = _run("a", ["", "strike", "strike", "", "", "", ""], [0.9, 0.5, 0.6, 0.8, 0.9, 0.95, 0.9])
    fig = figures.time_figure([figures.series_of(r.daily, "on_time_rate", "on time")], kind="pct",
                              shocks=shock_spans(r.daily), rules=rule_changes(r.daily, "world"))
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(rects) == 1
    assert pd.Timestamp(rects[0].x0) == pd.Timestamp("2025-04-29")
    assert pd.Timestamp(rects[0].x1) == pd.Timestamp("2025-05-01")  # through the end of the last day
    # the US de minimis for goods of China ended on 2 May 2025 (world.toml's dated duty rules)
    assert [pd.Timestamp(s.x0) for s in lines] == [pd.Timestamp("2025-05-02")]
    assert any("US customs rule from 2025-05-02" in (a.hovertext or "") for a in fig.layout.annotations)
    # a share is drawn in percent
    assert np.allclose(np.asarray(fig.data[0].y, dtype=float), np.array(r.daily["on_time_rate"]) * 100)


def test_overlaid_runs_differ_by_dash_and_name_and_a_sweep_point_has_its_band(results_dirs):
    a, b = load_run(results_dirs["a"]), load_run(results_dirs["b"])
    fig, table = chart_figure([Entry(a), Entry(b)], CHART_BY_KEY["ontime"])
    lines = [t for t in fig.data if t.fill is None]
    assert [t.line.dash for t in lines] == ["solid", "dash"]
    assert a.label in lines[0].name and b.label in lines[1].name
    got = table[table["run"] == b.label]["value"].to_numpy(float)
    assert np.allclose(got, b.daily["on_time_rate"].to_numpy(float) * 100, equal_nan=True)
    sw = load_sweep(results_dirs["sweep"])
    sp = SweepPoint(sw, 1)
    fig, _ = chart_figure([Entry(sp.as_run(), sp)], CHART_BY_KEY["parcels"])
    bands = [t for t in fig.data if t.fill == "toself"]
    assert bands, "a sweep point is drawn with its confidence band"
    band = sw.band(1, "parcels_delivered")
    [delivered] = [t for t in bands if t.name.startswith("Parcels delivered")]
    hi = np.asarray(delivered.y, dtype=float)[: len(band)]  # the band's upper edge, then the lower reversed
    assert np.allclose(hi, band["hi"].to_numpy(float))


@pytest.mark.parametrize("column, kind", [("on_time_rate", "pct"), ("fourpl_share", "pct"), ("markup_4PL-1", "pct"),
                                          ("utilisation_truck", "pct"), ("contract_price_truck", "usd"),
                                          ("landed_cost_per_parcel_US", "usd"), ("claims_usd", "usd"),
                                          ("mean_lead_time_days", "days"), ("orders_US", "count"),
                                          ("returns_US", "count")])
def test_units_come_from_the_column_names(column, kind):
    assert figures.kind_of(column) == kind


def test_the_composition_menu_is_picked_from_the_front_and_counts_what_was_sold():
    from viz.components.composition import families_of, front_frame, menu_frame, sold_by_route
    from viz.state import AppModel

    m = AppModel("baseline", 1, None, **{"merchants.exporters": 6, "merchants.importers": 2})
    for _ in range(8):
        m.step()
    it = m.integrators[0]
    fams = families_of(m, it)
    fam = fams[0]
    menu, front = menu_frame(m, it, fam), front_frame(m, it, fam)
    assert len(menu) >= 1 and len(front) >= len(menu)
    front_keys = {(r, p) for r, p in zip(front["route"], front["providers"])}
    for r, p in zip(menu["route"], menu["providers"]):
        assert (r, p) in front_keys  # every service offered is on the front
    # parcels in flight the 4PL sold, counted here from the parcel table itself
    P = m.parcels
    mine = np.asarray(P["integrator"]) == it.unique_id
    routes = np.asarray(P["route"])[mine]
    assert sold_by_route(m, it) == {int(r): int((routes == r).sum()) for r in np.unique(routes)}
    assert menu["parcels_in_flight_on_route"].sum() > 0  # the family it sells most has parcels
    w = m.world
    fam_of = {w.routes[r].family for r in np.unique(routes)}
    assert fam in fam_of
