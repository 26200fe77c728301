"""Shared fixtures: whole simulations, run once per test session and reused."""

from __future__ import annotations

import pytest

# a smaller market than the baseline, for tests that need a full run but not a full year
SMALL = {"merchants.exporters": 8, "merchants.importers": 3}


@pytest.fixture(scope="session")
def baseline_run(tmp_path_factory):
    """The baseline scenario for its whole horizon (365 days), with all output files."""
    from experiments.run import run_scenario
    out = tmp_path_factory.mktemp("baseline") / "run"
    return run_scenario("baseline", seed=7, out=out, progress=False)


@pytest.fixture(scope="session")
def tight_run(tmp_path_factory):
    """A small market on scarce capacity, so queues, spot buying and waiting happen."""
    from experiments.run import run_scenario
    out = tmp_path_factory.mktemp("tight") / "run"
    overrides = dict(SMALL, **{"network.capacity_scale": 0.3, "integrators.count": 2})
    return run_scenario("baseline", days=120, seed=3, out=out, overrides=overrides, progress=False)
