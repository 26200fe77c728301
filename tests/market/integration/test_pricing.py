import numpy as np
import pytest

from market.integration.pricing import AdaptiveMarkup, CostPlus, ValueBased, make_pricing_policy

MARKUPS = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5])


def accept_prob(markup, centre=0.2, width=0.05):
    """Stationary logistic demand curve in the markup."""
    return 1.0 / (1.0 + np.exp((markup - centre) / width))


def run(policy, demand_rng, rounds, batch, *, centre=lambda r: 0.2, overrun=0.0):
    costs = np.full(batch, 10.0)
    profit_total = 0.0
    for r in range(rounds):
        quotes = policy.price(costs)
        markup = quotes / costs - 1.0
        accepted = demand_rng.random(batch) < accept_prob(markup, centre(r))
        profit = quotes - costs * (1.0 + overrun)  # realised: legs may cost more than planned
        policy.observe(accepted, profit=profit)
        profit_total += float(np.sum(np.where(accepted, profit, 0.0)))
    return profit_total


def test_cost_plus():
    p = CostPlus(0.2)
    assert p.price(10.0) == pytest.approx(12.0)
    np.testing.assert_allclose(p.price(np.array([1.0, 5.0])), [1.2, 6.0])
    p.observe([True, False])  # no-op
    with pytest.raises(ValueError):
        CostPlus(-0.1)


def test_value_based_lies_between_cost_and_diy():
    rng = np.random.default_rng(0)
    cost = rng.uniform(2, 20, 1000)
    diy = cost * rng.uniform(0.5, 2.0, 1000)  # sometimes DIY is cheaper
    for share in (0.0, 0.3, 1.0):
        price = ValueBased(share).price(cost, diy)
        assert np.all(price >= cost)
        saving = diy > cost
        assert np.all(price[saving] <= diy[saving] + 1e-12)
        np.testing.assert_allclose(price[saving], cost[saving] + share * (diy - cost)[saving])
        np.testing.assert_allclose(price[~saving], cost[~saving])  # nothing to share: priced at cost
    assert ValueBased(0.5).price(10.0, 14.0) == pytest.approx(12.0)
    assert ValueBased(0.5, min_markup=0.1).price(10.0, 10.5) == pytest.approx(11.0)
    with pytest.raises(ValueError):
        ValueBased(0.5).price(10.0)
    with pytest.raises(ValueError):
        ValueBased(1.5)


@pytest.mark.parametrize("seed", range(3))
def test_thompson_converges_to_most_profitable_markup(seed):
    best = MARKUPS[np.argmax(MARKUPS * accept_prob(MARKUPS))]
    assert best == 0.15
    policy = AdaptiveMarkup(MARKUPS, method="thompson", rng=np.random.default_rng(seed))
    profit = run(policy, np.random.default_rng(100 + seed), rounds=300, batch=40)
    assert policy.best_markup == best
    share = policy.pulls / policy.pulls.sum()
    assert share[MARKUPS == best][0] > 0.5
    # learning pays: at least 85 % of the profit an oracle pricing at the best markup expects
    oracle = 300 * 40 * 10.0 * best * accept_prob(best)
    assert profit > 0.85 * oracle


@pytest.mark.parametrize("method", ["ucb1", "ucb1-tuned"])
def test_ucb_converges_to_most_profitable_markup(method):
    policy = AdaptiveMarkup(MARKUPS, method=method)
    run(policy, np.random.default_rng(7), rounds=6000, batch=1)
    assert policy.best_markup == 0.15
    assert np.argmax(policy.pulls) == np.flatnonzero(MARKUPS == 0.15)[0]
    est = policy.expected_margin()
    np.testing.assert_allclose(est[3], 0.15 * accept_prob(0.15), atol=0.01)


def test_bandit_learns_from_realised_profit_not_quoted_margin():
    # legs cost 10 % more than planned: (m - 0.1) x P(m) peaks at 0.2, not 0.15
    true = (MARKUPS - 0.1) * accept_prob(MARKUPS)
    assert MARKUPS[np.argmax(true)] == 0.2
    policy = AdaptiveMarkup(MARKUPS, method="thompson", rng=np.random.default_rng(1))
    run(policy, np.random.default_rng(2), rounds=300, batch=40, overrun=0.1)
    assert policy.best_markup == 0.2


def test_discounted_bandit_tracks_a_moving_market():
    # competitors retreat: merchants now accept markups up to ~0.4
    new_best = MARKUPS[np.argmax(MARKUPS * accept_prob(MARKUPS, 0.4))]
    assert new_best == 0.3
    after_shift = {}
    for discount in (1.0, 0.95):
        gains = []
        for seed in range(3):
            policy = AdaptiveMarkup(MARKUPS, method="thompson", rng=np.random.default_rng(seed), discount=discount)
            run(policy, np.random.default_rng(10 + seed), rounds=150, batch=40)
            gains.append(run(policy, np.random.default_rng(20 + seed), rounds=60, batch=40, centre=lambda r: 0.4))
        after_shift[discount] = np.mean(gains)
        if discount < 1.0:
            assert policy.best_markup == new_best
    # forgetting stale evidence earns more once the market has moved
    assert after_shift[0.95] > 1.2 * after_shift[1.0]


def test_adaptive_api_details():
    policy = AdaptiveMarkup([0.1, 0.2], method="ucb1")
    assert policy.price(10.0) == pytest.approx(11.0)  # untried arms first
    policy.observe(True)
    assert policy.price(10.0) == pytest.approx(12.0)
    policy.observe(False)
    assert policy.pulls.tolist() == [1.0, 1.0] and policy.accepts.tolist() == [1.0, 0.0]
    quotes = policy.price(np.array([[10.0, 20.0]]))
    assert quotes.shape == (1, 2)
    with pytest.raises(ValueError):
        AdaptiveMarkup([0.1], method="thompson")  # needs a Generator
    with pytest.raises(ValueError):
        AdaptiveMarkup([0.1], method="greedy")
    with pytest.raises(ValueError):
        AdaptiveMarkup([0.1], method="ucb1").observe(True)  # nothing quoted yet


def test_policies_by_name():
    """Each name builds the policy that prices as that policy does, with the parameters given."""
    assert make_pricing_policy("cost_plus", markup=0.1).price(10.0) == pytest.approx(11.0)
    value = make_pricing_policy("value_based", share=0.4)
    assert value.price(10.0, 20.0) == pytest.approx(14.0)       # cost + 40 % of the saving on DIY
    assert value.price(10.0, 8.0) == pytest.approx(10.0)        # no saving: at cost
    adaptive = make_pricing_policy("adaptive", markups=[0.1, 0.2], rng=np.random.default_rng(0))
    assert adaptive.method == "thompson" and list(adaptive.markups) == [0.1, 0.2]
    # it learns: once 0.2 is always refused and 0.1 always taken, it quotes 0.1
    for _ in range(50):
        adaptive.observe([True, False], arms=[0, 1], cost=[10.0, 10.0])
    quotes = adaptive.price(np.full(200, 10.0))
    assert set(np.round(quotes, 9)) <= {11.0, 12.0} and (np.round(quotes, 9) == 11.0).mean() > 0.95
    with pytest.raises(ValueError, match="unknown pricing policy"):
        make_pricing_policy("auction")
