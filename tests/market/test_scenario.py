"""The scenario schema: defaults, extends, overrides and one-line errors."""

from __future__ import annotations

import pytest

from market.scenario import (Scenario, ScenarioError, apply_overrides, load_scenario, parameter_table,
                             parse_value)


def test_baseline_loads_with_defaults():
    s = load_scenario("baseline")
    assert s.name == "baseline" and s.simulation.days == 365
    assert s.demand.scale == Scenario().demand.scale


@pytest.mark.parametrize("key, value, needle", [
    ("demand.scale", -1, "greater than 0"),
    ("merchants.exporters", "x", "valid integer"),
    ("demand.nope", 1, "unknown key 'demand.nope'"),
    ("nope", 1, "unknown key 'nope'"),
    ("market.auction", "dutch", "first_price"),
    ("merchants.products", [3, 1], "low <= high"),
])
def test_errors_name_the_key(key, value, needle):
    with pytest.raises(ScenarioError) as e:
        load_scenario("baseline", {key: value})
    msg = str(e.value)
    assert "\n" not in msg and needle in msg
    assert key.split(".")[0] in msg


def test_unknown_key_suggests():
    with pytest.raises(ScenarioError, match="did you mean 'scale'"):
        load_scenario("baseline", {"demand.scael": 2})


def test_extends_and_override(tmp_path):
    f = tmp_path / "child.toml"
    f.write_text('extends = "baseline"\nname = "child"\n[demand]\nscale = 3.0\n')
    s = load_scenario(f, {"merchants.exporters": 2})
    assert s.name == "child" and s.demand.scale == 3.0 and s.merchants.exporters == 2
    assert s.simulation.days == 365   # inherited


def test_extends_loop(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ScenarioError, match="loops"):
        load_scenario(tmp_path / "a.toml")


def test_parse_value_and_dunder_keys():
    assert parse_value("2") == 2 and parse_value("2.5") == 2.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("vickrey") == "vickrey"
    assert apply_overrides({}, {"demand__scale": 2}) == {"demand": {"scale": 2}}


def test_parameter_table_covers_every_section():
    keys = {r["key"] for r in parameter_table()}
    for k in ("demand.scale", "merchants.exporters", "carriers.markup", "market.auction", "network.capacity_scale"):
        assert k in keys
    assert all(r["description"] for r in parameter_table())
