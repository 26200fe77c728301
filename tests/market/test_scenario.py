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


# ------------------------------------------------------------------------------------------
# strict types, non-finite numbers, representable dates, names, extends, message form (issue 10)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, needle", [
    ("demand.scale", "2", "valid number"),
    ("demand.scale", True, "valid number"),
    ("merchants.exporters", True, "valid integer"),
    ("merchants.exporters", 2.0, "valid integer"),
    ("merchants.exporters", "3", "valid integer"),
    ("integrators.insure", 1, "valid boolean"),
    ("integrators.insure", "true", "valid boolean"),
    ("merchants.products", ["1", "2"], "valid integer"),
    ("demand.weekly", [1, 1, 1, "1", 1, 1, 1], "valid number"),
    ("market.auction", 1, "first_price"),
    ("world", 5, "valid string"),
    ("merchants.cash", float("inf"), "finite number"),
    ("merchants.cash", float("nan"), "finite number"),
    ("insurance.deductible", 1e13, "at most 1e+12 USD"),
    ("integrators.planning_volume", 1e300, "at most"),
    ("simulation.start_date", "0001-01-01", "1900-01-01 to 2999-12-31"),
    ("simulation.start_date", "9999-12-01", "1900-01-01 to 2999-12-31"),
    ("demand.peaks", [{"name": "x", "date": "02-29"}], "demand.peaks[0].date"),
    ("name", "../x", "file names"),
    ("name", "", "file names"),
    ("name", "a\tb", "file names"),
])
def test_strict_and_finite(key, value, needle):
    with pytest.raises(ScenarioError) as e:
        load_scenario("baseline", {key: value})
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_what_tools_give_is_still_fine():
    """Ints for floats, lists for tuples, ISO strings for dates, numpy scalars: all accepted."""
    import datetime as dt

    import numpy as np
    s = load_scenario("baseline", {"demand.scale": 2, "merchants.products": [1, 3], "simulation.start_date": "2024-03-01",
                                   "claims.processing_days": [1, 2, 3], "merchants.exporters": np.int64(7),
                                   "carriers.markup": np.float32(0.25)})
    assert s.demand.scale == 2.0 and isinstance(s.demand.scale, float)
    assert s.merchants.products == (1, 3) and s.simulation.start_date == dt.date(2024, 3, 1)
    assert s.merchants.exporters == 7 and type(s.merchants.exporters) is int


@pytest.mark.parametrize("name", sorted(__import__("market.scenario", fromlist=["x"]).builtin_scenarios()))
def test_every_builtin_survives_dump_and_reload(name, tmp_path):
    """Strict types must not break what the tools do: re-validating a dump, reading config.toml back."""
    import tomli_w

    from market.scenario import to_toml_dict
    s = load_scenario(name)
    assert load_scenario(s, {"demand.scale": s.demand.scale}) == s
    f = tmp_path / "config.toml"
    f.write_text(tomli_w.dumps(to_toml_dict(s)))
    assert load_scenario(str(f)).model_dump(exclude={"extends"}) == s.model_dump(exclude={"extends"})


def test_extends_cannot_be_overridden():
    for key in ("extends", "extends__x"):
        with pytest.raises(ScenarioError, match="'extends' cannot be overridden"):
            load_scenario("baseline", {key: "no-4pl"})


def test_a_file_is_named_after_itself_not_its_parent(tmp_path):
    (tmp_path / "child.toml").write_text('extends = "baseline"\n[demand]\nscale = 2.0\n')
    (tmp_path / "grandchild.toml").write_text('extends = "child.toml"\n')
    assert load_scenario(str(tmp_path / "child.toml")).name == "child"
    assert load_scenario(str(tmp_path / "grandchild.toml")).name == "grandchild"
    (tmp_path / "named.toml").write_text('extends = "child.toml"\nname = "mine"\n')
    assert load_scenario(str(tmp_path / "named.toml")).name == "mine"
    with pytest.raises(ScenarioError, match="scenario 'child'"):
        load_scenario(str(tmp_path / "child.toml"), {"demand.scale": -1})


def test_huge_values_are_cut_in_messages():
    with pytest.raises(ScenarioError) as e:
        load_scenario("baseline", {"demand.weekly": [1.0] * 200_000})
    assert "demand.weekly" in str(e.value) and "..." in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(ScenarioError) as e:
        load_scenario("baseline", {"merchants.exporters": 10 ** 5000})
    assert "5001 digits" in str(e.value)
    with pytest.raises(ScenarioError) as e:
        load_scenario("baseline", {"demand.x\ny" + "z" * 10_000: 1})
    assert "\n" not in str(e.value) and len(str(e.value)) <= 1000


def test_files_that_are_not_utf8_toml(tmp_path):
    f = tmp_path / "u16.toml"
    f.write_text('name = "x"\n', encoding="utf-16")
    with pytest.raises(ScenarioError, match="not a UTF-8 text file"):
        load_scenario(str(f))
    f.write_bytes(b"x = " + b"[" * 50_000)
    with pytest.raises(ScenarioError, match="u16.toml"):
        load_scenario(str(f))


def test_shocks_that_never_apply():
    from market.scenario import shocks_never_applying
    shock = {"name": "late", "kind": "demand", "day": 400}
    s = load_scenario("baseline", {"shocks": [shock]})          # past simulation.days: a warning's matter
    assert shocks_never_applying(s) == [
        "shock 'late' starts on day 400, after the run's last day (2024-12-30, day 364); it never applies"]
    assert shocks_never_applying(s, 401) == []
    with pytest.raises(ScenarioError, match="before the run starts"):
        load_scenario("baseline", {"shocks": [{"name": "old", "kind": "demand", "start": "2023-12-01", "days": 31}]})
    ok = load_scenario("baseline", {"shocks": [{"name": "edge", "kind": "demand", "start": "2023-12-01", "days": 32}]})
    assert shocks_never_applying(ok) == []                   # its last day is day 0 of the run
    with pytest.raises(ScenarioError, match="longest run"):
        load_scenario("baseline", {"shocks": [{"name": "far", "kind": "demand", "start": "2040-01-01"}]})
