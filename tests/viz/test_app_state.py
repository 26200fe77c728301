"""The app's state (viz.state): controls from the schema, the model it builds, its history."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("solara")

from market.scenario import builtin_scenarios, parameter_table  # noqa: E402
from viz.state import (  # noqa: E402
    AppModel,
    default_settings,
    history_for,
    overrides_for,
    pending_changes,
    scenario_values,
    ui_params,
)

SMALL = {"merchants.exporters": 4, "merchants.importers": 2}


def test_controls_are_exactly_the_schema_rows_marked_ui():
    ui_rows = [r["key"] for r in parameter_table() if r["ui"]]
    assert [p.key for p in ui_params()] == ui_rows
    for p in ui_params():
        assert p.kind in ("int", "float", "choice", "bool")
        if p.kind == "choice":
            assert p.default in p.choices


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_scenario_value_fits_its_slider(name):
    for key, value in scenario_values(name).items():
        p = next(q for q in ui_params() if q.key == key)
        if p.kind in ("int", "float"):
            lo, hi, step = p.slider_range(value)
            assert lo <= value <= hi, (name, key, value, lo, hi)
            assert step > 0
            if p.lower is not None:
                assert lo >= p.lower
            if p.upper is not None:
                assert hi <= p.upper


def test_only_moved_sliders_become_overrides():
    values = scenario_values("4pl-competition")
    assert values["integrators.count"] == 3  # the scenario's own value, not the schema default
    assert overrides_for("4pl-competition", values) == {}
    assert overrides_for("4pl-competition", {**values, "demand.scale": 1.5}) == {"demand.scale": 1.5}


def test_app_model_takes_settings_and_ignores_mesas_scenario_object():
    from mesa.experimental.scenarios import Scenario

    s = default_settings("no-4pl", seed=5)
    s["values"] = {**s["values"], **SMALL}  # unknown-to-ui keys pass through as overrides
    m = AppModel(**s, scenario=Scenario())  # what Mesa's Reset passes
    assert m.scenario_name == "no-4pl" and m.app_seed == 5
    assert len(m.integrators) == 0
    assert m.config.merchants.exporters == 4
    assert pending_changes(s, m) == []
    assert pending_changes({**s, "seed": 6}, m) == ["seed 6"]


def test_same_settings_same_run():
    a = AppModel("baseline", 3, None, **SMALL)
    b = AppModel("baseline", 3, None, **SMALL)
    for _ in range(3):
        a.step()
        b.step()
    assert a.today["parcels_created"] == b.today["parcels_created"]


def test_history_records_each_agent_every_day():
    m = AppModel("baseline", 2, None, **SMALL)
    h = history_for(m)
    assert h.steps == [0]
    for _ in range(4):
        m.step()
    assert h.steps == [0, 1, 2, 3, 4]  # a row per day, recorded by a Mesa event after each step
    assert history_for(m) is h
    mer, car = m.merchants[0], m.carriers[0]
    assert h.of(mer.unique_id, "cash")[-1] == pytest.approx(mer.cash)
    assert h.of(car.unique_id, "cash")[-1] == pytest.approx(car.cash)
    assert np.nansum(h.of(mer.unique_id, "volume")) > 0  # it sold something
    rep = h.of(mer.unique_id, "reputation")
    assert np.isfinite(rep).all() and ((0 <= rep) & (rep <= 1)).all()
    # the day's profit is the change in cash (no capital moved after day 0)
    cash = h.of(mer.unique_id, "cash")
    assert np.allclose(np.diff(cash), h.of(mer.unique_id, "pnl")[1:], atol=0.011)
    pnl = h.pnl_by_kind(mer.acct)
    assert pnl.get("sale", 0) > 0 and "capital" not in pnl


def test_the_run_stops_at_the_scenario_horizon():
    m = AppModel("baseline", 1, None, **{**SMALL, "simulation.days": 2})
    m.step()
    assert m.running
    m.step()
    assert not m.running  # Mesa's controller disables Play and Step


def test_every_scenario_value_sits_on_its_slider_grid():
    """A slider snaps its value to min + k * step; a scenario value off that grid (a calibrated
    0.0107 on a 0.001 slider) came back snapped, and the fresh page said "Press Reset to run
    with Time elasticity 0.011" although nothing was changed."""
    from market.scenario import builtin_scenarios
    from viz.state import scenario_values, ui_params

    for name in builtin_scenarios():
        values = scenario_values(name)
        for p in ui_params():
            if p.kind not in ("int", "float") or p.key not in values:
                continue
            x = float(values[p.key])
            lo, hi, step = p.slider_range(values[p.key])
            k = (x - lo) / step
            assert abs(k - round(k)) < 1e-6, f"{name}: {p.key} = {x} is off the grid {lo} + k * {step}"
            assert lo - 1e-12 <= x <= hi + 1e-12, f"{name}: {p.key} = {x} outside [{lo}, {hi}]"
