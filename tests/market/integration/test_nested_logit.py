"""Nested logit: against the GEV model it comes from, and the substitution it must respect."""

from __future__ import annotations

import numpy as np
import pytest

from market.integration.choice import logsum, mnl_probabilities, nested_logit_probabilities, nested_logsum


def gev_probabilities(U, nests, lambdas, h=1e-6):
    """Independent recomputation: a GEV model's choice probabilities are y_i G_i(y) / G(y) with
    y = exp(U) and, for the nested logit, G(y) = sum_k (sum_{j in k} y_j^(1/l_k))^l_k
    (McFadden 1978). G_i by central differences on log y."""
    U = np.asarray(U, dtype=float)
    nests = np.asarray(nests)

    def G(u):
        y = np.exp(u)
        return sum(np.sum(y[nests == k] ** (1.0 / lambdas[k])) ** lambdas[k] for k in np.unique(nests))

    out = np.empty(U.size)
    for i in range(U.size):
        up, down = U.copy(), U.copy()
        up[i] += h
        down[i] -= h
        out[i] = (np.log(G(up)) - np.log(G(down))) / (2 * h)    # d log G / d U_i = y_i G_i / G
    return out


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_gev_generating_function(seed):
    rng = np.random.default_rng(seed)
    J = 7
    U = rng.normal(0, 2, J)
    nests = rng.integers(0, 3, J)
    lambdas = {k: rng.uniform(0.1, 1.0) for k in range(3)}
    lam = np.array([lambdas[k] for k in range(3)])
    P = nested_logit_probabilities(U, nests, lam)
    np.testing.assert_allclose(P, gev_probabilities(U, nests, lambdas), atol=1e-6)
    assert P.sum() == pytest.approx(1.0)
    # the logsum is log G (the expected maximum utility, up to Euler's constant)
    y = np.exp(U)
    G = sum(np.sum(y[nests == k] ** (1 / lambdas[k])) ** lambdas[k] for k in np.unique(nests))
    assert nested_logsum(U, nests, lam) == pytest.approx(np.log(G))


def test_all_lambdas_one_is_the_multinomial_logit():
    rng = np.random.default_rng(9)
    U = rng.normal(0, 1, (4, 6))
    nests = np.array([0, 0, 1, 1, 1, 2])
    np.testing.assert_allclose(nested_logit_probabilities(U, nests, 1.0), mnl_probabilities(U))
    np.testing.assert_allclose(nested_logsum(U, nests, 1.0), logsum(U))


def test_a_copy_of_an_alternative_barely_moves_its_nest_share():
    """The IIA artefact, and its cure: a clone of a 4PL's service takes share from the MNL's
    other alternatives (here doing it yourself), but hardly from them in a nest of close
    substitutes."""
    diy, fourpl = 0.3, 0.0
    one = np.array([diy, fourpl])
    two = np.array([diy, fourpl, fourpl])
    nests1, nests2 = np.array([0, 1]), np.array([0, 1, 1])
    lam = np.array([1.0, 0.2])
    mnl1, mnl2 = mnl_probabilities(one)[1:].sum(), mnl_probabilities(two)[1:].sum()
    nl1 = nested_logit_probabilities(one, nests1, lam)[1:].sum()
    nl2 = nested_logit_probabilities(two, nests2, lam)[1:].sum()
    assert mnl2 - mnl1 > 0.15                      # MNL: 0.43 -> 0.60
    assert 0 < nl2 - nl1 < 0.04                    # nested: the nest's inclusive value rises by 0.2 log 2
    # exactly: the 4PL nest's utility rises by lambda log 2
    expected = 1 / (1 + np.exp(diy - fourpl - 0.2 * np.log(2)))
    assert nl2 == pytest.approx(expected)
    # within the nest the copies split it evenly
    P = nested_logit_probabilities(two, nests2, lam)
    assert P[1] == pytest.approx(P[2])
    # towards lambda -> 0 the copy adds nothing
    tiny = np.array([1.0, 1e-3])
    assert nested_logit_probabilities(two, nests2, tiny)[1:].sum() == pytest.approx(
        nested_logit_probabilities(one, nests1, tiny)[1:].sum(), abs=1e-3)


def test_availability_and_bad_input():
    U = np.array([1.0, 2.0, 0.5])
    P = nested_logit_probabilities(U, [0, 1, 1], [1.0, 0.5], available=[True, False, True])
    assert P[1] == 0 and P.sum() == pytest.approx(1.0)
    assert nested_logit_probabilities(U, [0, 1, 1], 0.5, available=[False] * 3).sum() == 0
    P = nested_logit_probabilities(np.array([0.0, -np.inf]), [0, 1], 0.5)
    np.testing.assert_allclose(P, [1.0, 0.0])
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="dissimilarity"):
            nested_logit_probabilities(U, [0, 1, 1], bad)
    with pytest.raises(ValueError, match="one nest id per alternative"):
        nested_logit_probabilities(U, [0, 1], 0.5)
