"""Exchange rates (market/money/currency.py) on their own: volatility, mean reversion, shocks,
their own random stream, and the schema's checks."""

from __future__ import annotations

import numpy as np
import pytest

from market.money.currency import CNY, DT, USD, Rates
from market.scenario import CURRENCIES, Currency, ScenarioError, load_scenario

MARKETS = ["US", "EU", "UK", "RU", "CN"]


def path(cfg: Currency, days: int, seed: int) -> np.ndarray:
    """Rates per USD, one row a day (day 0 the start), of one seed."""
    r = Rates(cfg, MARKETS, np.random.default_rng(seed))
    rows = [r.per_usd.copy()]
    for _ in range(days):
        r.advance()
        rows.append(r.per_usd.copy())
    return np.array(rows)


def test_realised_volatility_matches_the_configured_one():
    """Annualised s.d. of daily log changes, pooled over 20 seeds of 3 years each (21,900 changes
    per currency), is within 3 standard errors of the configured volatility (the s.e. of a sample
    s.d. of n normal changes is sigma / sqrt(2 n); the mean reversion adds a drift term of order
    kappa dt, far below that)."""
    cfg = Currency()
    changes = np.vstack([np.diff(np.log(path(cfg, 3 * 365, seed)), axis=0) for seed in range(20)])
    realised = changes.std(axis=0, ddof=1) * np.sqrt(365.0)
    n = changes.shape[0]
    for i, c in enumerate(CURRENCIES):
        sigma = cfg.volatility[c]
        if sigma == 0:
            assert realised[i] == 0.0, c
            continue
        assert abs(realised[i] - sigma) < 3 * sigma / np.sqrt(2 * n), (c, realised[i], sigma)


def test_volatility_scale_and_zero_volatility():
    cfg = Currency(volatility_scale=2.0)
    changes = np.diff(np.log(path(cfg, 20 * 365, 3)), axis=0)
    rub = CURRENCIES.index("RUB")
    assert changes[:, rub].std(ddof=1) * np.sqrt(365) == pytest.approx(2 * 0.15, rel=0.03)
    flat = path(Currency(volatility_scale=0.0), 200, 3)
    assert (flat == flat[0]).all()


def test_mean_reversion_pulls_the_log_value_back():
    """With kappa > 0 the log value is a stationary AR(1): its variance settles at
    sigma^2 dt / (1 - (1 - kappa dt)^2), about sigma^2 / (2 kappa); without it the variance grows
    with time (sigma^2 t). Checked across 300 seeds after a year, with a fast reversion (kappa
    20 a year: stationary within weeks)."""
    kappa, sigma = 20.0, 0.15
    ends_mr, ends_rw = [], []
    rub = CURRENCIES.index("RUB")
    for seed in range(300):
        for cfg, out in ((Currency(mean_reversion=kappa), ends_mr), (Currency(mean_reversion=0.0), ends_rw)):
            r = Rates(cfg, MARKETS, np.random.default_rng(seed))
            for _ in range(365):
                r.advance()
            out.append(np.log(r.value[rub]))
    a = 1 - kappa * DT
    stationary = sigma ** 2 * DT / (1 - a ** 2)
    # the sample variance of 300 normal draws has a relative s.e. of sqrt(2 / 299), about 8%
    assert np.var(ends_mr) == pytest.approx(stationary, rel=0.25)
    assert np.var(ends_rw) == pytest.approx(sigma ** 2 * 1.0, rel=0.25)
    assert np.var(ends_mr) < 0.2 * np.var(ends_rw)


def test_a_currency_shock_moves_the_level_and_the_rate_reverts_to_it():
    cfg = Currency(volatility_scale=0.0)
    r = Rates(cfg, MARKETS, np.random.default_rng(1))
    rub = CURRENCIES.index("RUB")
    factor = np.ones(len(CURRENCIES))
    factor[rub] = 0.7
    r.set_shock(factor)
    assert r.per_usd[rub] == pytest.approx(89.0 / 0.7)
    assert r.market_value[MARKETS.index("RU")] == pytest.approx(0.7)
    assert r.market_value[MARKETS.index("US")] == 1.0
    for _ in range(100):
        r.advance()
    assert r.per_usd[rub] == pytest.approx(89.0 / 0.7)      # the new level holds


def test_rates_have_their_own_stream():
    """Drawing the rates leaves the model's generator where it was, and the path depends only on
    the seed."""
    g = np.random.default_rng(5)
    before = np.random.default_rng(5).random(3)
    a = path(Currency(), 50, 5)
    r = Rates(Currency(), MARKETS, g)
    for _ in range(50):
        r.advance()
    assert (g.random(3) == before).all()
    assert np.array_equal(a[-1], r.per_usd)
    assert not np.array_equal(a, path(Currency(), 50, 6))


def test_disabled_currencies_keep_every_value_at_one():
    r = Rates(Currency(enabled=False), MARKETS, np.random.default_rng(1))
    for _ in range(30):
        r.advance()
    assert (r.value == 1).all() and (r.market_currency == USD).all() and r.cny_value == 1.0
    assert CNY == CURRENCIES.index("CNY")


@pytest.mark.parametrize("override, words", [
    ({"currency.volatility": {"USD": 0.1, "EUR": 0.1, "GBP": 0.1, "RUB": 0.1, "CNY": 0.1}}, "USD"),
    ({"currency.volatility": {"EUR": 0.1}}, "needs every currency"),
    ({"currency.start_per_usd": {"USD": 1.0, "EUR": -1.0, "GBP": 1.0, "RUB": 1.0, "CNY": 1.0}}, "positive"),
    ({"currency.market_currency": {"RU": "XYZ"}}, "unknown currency"),
    ({"shocks": [{"name": "deval", "kind": "currency", "day": 5, "factor": 0.7}]}, "currencies"),
    ({"shocks": [{"name": "deval", "kind": "currency", "day": 5, "factor": 0.7, "currencies": ["ABC"]}]},
     "unknown currency"),
    ({"shocks": [{"name": "deval", "kind": "currency", "day": 5, "factor": 0.0, "currencies": ["RUB"]}]},
     "above 0"),
    ({"shocks": [{"name": "d", "kind": "demand", "day": 5, "factor": 0.7, "currencies": ["RUB"]}]},
     "currency shocks only"),
])
def test_bad_currency_settings_are_one_line_errors(override, words):
    with pytest.raises(ScenarioError) as err:
        load_scenario("baseline", override)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_unknown_market_in_market_currency_is_an_error():
    from market import Marketplace
    with pytest.raises(ScenarioError) as err:
        Marketplace("baseline", rng=1, **{"currency.market_currency": {"XX": "EUR"}, "merchants.exporters": 2,
                                          "merchants.importers": 0})
    assert "XX" in str(err.value) and "\n" not in str(err.value)
