"""Tests for market.mechanisms.package."""

import numpy as np
import pytest
from scipy.optimize import linprog

from market.mechanisms.package import (
    PackageBids,
    backhaul_bundles,
    solve_package_auction,
)


# ---------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------
def brute_force_package_auction(bids, demand, xor=True, cover="exact", tol=1e-9):
    """Exhaustive winner determination over all ``2**n_bids`` subsets of all-or-nothing bids:
    (feasible, least total price). ``xor``: True (one bid per bidder), False, or "lane" (a
    bidder's accepted bids may not share a lane)."""
    d = np.asarray(demand, dtype=float)
    n = bids.n_bids
    if n == 0:
        return bool(np.all(d <= 0)), 0.0
    best = np.inf
    for mask in range(2 ** n):
        pick = np.array([(mask >> i) & 1 for i in range(n)], dtype=bool)
        cov = bids.quantity[pick].sum(axis=0)
        ok = np.all(np.abs(cov - d) <= tol) if cover == "exact" else np.all(cov >= d - tol)
        if not ok:
            continue
        if xor is True and np.unique(bids.bidder[pick]).size < pick.sum():
            continue
        if xor == "lane":
            on = (bids.quantity[pick] > 0)
            if any((on[bids.bidder[pick] == b].sum(axis=0) > 1).any() for b in np.unique(bids.bidder[pick])):
                continue
        best = min(best, float(bids.price[pick].sum()))
    return bool(np.isfinite(best)), best


def mixed_reference(bids, demand, divisible, xor):
    """All-or-nothing bids by enumeration; for each choice of them the divisible single-lane bids
    fill each lane's rest cheapest per unit first (a lane's singles are independent of the other
    lanes' once the bundles are fixed), skipping a bidder's single on a lane its chosen bundle
    covers (``xor="lane"``). Returns the least total price (inf if infeasible)."""
    d = np.asarray(demand, dtype=float)
    whole = np.flatnonzero(~divisible)
    parts = np.flatnonzero(divisible)
    lane_of = np.array([int(np.flatnonzero(bids.quantity[j])[0]) for j in parts])
    best = np.inf
    for mask in range(2 ** whole.size):
        pick = whole[[(mask >> i) & 1 == 1 for i in range(whole.size)]]
        if xor == "lane":
            on = bids.quantity[pick] > 0
            if any((on[bids.bidder[pick] == b].sum(axis=0) > 1).any() for b in np.unique(bids.bidder[pick])):
                continue
        rest = d - bids.quantity[pick].sum(axis=0)
        if np.any(rest < -1e-9):
            continue
        cost = float(bids.price[pick].sum())
        for lane in range(d.size):
            cand = [j for j, lj in zip(parts, lane_of) if lj == lane]
            if xor == "lane":
                covered = {int(b) for b in bids.bidder[pick][bids.quantity[pick][:, lane] > 0]}
                cand = [j for j in cand if int(bids.bidder[j]) not in covered]
            cand.sort(key=lambda j: bids.price[j] / bids.quantity[j, lane])
            left = rest[lane]
            for j in cand:
                take = min(left, bids.quantity[j, lane])
                cost += bids.price[j] * take / bids.quantity[j, lane]
                left -= take
            if left > 1e-9:
                cost = np.inf
        best = min(best, cost)
    return best


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


# ---------------------------------------------------------------------------
# Winner determination
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("xor", [True, False, "lane"])
@pytest.mark.parametrize("cover", ["exact", "at_least"])
def test_package_auction_matches_brute_force(xor, cover):
    rng = np.random.default_rng({True: 10, False: 0, "lane": 20}[xor] + {"exact": 1, "at_least": 2}[cover])
    n_feasible = 0
    for _ in range(60):
        bids, demand = random_instance(rng)
        milp_res = solve_package_auction(bids, demand, xor=xor, cover=cover)
        feasible, cost = brute_force_package_auction(bids, demand, xor=xor, cover=cover)
        assert milp_res.feasible == feasible
        if not feasible:
            assert milp_res.total_cost == np.inf
            continue
        n_feasible += 1
        assert milp_res.total_cost == pytest.approx(cost, rel=1e-9, abs=1e-9)
        # the returned selection is itself valid, all or nothing
        np.testing.assert_array_equal(milp_res.fraction, milp_res.selected.astype(float))
        cov = bids.quantity[milp_res.selected].sum(axis=0)
        np.testing.assert_allclose(milp_res.coverage, cov)
        if cover == "exact":
            np.testing.assert_allclose(cov, demand)
        else:
            assert np.all(cov >= demand - 1e-9)
        if xor is True:
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
    # per lane: bidder 0 may win both of its single-lane bids, not a single with its bundle
    lane = solve_package_auction(bids, demand, xor="lane")
    assert lane.total_cost == pytest.approx(20.0) and lane.winners.tolist() == [0, 1]
    bundle = PackageBids(bidder=[0, 0, 0], quantity=[[1, 0], [0, 1], [1, 1]], price=[10.0, 30.0, 15.0])
    assert solve_package_auction(bundle, demand, xor="lane").winners.tolist() == [2]
    # a single and the bundle containing its lane would cover lane A twice: never both
    assert solve_package_auction(bundle, [2, 1], xor="lane").feasible is False
    assert solve_package_auction(bundle, [2, 1], xor=False).total_cost == pytest.approx(25.0)


def test_package_infeasible_and_cover_modes():
    bids = PackageBids(bidder=[0, 1], quantity=[[2], [3]], price=[5.0, 6.0])
    assert not solve_package_auction(bids, [4]).feasible  # no exact partition of 4
    r = solve_package_auction(bids, [4], cover="at_least")
    assert r.feasible and r.total_cost == pytest.approx(11.0)
    r = solve_package_auction(bids, [2], cover="at_least")
    assert r.winners.tolist() == [0] and r.total_cost == pytest.approx(5.0)
    with pytest.raises(ValueError):
        solve_package_auction(bids, [1, 1])
    with pytest.raises(ValueError):
        solve_package_auction(bids, [2], divisible=[True])


def test_divisible_bids_are_taken_in_part_and_bundles_whole():
    """Single-lane bids divisible, bundles all or nothing, per-lane exclusivity: the MILP's cost
    equals an enumeration of the bundles with each lane's rest filled cheapest first, and every
    accepted bundle is taken whole."""
    rng = np.random.default_rng(31)
    checked = parts = 0
    for _ in range(80):
        n_lanes = int(rng.integers(1, 4))
        n_bidders = int(rng.integers(1, 5))
        rows_q, rows_p, rows_b, rows_div = [], [], [], []
        unit = rng.uniform(50, 100, size=(n_bidders, n_lanes))
        cap = rng.integers(1, 6, size=(n_bidders, n_lanes)).astype(float)
        for b in range(n_bidders):
            for lane in range(n_lanes):
                if rng.random() < 0.8:
                    q = np.zeros(n_lanes)
                    q[lane] = cap[b, lane]
                    rows_q.append(q), rows_p.append(unit[b, lane] * cap[b, lane]), rows_b.append(b)
                    rows_div.append(True)
            if n_lanes > 1 and rng.random() < 0.6:
                q = cap[b] * (rng.random(n_lanes) < 0.8)
                if np.count_nonzero(q) >= 2:
                    rows_q.append(q), rows_p.append(float(unit[b] @ q) * rng.uniform(0.85, 1.0)), rows_b.append(b)
                    rows_div.append(False)
        if not rows_q:
            continue
        bids = PackageBids(bidder=rows_b, quantity=np.vstack(rows_q), price=rows_p)
        div = np.array(rows_div)
        demand = np.minimum(rng.uniform(1, 12, n_lanes).round(1), bids.quantity[div].sum(axis=0))
        res = solve_package_auction(bids, demand, xor="lane", cover="exact", divisible=div)
        ref = mixed_reference(bids, demand, div, "lane")
        assert res.feasible == np.isfinite(ref)
        if not res.feasible:
            continue
        assert res.total_cost == pytest.approx(ref, rel=1e-7, abs=1e-7)
        np.testing.assert_allclose(res.coverage, demand, atol=1e-7)
        assert np.all(np.isin(res.fraction[~div], [0.0, 1.0]))
        assert np.all((res.fraction >= 0) & (res.fraction <= 1 + 1e-12))
        parts += int(((res.fraction > 1e-9) & (res.fraction < 1 - 1e-9) & div).sum())
        checked += 1
    assert checked > 40 and parts > 10     # bids were really taken in part

    # with divisible bids only, the MILP is the LP an independent linprog solves
    for _ in range(30):
        bids, demand = random_instance(rng)
        div = np.ones(bids.n_bids, dtype=bool)
        res = solve_package_auction(bids, demand, xor=False, cover="exact", divisible=div)
        lp = linprog(bids.price, A_eq=bids.quantity.T, b_eq=demand, bounds=[(0, 1)] * bids.n_bids,
                     method="highs")
        assert res.feasible == (lp.status == 0)
        if res.feasible:
            assert res.total_cost == pytest.approx(lp.fun, rel=1e-7, abs=1e-7)


# ---------------------------------------------------------------------------
# Economies of scope: backhaul
# ---------------------------------------------------------------------------
def test_backhaul_saves_the_empty_return_on_matched_volume():
    """Lanes A->B (two of them, 100 and 50 a day at 20 and 26) and B->A (60 a day at 30): 60
    units are matched each way; the saving is 0.2 x 60 x (22 + 30), 22 being A->B's
    volume-weighted unit cost. A domestic lane and a lane of another mode join no bundle."""
    mode = np.array([0, 0, 0, 0, 1])
    origin = np.array([1, 1, 2, 2, 2])
    dest = np.array([2, 2, 1, 2, 1])
    qty = np.array([100.0, 50.0, 60.0, 80.0, 40.0])
    cost = np.array([20.0, 26.0, 30.0, 5.0, 9.0])
    bundles = backhaul_bundles(mode, origin, dest, qty, cost, 0.2)
    assert len(bundles) == 1
    members, saving = bundles[0]
    assert sorted(members.tolist()) == [0, 1, 2]
    assert saving == pytest.approx(0.2 * 60 * (22.0 + 30.0))
    # one direction only, or another place: nothing to share
    assert backhaul_bundles(mode[[0, 1, 3]], origin[[0, 1, 3]], dest[[0, 1, 3]], qty[[0, 1, 3]],
                            cost[[0, 1, 3]], 0.2) == []
    assert backhaul_bundles(np.array([0, 0]), np.array([1, 3]), np.array([2, 1]), np.array([10.0, 10.0]),
                            np.array([5.0, 5.0]), 0.2) == []
    # balanced volumes save the whole empty share of the pair's cost
    (members, saving), = backhaul_bundles(np.array([0, 0]), np.array([1, 2]), np.array([2, 1]),
                                          np.array([40.0, 40.0]), np.array([10.0, 14.0]), 0.2)
    assert saving == pytest.approx(0.2 * (40 * 10.0 + 40 * 14.0))
    with pytest.raises(ValueError):
        backhaul_bundles(mode, origin, dest, qty, cost, 1.5)
