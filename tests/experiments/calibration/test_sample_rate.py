"""simulation.sample_rate: real-world equivalents in summary.json, capacities scaled to match,
and a convergence check (the same real market simulated at two sample rates)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market.scenario import WORLD_SAMPLE_RATE, load_scenario

SMALL = {"merchants.exporters": 4, "merchants.importers": 1}
WORLD_FILE = Path(__file__).resolve().parents[3] / "market" / "data" / "world.toml"


def test_the_default_rate_is_the_world_files_and_its_range_is_checked():
    assert load_scenario("baseline").simulation.sample_rate == WORLD_SAMPLE_RATE
    from market.scenario import ScenarioError
    for bad in (0.5, -1.0, float("nan")):
        with pytest.raises(ScenarioError, match="sample_rate"):
            load_scenario("baseline", {"simulation.sample_rate": bad})


def test_summary_reports_real_world_equivalents_counted_from_the_parcels(tmp_path):
    from experiments.run import run_scenario
    rate = 1234.5
    out = tmp_path / "run"
    run_scenario("baseline", days=20, seed=2, out=out, overrides={**SMALL, "simulation.sample_rate": rate},
                 progress=False)
    s = json.loads((out / "summary.json").read_text())
    parcels = pd.read_parquet(out / "parcels.parquet", columns=["market", "channel", "status"])
    rw = s["real_world"]
    assert rw["sample_rate"] == rate
    assert rw["parcels_created"] == pytest.approx(len(parcels) * rate)
    assert rw["parcels_delivered"] == pytest.approx((parcels["status"] == "delivered").sum() * rate)
    assert rw["parcels_per_year"] == pytest.approx(len(parcels) * rate * 365 / 20)
    by_market = parcels["market"].astype(str).value_counts()
    for m, n in by_market.items():
        assert rw["parcels_per_year_by_market"][m] == pytest.approx(n * rate * 365 / 20)
    by_channel = parcels["channel"].astype(str).value_counts()
    for ch, n in by_channel.items():
        assert rw["parcels_per_year_by_channel"][ch] == pytest.approx(n * rate * 365 / 20)
    assert rw["merchants"] == pytest.approx(5 * rate)            # 4 exporters + 1 importer
    assert s["start_date"] == "2024-01-01"


def _lane_capacity(model) -> tuple[float, float]:
    """(capacity offered on the first lane, the world file's capacity of that lane)."""
    raw = tomllib.loads(WORLD_FILE.read_text())
    first = raw["lanes"][0]
    lane = model.world.lanes[0]
    assert lane.u == first["pairs"][0][0] and lane.v == first["pairs"][0][1]
    o = model.offers
    return float(o.capacity[o.resource == lane.index].sum()), float(first["capacity"])


def test_world_capacities_scale_with_the_sample_rate():
    from market.model import Marketplace
    world = {**SMALL, "network.capacity_from": "world", "network.capacity_scale": 1.5}
    got = {}
    for rate in (WORLD_SAMPLE_RATE, WORLD_SAMPLE_RATE / 4):
        m = Marketplace("baseline", rng=1, **world, **{"simulation.sample_rate": rate})
        offered, in_file = _lane_capacity(m)
        assert offered == pytest.approx(in_file * 1.5 * WORLD_SAMPLE_RATE / rate)
        got[rate] = m.offers.capacity.copy()
    # every capacity (lanes, warehouses, brokers) is four times larger at a quarter of the rate
    assert np.allclose(got[WORLD_SAMPLE_RATE / 4], 4 * got[WORLD_SAMPLE_RATE])


def test_capacities_sized_from_demand_ignore_the_rate():
    """With capacity_from = demand (the default), capacity follows the simulated merchants:
    a run at another sample rate is the same run, only its real-world figures differ."""
    from market.model import Marketplace
    runs = []
    for rate in (WORLD_SAMPLE_RATE, 777.0):
        m = Marketplace("baseline", rng=3, **SMALL, **{"simulation.sample_rate": rate})
        for _ in range(10):
            m.step()
        s = m.finish()
        runs.append((m.offers.capacity.copy(), s))
    assert np.array_equal(runs[0][0], runs[1][0])
    a, b = ({k: v for k, v in s.items() if k != "real_world"} for _, s in runs)
    assert a == b
    assert runs[1][1]["real_world"]["parcels_created"] == pytest.approx(runs[0][1]["parcels_created"] * 777.0)


@pytest.mark.slow
def test_convergence_the_same_real_market_at_two_sample_rates():
    """Twice the merchants at half the rate stand for the same real market: its real-world
    volume and its shares and lead times agree within sampling error (merchant sizes are
    lognormal, so a small sample's volume varies; three seeds each).

    The check's power is shown on the real-world volume per order a day the drawn merchants
    stand for (real parcels a year / (rate x their base orders a day x 365)), not on the raw
    volume: merchant sizes are heavy-tailed (``demand.size_sigma`` 0.8), so which merchants a
    seed draws moves the raw volume far more than a factor 2. Seed 3's six exporters (since
    the visibility merge each merchant makes one draw fewer, its visibility weight, so every
    seed draws other merchants) include one of 567 base orders a day, the others 9 to 206: it
    sent 38571 of the run's 51630 parcels, and real parcels a year were 2.37e9, 2.29e9, 6.28e9
    at 6 merchants against 2.78e9, 4.67e9, 6.02e9 at 12, so the raw volume's power check gave
    p = 0.40 (over seeds 1-8 the log volume's sd is 0.51 at 6 merchants and 0.45 at 12: even
    eight seeds gave p = 0.07). Per base order the same runs give 0.79 to 1.05 (sd 8%), and
    the factor 2 of a volume that ignored the rate stands out (p = 0.003 with seeds 1-3)."""
    from experiments.sweep import RunTask, execute_run
    from market.model import Marketplace
    from market.scenario import load_raw
    raw = load_raw("baseline")
    rate = 20000.0
    figures = {}
    for n, r in ((6, rate), (12, rate / 2)):
        vals = []
        for seed in (1, 2, 3):
            over = {"merchants.exporters": n, "merchants.importers": n // 3, "simulation.sample_rate": r}
            o = execute_run(RunTask(0, "baseline", raw, over, 60, seed, False, False))
            assert o.status == "ok", o.error
            s = o.summary
            # the base orders a day of the merchants this seed draws (the same model, built anew)
            base = float(Marketplace("baseline", rng=seed, **over).mm.base.sum())
            per_order = s["real_world"]["parcels_per_year"] / (r * base * 365)
            vals.append((s["real_world"]["parcels_per_year"], s["on_time_rate"], s["mean_lead_time_days"],
                         per_order))
        figures[n] = np.array(vals)
    from scipy import stats
    small, large = figures[6], figures[12]
    # no significant difference between the two samples of the same real market (Welch) ...
    for j, name in enumerate(("real parcels a year", "on-time rate", "mean lead time",
                              "real parcels per base order")):
        p = stats.ttest_ind(small[:, j], large[:, j], equal_var=False).pvalue
        assert p > 0.01, (name, small[:, j], large[:, j])
    # ... and the check has the power to see a real-world volume that ignored the rate
    # (twice the merchants at the same rate would report about twice the real market)
    assert stats.ttest_ind(2 * small[:, 3], large[:, 3], equal_var=False).pvalue < 0.05
