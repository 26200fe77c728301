"""Call market and ZI double auction: figures read off hand-drawn supply and demand curves and
a brute-force clearing, written to kill the mutants the first tests let through."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanisms import call_market_clear, max_surplus, zi_continuous_double_auction


def brute_force_clear(bp, bq, ap, aq):
    """Q* and the interval of prices attaining it, by trying every submitted price."""
    best, prices = 0.0, []
    for p in sorted(set(bp) | set(ap)):
        d = sum(q for b, q in zip(bp, bq) if b >= p)
        s = sum(q for a, q in zip(ap, aq) if a <= p)
        t = min(d, s)
        if t > best + 1e-12:
            best, prices = t, [p]
        elif abs(t - best) <= 1e-12 and best > 0:
            prices.append(p)
    return best, prices


def test_call_market_hand_drawn_crossing_with_partial_fills():
    # demand steps: 3 units at 10, 2 at 8, 4 at 6; supply steps: 2 at 4, 2 at 7, 5 at 9
    #   p = 7: D = 3 + 2 = 5, S = 2 + 2 = 4 -> 4;  p = 8: D = 5, S = 4 -> 4;  p = 9: D = 3 -> 3
    # Q* = 4 on [7, 8]: price 7.5. Bids fill by price: 3 at 10, 1 of 2 at 8; asks 2 at 4, 2 at 7
    r = call_market_clear([8.0, 10.0, 6.0], [2.0, 3.0, 4.0], [9.0, 4.0, 7.0], [5.0, 2.0, 2.0])
    assert r.price == 7.5 and r.volume == 4.0
    assert r.bid_fill.tolist() == [1.0, 3.0, 0.0]
    assert r.ask_fill.tolist() == [0.0, 2.0, 2.0]


def test_call_market_index_priority_at_equal_prices():
    # two bids at 5 for 2 units each, one ask of 3 at 1: the earlier bid fills first
    # Q* = 3 on prices [1, 5]: price 3
    r = call_market_clear([5.0, 5.0], [2.0, 2.0], [1.0], [3.0])
    assert r.price == 3.0 and r.bid_fill.tolist() == [2.0, 1.0] and r.ask_fill.tolist() == [3.0]
    r = call_market_clear([9.0], [3.0], [2.0, 2.0], [2.0, 2.0])
    assert r.ask_fill.tolist() == [2.0, 1.0] and r.price == 5.5


@pytest.mark.parametrize("seed", range(6))
def test_call_market_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nb, na = rng.integers(1, 7, 2)
    bp = rng.integers(1, 12, nb).astype(float)
    ap = rng.integers(1, 12, na).astype(float)
    bq = rng.integers(0, 4, nb).astype(float)
    aq = rng.integers(0, 4, na).astype(float)
    r = call_market_clear(bp, bq, ap, aq)
    q, prices = brute_force_clear(bp.tolist(), bq.tolist(), ap.tolist(), aq.tolist())
    if q == 0:
        assert np.isnan(r.price) and r.volume == 0 and not r.bid_fill.any() and not r.ask_fill.any()
        return
    assert r.volume == q and r.ask_fill.sum() == q
    assert r.price == 0.5 * (min(prices) + max(prices))
    assert (bp[r.bid_fill > 0] >= r.price).all() and (ap[r.ask_fill > 0] <= r.price).all()
    assert (r.bid_fill <= bq).all() and (r.ask_fill <= aq).all()


def test_call_market_no_trade_and_empty_sides():
    for args in (([], [], [1.0], [1.0]), ([5.0], [1.0], [], []), ([], [], [], [])):
        r = call_market_clear(*args)
        assert np.isnan(r.price) and r.volume == 0.0
        assert r.bid_fill.shape == (len(args[0]),) and r.ask_fill.shape == (len(args[2]),)
    r = call_market_clear([3.0, 2.0], [1.0, 1.0], [4.0], [2.0])          # no crossing
    assert np.isnan(r.price) and r.bid_fill.tolist() == [0.0, 0.0] and r.ask_fill.tolist() == [0.0]
    r = call_market_clear([5.0], [0.0], [1.0], [0.0])                    # zero quantities are fine
    assert np.isnan(r.price) and r.volume == 0.0


@pytest.mark.parametrize("args", [
    ([5.0], [-1.0], [1.0], [1.0]),
    ([5.0], [1.0], [1.0], [-1.0]),
    ([5.0, 6.0], [1.0], [1.0], [1.0]),
    ([5.0], [1.0], [1.0, 2.0], [1.0]),
])
def test_call_market_refuses_bad_orders(args):
    with pytest.raises(ValueError):
        call_market_clear(*args)


def test_max_surplus_pools_units_and_skips_padding():
    # values 10, 7 (+ NaN padding) and 4; costs 2, 5 and 8:
    # pairs (10, 2) (7, 5) (4, 8): 8 + 2 = 10, the third pair loses money and is left out
    v = np.array([[10.0, 7.0], [4.0, np.nan]])
    c = np.array([[2.0], [5.0], [8.0]])
    assert max_surplus(v, c) == 10.0
    assert max_surplus([1.0], [3.0]) == 0.0
    with pytest.raises(ValueError):
        max_surplus(np.zeros((2, 2, 2)), [1.0])


def test_zi_c_traders_never_trade_at_a_loss_and_units_trade_once():
    rng = np.random.default_rng(9)
    values = np.array([[30.0, 20.0], [25.0, np.nan], [12.0, 8.0]])
    costs = np.array([[5.0, 15.0], [10.0, 22.0]])
    r = zi_continuous_double_auction(values, costs, rng)
    assert r.n_trades >= 1
    assert (r.price <= r.buyer_value + 1e-12).all() and (r.price >= r.seller_cost - 1e-12).all()
    assert (np.bincount(r.buyer, minlength=3) <= [2, 1, 2]).all()
    assert (np.bincount(r.seller, minlength=2) <= [2, 2]).all()
    # each buyer's units go in column order: the values traded are its first units
    for b in range(3):
        mine = r.buyer_value[r.buyer == b].tolist()
        assert mine == values[b, : len(mine)].tolist()
    assert r.surplus == pytest.approx(float((r.buyer_value - r.seller_cost).sum()))
    assert r.max_surplus == max_surplus(values, costs) and r.efficiency == r.surplus / r.max_surplus
    assert r.trades == list(zip(r.buyer.tolist(), r.seller.tolist(), r.price.tolist()))
    assert 0 < r.efficiency <= 1 and r.rounds <= 20_000


def test_zi_u_bids_anywhere_within_floor_and_ceiling():
    rng = np.random.default_rng(1)
    values = np.full(20, 10.0)
    costs = np.full(20, 9.0)
    r = zi_continuous_double_auction(values, costs, rng, budget_constrained=False,
                                     price_floor=2.0, price_ceiling=20.0, max_rounds=3000)
    assert r.n_trades > 0
    assert (r.price >= 2.0).all() and (r.price <= 20.0).all()
    # unconstrained traders trade at prices outside [cost, value] now and then
    assert ((r.price > 10.0) | (r.price < 9.0)).any()
    assert r.rounds <= 3000


def test_zi_c_a_single_buyer_trades_all_its_profitable_units():
    # one buyer valuing 3 units at 50, 40, 30 and three sellers at cost 10: every unit has gains
    # from trade (max surplus 40 + 30 + 20 = 90), and ZI-C trading goes on until all 3 trade
    r = zi_continuous_double_auction(np.array([[50.0, 40.0, 30.0]]), np.array([10.0, 10.0, 10.0]),
                                     np.random.default_rng(0))
    assert r.n_trades == 3 and r.max_surplus == 90.0 and r.efficiency == 1.0
    assert r.buyer.tolist() == [0, 0, 0] and sorted(r.seller.tolist()) == [0, 1, 2]
    # one seller with 2 units and two buyers: both units trade
    r = zi_continuous_double_auction(np.array([20.0, 30.0]), np.array([[5.0, 6.0]]), np.random.default_rng(1))
    assert r.n_trades == 2 and r.seller.tolist() == [0, 0] and r.seller_cost.tolist() == [5.0, 6.0]
