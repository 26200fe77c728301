import numpy as np
import pytest
from scipy import stats

from market.integration.choice import (
    Preferences,
    apply_switching_cost,
    draw_preferences,
    logsum,
    mnl_probabilities,
    sample_choice,
    utilities,
)

# three offers: economy, standard, express (plus DIY in some tests)
COST = np.array([6.0, 9.0, 15.0])
DAYS = np.array([14.0, 8.0, 4.0])
REL = np.array([0.90, 0.95, 0.98])
VIS = np.array([0.2, 0.6, 1.0])


def prefs(n, seed=0):
    return draw_preferences(
        n,
        means={"cost": 0.3, "time": 0.2, "reliability": 5.0, "visibility": 1.0},
        sds={"cost": 0.15, "time": 0.15, "reliability": 2.0, "visibility": 0.5},
        rng=np.random.default_rng(seed),
    )


def test_probabilities_match_closed_form_and_are_stable():
    U = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    P = mnl_probabilities(U)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(P[0], e / e.sum())
    np.testing.assert_allclose(P[1], [1 / 3] * 3)
    # shifting all utilities changes nothing, even by huge amounts
    np.testing.assert_allclose(mnl_probabilities(U + 1e5), P)
    np.testing.assert_allclose(mnl_probabilities(U - 1e5), P)
    assert np.all(np.isfinite(mnl_probabilities(np.array([[800.0, -800.0, 0.0]]))))
    # 1-D input works too
    np.testing.assert_allclose(mnl_probabilities(U[0]), P[0])
    np.testing.assert_allclose(logsum(U), np.log(np.exp(U).sum(axis=1)))
    assert logsum(np.array([1e4, 1e4])) == pytest.approx(1e4 + np.log(2))


def test_availability_mask():
    U = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    avail = np.array([[True, True, False], [True, True, True], [False, False, False]])
    P = mnl_probabilities(U, avail)
    assert P[0, 2] == 0.0
    np.testing.assert_allclose(P[0, :2], mnl_probabilities(U[0, :2]))
    np.testing.assert_allclose(P[1], mnl_probabilities(U[1]))
    np.testing.assert_array_equal(P[2], 0.0)
    assert logsum(U, avail)[2] == -np.inf
    draws = sample_choice(P, np.random.default_rng(0))
    assert draws[2] == -1 and draws[0] in (0, 1)
    # -inf utility also means unavailable
    np.testing.assert_allclose(mnl_probabilities([[0.0, -np.inf]]), [[1.0, 0.0]])


def test_empirical_frequencies_match_probabilities_homogeneous():
    rng = np.random.default_rng(12345)
    p = np.array([0.5, 0.0, 0.3, 0.15, 0.05, 0.0])
    n = 200_000
    draws = sample_choice(np.tile(p, (n, 1)), rng)
    counts = np.bincount(draws, minlength=p.size)
    assert counts[1] == 0 and counts[5] == 0  # zero-probability offers never drawn
    pos = p > 0
    chi2 = stats.chisquare(counts[pos], n * p[pos])
    assert chi2.pvalue > 0.01
    # the test has power: a sampler off by one percentage point is rejected
    biased = p + np.array([-0.01, 0.0, 0.01, 0.0, 0.0, 0.0])
    wrong = sample_choice(np.tile(biased, (n, 1)), rng)
    assert stats.chisquare(np.bincount(wrong, minlength=p.size)[pos], n * p[pos]).pvalue < 1e-4


def test_empirical_frequencies_match_probabilities_heterogeneous():
    n = 100_000
    beta = prefs(n, seed=1)
    P = mnl_probabilities(utilities(COST, DAYS, REL, VIS, beta))
    assert P.shape == (n, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    draws = sample_choice(P, np.random.default_rng(2))
    counts = np.bincount(draws, minlength=3)
    # sum of independent categorical draws: expected counts are column sums
    assert stats.chisquare(counts, P.sum(axis=0)).pvalue > 0.01


def test_iia_holds():
    beta = prefs(50, seed=3)
    U = utilities(np.append(COST, 5.0), np.append(DAYS, 20.0), np.append(REL, 0.8), np.append(VIS, 0.0), beta)
    full = mnl_probabilities(U)
    without_diy = mnl_probabilities(U, [True, True, True, False])
    pair = mnl_probabilities(U[:, :2])
    # the odds between two offers do not depend on which others are on the menu
    np.testing.assert_allclose(full[:, 0] / full[:, 1], pair[:, 0] / pair[:, 1])
    np.testing.assert_allclose(without_diy[:, 0] / without_diy[:, 1], pair[:, 0] / pair[:, 1])
    np.testing.assert_allclose(full[:, 0] / full[:, 1], np.exp(U[:, 0] - U[:, 1]))


def test_higher_cost_lowers_share_and_raises_others():
    beta = prefs(2_000, seed=4)
    base = mnl_probabilities(utilities(COST, DAYS, REL, VIS, beta)).mean(axis=0)
    dearer = mnl_probabilities(utilities(COST + [0.0, 2.0, 0.0], DAYS, REL, VIS, beta)).mean(axis=0)
    assert dearer[1] < base[1]
    assert dearer[0] > base[0] and dearer[2] > base[2]
    slower = mnl_probabilities(utilities(COST, DAYS + [0.0, 0.0, 3.0], REL, VIS, beta)).mean(axis=0)
    assert slower[2] < base[2]
    safer = mnl_probabilities(utilities(COST, DAYS, REL + [0.05, 0.0, 0.0], VIS, beta)).mean(axis=0)
    assert safer[0] > base[0]


def test_utilities_signs_and_merchant_specific_quotes():
    beta = Preferences(cost=[1.0, 2.0], time=[0.5, 0.0], reliability=[10.0, 10.0], visibility=[0.0, 1.0])
    landed = np.array([[10.0, 12.0], [10.0, 11.0]])  # per-merchant quotes
    U = utilities(landed, [5.0, 3.0], [0.9, 0.9], [0.0, 1.0], beta)
    np.testing.assert_allclose(U[0], [-10 - 2.5 + 9, -12 - 1.5 + 9])
    np.testing.assert_allclose(U[1], [-20 + 9, -22 + 9 + 1])
    # mapping of scalars: one representative merchant
    U1 = utilities(COST, DAYS, REL, VIS, {"cost": 1.0, "time": 0.0})
    np.testing.assert_allclose(U1, [-COST])
    np.testing.assert_allclose(beta.willingness_to_pay("time"), [0.5, 0.0])


def test_switching_cost_favours_current_provider():
    beta = prefs(3, seed=5)
    current = np.array([1, -1, 2])
    base = utilities(COST, DAYS, REL, VIS, beta)
    sticky = utilities(COST, DAYS, REL, VIS, beta, current=current, switching_cost=4.0)
    np.testing.assert_allclose(sticky[1], base[1])  # no current provider: nothing to switch from
    np.testing.assert_allclose(sticky[0, 1], base[0, 1])
    np.testing.assert_allclose(sticky[0, [0, 2]], base[0, [0, 2]] - 4.0 * beta.cost[0])
    P0, P1 = mnl_probabilities(base), mnl_probabilities(sticky)
    assert P1[0, 1] > P0[0, 1] and P1[2, 2] > P0[2, 2]
    np.testing.assert_allclose(apply_switching_cost(np.zeros((2, 2)), [0, 1], [1.0, 2.0]), [[0, -1], [-2, 0]])
    with pytest.raises(ValueError):
        apply_switching_cost(np.zeros((1, 2)), [2], 1.0)


def test_draw_preferences_moments_and_options():
    n = 200_000
    beta = draw_preferences(n, {"cost": 0.4, "time": 0.1}, {"cost": 0.2, "time": 0.3}, np.random.default_rng(6))
    assert len(beta) == n
    assert np.all(beta.cost > 0) and np.all(beta.time > 0)
    assert beta.cost.mean() == pytest.approx(0.4, rel=0.01)
    assert beta.cost.std() == pytest.approx(0.2, rel=0.03)
    assert beta.time.mean() == pytest.approx(0.1, rel=0.03)
    np.testing.assert_array_equal(beta.reliability, 0.0)
    mixed = draw_preferences(
        10, {"cost": 1.0, "visibility": -0.5}, {"visibility": 1.0}, np.random.default_rng(7), dist={"visibility": "normal"}
    )
    np.testing.assert_array_equal(mixed.cost, 1.0)
    assert mixed.visibility.std() > 0
    sub = mixed[2:5]
    assert len(sub) == 3 and sub.visibility[0] == mixed.visibility[2]
    # same seed, same merchants
    again = draw_preferences(n, {"cost": 0.4, "time": 0.1}, {"cost": 0.2, "time": 0.3}, np.random.default_rng(6))
    np.testing.assert_array_equal(again.cost, beta.cost)
    with pytest.raises(ValueError):
        draw_preferences(5, {"price": 1.0}, rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        draw_preferences(5, {"cost": -1.0}, {"cost": 0.1}, rng=np.random.default_rng(0))
