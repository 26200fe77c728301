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


def mcf_lp(G, commodities, penalty: float) -> float:
    """Least cost of routing ``commodities`` ((source, target, volume) triples) over the legs of
    the multigraph ``G`` (``cost``, optional ``capacity`` shared by all commodities), unserved
    volume at ``penalty`` a unit: an arc-flow linear programme solved with scipy's linprog,
    written independently of market.integration.optimum, to check its optima against."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    edges = list(G.edges(keys=True, data=True))
    nodes = {n: i for i, n in enumerate(G.nodes)}
    E, C, N = len(edges), len(commodities), len(nodes)
    cost = np.array([d["cost"] for *_, d in edges], dtype=float)
    cap = np.array([d.get("capacity", np.inf) for *_, d in edges], dtype=float)
    # variables: x[c, e] (c-major), then the unserved volume u[c]
    rows, cols, vals, rhs = [], [], [], np.zeros(C * N)
    for c, (s, t, vol) in enumerate(commodities):
        for e, (u, v, _, _) in enumerate(edges):
            rows += [c * N + nodes[u], c * N + nodes[v]]     # out of u, into v
            cols += [c * E + e] * 2
            vals += [1.0, -1.0]
        if s != t:
            rows += [c * N + nodes[s], c * N + nodes[t]]
            cols += [C * E + c] * 2
            vals += [1.0, -1.0]
            rhs[c * N + nodes[s]] += vol
            rhs[c * N + nodes[t]] -= vol
    a_eq = coo_matrix((vals, (rows, cols)), shape=(C * N, C * E + C))
    finite = np.flatnonzero(np.isfinite(cap))
    a_ub = coo_matrix((np.ones(C * finite.size), (np.tile(np.arange(finite.size), C),
                                                  (np.arange(C)[:, None] * E + finite).ravel())),
                      shape=(finite.size, C * E + C))
    vols = np.array([vol if s != t else 0.0 for s, t, vol in commodities], dtype=float)
    res = linprog(np.concatenate([np.tile(cost, C), np.full(C, penalty)]), A_ub=a_ub, b_ub=cap[finite],
                  A_eq=a_eq, b_eq=rhs, bounds=[(0, None)] * (C * E) + [(0, v) for v in vols], method="highs")
    assert res.status == 0, res.message
    return float(res.fun)


@pytest.fixture(scope="session")
def independent_mcf():
    return mcf_lp


def outputs_conserve(out) -> dict:
    """Check a run's output folder: every parcel created is in parcels.parquet once, and the
    summary's delivered, lost and in-transit counts are its rows' statuses; each day's orders in
    the daily series are the parcels created that day; every agent's cash is the sum of its
    ledger lines. Returns the summary. (The full set: tests/market/test_engine_invariants.py.)"""
    import json
    from pathlib import Path

    import numpy as np
    import pandas as pd

    out = Path(out)
    s = json.loads((out / "summary.json").read_text())
    p = pd.read_parquet(out / "parcels.parquet", columns=["parcel_id", "status", "created_day"])
    assert len(p) == s["parcels_created"] > 0
    assert (np.sort(p["parcel_id"].to_numpy()) == np.arange(len(p))).all()
    status = p["status"].astype(str)
    assert (status == "delivered").sum() == s["parcels_delivered"]
    assert (status == "lost").sum() == s["parcels_lost"]
    assert status.isin(["waiting_stock", "waiting", "in_stage"]).sum() == s["parcels_in_transit"]
    ts = pd.read_parquet(out / "timeseries.parquet", columns=["parcels_created"])
    assert (ts["parcels_created"].to_numpy() == np.bincount(p["created_day"], minlength=len(ts))).all()
    journal = pd.read_parquet(out / "ledger.parquet", columns=["payer", "payee", "amount_cents"])
    agents = pd.read_parquet(out / "agents.parquet", columns=["account", "cash_usd"])
    net = journal.groupby("payee")["amount_cents"].sum().sub(journal.groupby("payer")["amount_cents"].sum(),
                                                             fill_value=0)
    cash = np.rint(agents["cash_usd"].to_numpy() * 100).astype(np.int64)
    assert (net.reindex(agents["account"], fill_value=0).to_numpy() == cash).all()
    # returned goods: each return is one delivered parcel; sold = kept + returned, and returned =
    # resold + liquidated + scrapped + back at origin + in transit back
    r = pd.read_parquet(out / "returns.parquet", columns=["parcel_id", "status"])
    delivered = p.loc[status == "delivered", "parcel_id"]
    assert r["parcel_id"].is_unique and r["parcel_id"].isin(delivered).all()
    units = s["returns"]["units"]
    assert units["sold"] == len(delivered) == units["kept"] + units["returned"] and units["returned"] == len(r)
    r_status = r["status"].astype(str)
    parts = ("resold", "liquidated", "scrapped", "back_at_origin")
    assert all(units[k] == (r_status == k).sum() for k in parts)
    assert units["in_transit_back"] == (r_status == "in_transit").sum()
    assert len(r) == sum(units[k] for k in parts) + units["in_transit_back"]
    return s


@pytest.fixture(scope="session")
def conserved():
    """``conserved(out_folder) -> summary``: see :func:`outputs_conserve`."""
    return outputs_conserve
