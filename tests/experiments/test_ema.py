"""The EMA Workbench adapter drives the Marketplace as a Python model (if ema-workbench installs)."""

from __future__ import annotations

import numpy as np
import pytest

ema = pytest.importorskip("ema_workbench")

from experiments.designs import seed_from  # noqa: E402
from experiments.ema import marketplace_model, parameter, run_marketplace  # noqa: E402
from market.scenario import ScenarioError  # noqa: E402

SMALL = {"merchants.exporters": 3, "merchants.importers": 1}


def test_parameters_are_typed_and_bounded_by_the_schema():
    p = parameter("demand.scale", 0.5, 2.0)
    assert isinstance(p, ema.RealParameter) and p.name == "demand__scale"
    assert (p.lower_bound, p.upper_bound) == (0.5, 2.0)
    count = parameter("integrators.count", 0, 3)
    assert isinstance(count, ema.IntegerParameter) and (count.lower_bound, count.upper_bound) == (0, 3)
    assert isinstance(count.lower_bound, int) and isinstance(count.upper_bound, int)
    auction = parameter("market.auction")
    assert isinstance(auction, ema.CategoricalParameter)
    assert {c.value for c in auction.categories} == {"first_price", "vickrey", "clock", "package"}
    lo_hi = parameter("merchants.diy_handoff_delay")        # the schema's own range
    assert (lo_hi.lower_bound, lo_hi.upper_bound) == (0.0, 10.0)
    with pytest.raises(ScenarioError, match="demand.scale"):
        parameter("demand.scale", -1.0, 2.0)
    with pytest.raises(ScenarioError, match="no finite range"):
        parameter("merchants.cash")
    with pytest.raises(ScenarioError, match="did you mean 'demand.scale'"):
        parameter("demand.scael", 0.5, 2.0)


def test_perform_experiments_runs_the_marketplace_with_replications():
    model = marketplace_model("fourpl_test", days=6, replications=2, seed=11,
                              uncertainties=[parameter("demand.scale", 0.5, 2.0)],
                              levers=[parameter("integrators.count", 1, 2)], constants=SMALL,
                              outcomes=("parcels_created", "on_time_rate", "by_channel.express.parcels_created"))
    experiments, outcomes = ema.perform_experiments(model, scenarios=2, policies=1)
    assert len(experiments) == 2 and set(outcomes) == {"parcels_created", "on_time_rate",
                                                        "by_channel__express__parcels_created"}
    # the sampled values are of the schema's kind and within the given bounds
    assert experiments["demand__scale"].between(0.5, 2.0).all()
    assert set(experiments["integrators__count"]) <= {1, 2}
    assert all(float(x).is_integer() for x in experiments["integrators__count"])
    assert np.all(outcomes["parcels_created"] > 0)
    # each outcome is the mean over the replications' seeds, spawned from the root seed
    seeds = [seed_from(c) for c in np.random.SeedSequence(11).spawn(2)]
    row = experiments.iloc[0]
    params = {"demand__scale": row["demand__scale"], "integrators__count": row["integrators__count"],
              **{k.replace(".", "__"): v for k, v in SMALL.items()}}
    direct = [run_marketplace("baseline", 6, s, ("parcels_created",), **params)["parcels_created"] for s in seeds]
    assert outcomes["parcels_created"][0] == pytest.approx(np.mean(direct))
