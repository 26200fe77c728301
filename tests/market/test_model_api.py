"""The library API of Marketplace: finish() once and for all, clear errors for bad seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market import Marketplace, ScenarioError

SMALL = {"merchants.exporters": 4, "merchants.importers": 2}


@pytest.fixture
def finished(tmp_path):
    path = tmp_path / "parcels.parquet"
    m = Marketplace("baseline", rng=5, parcels_path=path, **SMALL)
    for _ in range(12):
        m.step()
    return m, path, m.finish()


def test_finish_twice_returns_the_same_summary_and_leaves_the_file(finished):
    m, path, first = finished
    data = path.read_bytes()
    rows = len(pd.read_parquet(path))
    assert rows == first["parcels_created"] > 0          # counted from the file itself
    first["parcels_created"] = -1                         # a caller's change is its own
    again = m.finish()
    assert path.read_bytes() == data
    assert again["parcels_created"] == rows
    assert again == m.finish() and m.finished


def test_a_finished_model_does_not_step(finished):
    m, path, summary = finished
    steps, data = m.steps, path.read_bytes()
    with pytest.raises(RuntimeError, match="finished"):
        m.step()
    assert m.steps == steps
    with pytest.raises(RuntimeError, match="finished"):
        m.run_for(3)
    assert path.read_bytes() == data and m.finish() == summary


@pytest.mark.parametrize("rng", [-1, "abc", 1.5, True, [1, -2], b"\x01", {"a": 1}, float("nan")])
def test_a_bad_seed_is_a_clear_error_naming_rng(rng):
    with pytest.raises(ScenarioError, match=r"^rng must be a non-negative integer"):
        Marketplace("baseline", rng=rng, **SMALL)


def test_a_bad_seed_keyword_is_named_seed():
    with pytest.raises(ScenarioError, match=r"^seed must be"):
        Marketplace("baseline", seed=-3, **SMALL)
    with pytest.raises(ScenarioError, match="not both"):
        Marketplace("baseline", rng=1, seed=1, **SMALL)


def test_good_seeds_of_every_kind():
    days = []
    for rng in (3, np.int64(3), [3], np.random.SeedSequence(3), np.random.default_rng(3), None, 2 ** 100):
        m = Marketplace("baseline", rng=rng, **SMALL)
        m.step()
        days.append(m.today["parcels_created"])
    assert days[0] == days[1]                    # 3 and numpy's 3 are the same seed


def test_numpy_values_in_overrides_are_their_python_values():
    m = Marketplace("baseline", rng=1, **{"merchants.exporters": np.int64(3), "merchants.importers": np.int32(1),
                                          "demand.scale": np.float64(1.5), "integrators.insure": np.bool_(False)})
    cfg = m.config
    assert (cfg.merchants.exporters, cfg.merchants.importers, cfg.demand.scale, cfg.integrators.insure) == (3, 1, 1.5, False)
    assert type(cfg.merchants.exporters) is int
