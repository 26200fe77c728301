import numpy as np
import pytest

from market.metrics.concentration import (
    concentration_ratio,
    hhi,
    hhi_by_segment,
    market_shares,
    normalized_hhi,
    shares_by_segment,
    volume_weighted_hhi,
)


def test_hhi_textbook_values():
    assert hhi([1.0]) == pytest.approx(10_000)
    assert hhi([0.25] * 4) == pytest.approx(2_500)
    assert hhi([50, 30, 20]) == pytest.approx(50**2 + 30**2 + 20**2)  # shares in percent -> points
    assert hhi([500, 300, 200]) == hhi([0.5, 0.3, 0.2])  # volumes or shares alike
    assert hhi([0.5, 0.3, 0.2], scale=1) == pytest.approx(0.38)
    assert hhi({"DHL": 6.0, "UPS": 2.0, "4PL": 2.0}) == pytest.approx(3600 + 400 + 400)
    assert np.isnan(hhi([0.0, 0.0]))
    np.testing.assert_allclose(hhi(np.array([[1.0, 0.0], [1.0, 1.0]])), [10_000, 5_000])
    with pytest.raises(ValueError):
        hhi([1.0, -1.0])


def test_normalized_hhi_and_concentration_ratio():
    assert normalized_hhi([1, 1, 1, 1]) == pytest.approx(0.0)
    assert normalized_hhi([5, 0, 0, 0]) == pytest.approx(1.0)
    assert normalized_hhi([3, 1], n_firms=2) == pytest.approx((0.625 - 0.5) / 0.5)
    assert normalized_hhi([7.0]) == 1.0
    np.testing.assert_allclose(normalized_hhi(np.array([[1, 1], [1, 0]])), [0.0, 1.0])
    assert concentration_ratio([40, 30, 20, 5, 5], k=2) == pytest.approx(0.7)
    assert concentration_ratio([40, 30], k=4) == pytest.approx(1.0)


def test_market_shares():
    assert market_shares({"a": 3.0, "b": 1.0}) == {"a": 0.75, "b": 0.25}
    np.testing.assert_allclose(market_shares([2.0, 2.0, 4.0]), [0.25, 0.25, 0.5])
    rows = market_shares(np.array([[1.0, 3.0], [0.0, 0.0]]))
    np.testing.assert_allclose(rows[0], [0.25, 0.75])
    assert np.all(np.isnan(rows[1]))


def test_hhi_by_segment_matches_loop():
    rng = np.random.default_rng(0)
    n, S, F = 5_000, 7, 5
    seg = rng.integers(0, S, n)
    firm = rng.integers(0, F, n)
    firm[seg == 3] = 2  # segment 3 is a monopoly
    seg[seg == 6] = 5  # segment 6 has no shipments
    vol = rng.uniform(0.5, 3.0, n)
    got = hhi_by_segment(seg, firm, vol, n_segments=S, n_firms=F)
    for s in range(S):
        mask = seg == s
        if not mask.any():
            assert np.isnan(got[s])
            continue
        by_firm = {f: vol[mask & (firm == f)].sum() for f in range(F)}
        assert got[s] == pytest.approx(hhi(by_firm))
    assert got[3] == pytest.approx(10_000)
    # counts when no volumes are given
    shares = shares_by_segment([0, 0, 0, 1], [0, 0, 1, 1])
    np.testing.assert_allclose(shares, [[2 / 3, 1 / 3], [0.0, 1.0]])
    np.testing.assert_allclose(hhi_by_segment([0, 0, 0, 1], [0, 0, 1, 1], scale=1), [5 / 9, 1.0])


def test_volume_weighted_hhi_and_input_checks():
    seg = np.array([0, 0, 1, 1])
    firm = np.array([0, 1, 0, 0])
    vol = np.array([1.0, 1.0, 2.0, 6.0])
    # segment 0: 5,000 on volume 2; segment 1: monopoly on volume 8
    assert volume_weighted_hhi(seg, firm, vol) == pytest.approx((5_000 * 2 + 10_000 * 8) / 10)
    with pytest.raises(TypeError):
        hhi_by_segment(["lane-a"], [0])
    with pytest.raises(ValueError):
        hhi_by_segment([0, 1], [0])
    with pytest.raises(ValueError):
        hhi_by_segment([0, 2], [0, 1], n_segments=2)
