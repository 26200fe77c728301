"""Tests for market.mechanisms.package."""

import numpy as np
import pytest

from market.mechanisms.package import (
    PackageBids,
    brute_force_package_auction,
    solve_package_auction,
)


def random_instance(rng):
    n_bids = int(rng.integers(1, 11))
    n_lanes = int(rng.integers(1, 4))
    n_bidders = int(rng.integers(1, n_bids + 1))
    qty = rng.integers(0, 3, size=(n_bids, n_lanes)).astype(float)
    # sub-additive package prices: per-unit lane cost with a bundle discount
    unit = rng.uniform(80, 120, size=n_lanes)
    discount = 1.0 - 0.1 * (np.count_nonzero(qty, axis=1) - 1).clip(0)
    price = (qty @ unit) * discount * rng.uniform(0.9, 1.1, n_bids) + rng.uniform(0, 5, n_bids)
    bids = PackageBids(bidder=rng.integers(0, n_bidders, n_bids), quantity=qty,
                       price=price.round(2))
    # demand: usually coverable (sum of a random subset), sometimes not
    pick = rng.random(n_bids) < 0.5
    demand = qty[pick].sum(axis=0) + (rng.random(n_lanes) < 0.1)
    return bids, demand


@pytest.mark.parametrize("xor", [True, False])
@pytest.mark.parametrize("cover", ["exact", "at_least"])
def test_package_auction_matches_brute_force(xor, cover):
    rng = np.random.default_rng(10 * int(xor) + {"exact": 1, "at_least": 2}[cover])
    n_feasible = 0
    for _ in range(60):
        bids, demand = random_instance(rng)
        milp_res = solve_package_auction(bids, demand, xor=xor, cover=cover)
        brute = brute_force_package_auction(bids, demand, xor=xor, cover=cover)
        assert milp_res.feasible == brute.feasible
        if not brute.feasible:
            assert milp_res.total_cost == np.inf
            continue
        n_feasible += 1
        assert milp_res.total_cost == pytest.approx(brute.total_cost, rel=1e-9, abs=1e-9)
        # the returned selection is itself valid
        cov = bids.quantity[milp_res.selected].sum(axis=0)
        np.testing.assert_allclose(milp_res.coverage, cov)
        if cover == "exact":
            np.testing.assert_allclose(cov, demand)
        else:
            assert np.all(cov >= demand - 1e-9)
        if xor:
            _, counts = np.unique(bids.bidder[milp_res.selected], return_counts=True)
            assert np.all(counts <= 1)
    assert n_feasible >= 20  # the comparison is not vacuous


def test_package_xor_changes_the_answer():
    # bidder 0 offers lane A and lane B separately and cheaply; under XOR it can
    # win only one of them, so the buyer must use bidder 1's expensive bundle
    bids = PackageBids(
        bidder=[0, 0, 1, 2],
        quantity=[[1, 0], [0, 1], [1, 1], [0, 1]],
        price=[10.0, 10.0, 50.0, 30.0],
    )
    demand = [1, 1]
    free = solve_package_auction(bids, demand, xor=False)
    assert free.total_cost == pytest.approx(20.0) and free.winners.tolist() == [0, 1]
    excl = solve_package_auction(bids, demand, xor=True)
    assert excl.total_cost == pytest.approx(40.0) and excl.winners.tolist() == [0, 3]


def test_package_infeasible_and_cover_modes():
    bids = PackageBids(bidder=[0, 1], quantity=[[2], [3]], price=[5.0, 6.0])
    assert not solve_package_auction(bids, [4]).feasible  # no exact partition of 4
    r = solve_package_auction(bids, [4], cover="at_least")
    assert r.feasible and r.total_cost == pytest.approx(11.0)
    r = solve_package_auction(bids, [2], cover="at_least")
    assert r.winners.tolist() == [0] and r.total_cost == pytest.approx(5.0)
    with pytest.raises(ValueError):
        solve_package_auction(bids, [1, 1])
