"""Shared fixtures: whole simulations, each run once per test session (per xdist worker) and reused.

``simulate(scenario, days=None, seed=1, **overrides)`` runs a scenario with all its output files
and caches the result, so tests that check the same run from different angles never run it
twice. ``baseline_run`` and ``tight_run`` are the two runs most invariants are checked on.

Markers (pyproject.toml): ``slow`` marks the year-long whole-scenario runs; ``make test``
deselects them, ``make test-all`` runs everything.
"""

from __future__ import annotations

import datetime as dt

import pytest

# a smaller market than the baseline, for tests that need a full run but not a full market
SMALL = {"merchants.exporters": 8, "merchants.importers": 3}


@pytest.fixture(scope="session")
def simulate(tmp_path_factory):
    """``simulate(scenario, days=None, seed=1, **overrides) -> RunResult`` (``days=None``: the
    scenario's horizon); each distinct run happens once, its files in a temporary folder."""
    from experiments.run import run_scenario
    done: dict[str, object] = {}

    def run(scenario: str, days: int | None = None, seed: int = 1, **overrides):
        key = repr((scenario, days, seed, sorted(overrides.items())))
        if key not in done:
            out = tmp_path_factory.mktemp(f"{scenario}-{days or 'horizon'}-s{seed}") / "run"
            done[key] = run_scenario(scenario, days=days, seed=seed, out=out, overrides=overrides,
                                     progress=False)
        return done[key]

    return run


@pytest.fixture(scope="session")
def baseline_run(simulate):
    """The baseline at full size over the autumn: the 11.11, Black Friday and Christmas peaks,
    and long enough (120 days) for a second tender round and contracts to end."""
    return simulate("baseline", days=120, seed=7, **{"simulation.start_date": dt.date(2024, 9, 15)})


@pytest.fixture(scope="session")
def tight_run(simulate):
    """A small market on scarce capacity, so queues, spot buying and waiting happen."""
    return simulate("baseline", days=120, seed=3, **SMALL, **{"network.capacity_scale": 0.3,
                                                              "integrators.count": 2})
