"""Adaptive pricing with a logistic acceptance curve: it recovers the curve, finds the most
profitable markup from few answers, and prices lower when answers show rivals undercutting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from market.integration.pricing import AdaptiveMarkup

GRID = np.round(np.arange(0.0, 0.81, 0.05), 2)


def accept_prob(markup, a, b):
    return 1.0 / (1.0 + np.exp(-(a - b * markup)))


def play(policy, rng, rounds, a, b, batch=1):
    """Quote ``rounds`` times; returns the profit realised."""
    total = 0.0
    for _ in range(rounds):
        quotes = policy.price(np.full(batch, 10.0))
        m = quotes / 10.0 - 1.0
        accepted = rng.random(batch) < accept_prob(m, a, b)
        policy.observe(accepted, profit=quotes - 10.0)
        total += float(np.sum(np.where(accepted, quotes - 10.0, 0.0)))
    return total


def test_posterior_mode_is_the_map_of_the_logistic_model():
    """Independent recomputation: the same posterior maximised by scipy from the raw answers."""
    rng = np.random.default_rng(0)
    pol = AdaptiveMarkup(GRID, method="logistic", rng=np.random.default_rng(1))
    arms = rng.integers(0, GRID.size, 400)
    accepted = rng.random(400) < accept_prob(GRID[arms], 2.0, 8.0)
    pol.observe(accepted, arms=arms, cost=np.ones(400))
    (ma, sa), (mb, sb) = AdaptiveMarkup.LOGISTIC_PRIOR

    def neg_log_post(theta):
        z = theta[0] - theta[1] * GRID[arms]
        ll = np.where(accepted, -np.logaddexp(0, -z), -np.logaddexp(0, z)).sum()
        return -(ll - 0.5 * ((theta[0] - ma) / sa) ** 2 - 0.5 * ((theta[1] - mb) / sb) ** 2)

    best = minimize(neg_log_post, x0=[0.0, 0.0], method="BFGS").x
    mode, cov = pol.logistic_posterior()
    np.testing.assert_allclose(mode, best, atol=1e-3)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # 400 answers pin the curve down near the truth
    assert mode[0] == pytest.approx(2.0, abs=0.6) and mode[1] == pytest.approx(8.0, abs=3.0)


@pytest.mark.parametrize("seed", range(3))
def test_finds_the_most_profitable_markup_from_few_answers(seed):
    a, b = 4.0, 20.0                             # acceptance 1/2 at a markup of 0.2
    margin = GRID * accept_prob(GRID, a, b)
    assert GRID[np.argmax(margin)] == 0.15
    oracle = 150 * 10.0 * margin.max()           # always quoting the best markup, on average
    pol = AdaptiveMarkup(GRID, method="logistic", rng=np.random.default_rng(seed))
    earned = play(pol, np.random.default_rng(50 + seed), 150, a, b)
    assert earned > 0.8 * oracle
    assert margin[GRID == pol.best_markup][0] > 0.9 * margin.max()
    # the per-arm Beta bandit, on the same 150 answers, is still exploring its 17 arms
    beta = AdaptiveMarkup(GRID, method="thompson", rng=np.random.default_rng(seed))
    assert play(beta, np.random.default_rng(50 + seed), 150, a, b) < 0.5 * oracle


def test_a_steeper_curve_rivals_undercutting_gives_lower_markups():
    """Competition is a steeper acceptance curve: answers from a market where rivals undercut
    teach the learner a lower markup than answers from a captive one, in every paired seed."""
    lower = []
    for seed in range(4):
        captive = AdaptiveMarkup(GRID, method="logistic", rng=np.random.default_rng(seed))
        contested = AdaptiveMarkup(GRID, method="logistic", rng=np.random.default_rng(seed))
        play(captive, np.random.default_rng(100 + seed), 200, 2.0, 3.0)       # flat: best markup high
        play(contested, np.random.default_rng(100 + seed), 200, 2.0, 25.0)    # steep: best markup low
        lower.append(captive.best_markup - contested.best_markup)
    assert all(d > 0.2 for d in lower)


def test_logistic_needs_a_generator():
    with pytest.raises(ValueError, match="Generator"):
        AdaptiveMarkup(GRID, method="logistic")
