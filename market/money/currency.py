"""Currencies and exchange rates: a mean-reverting log process per currency against the USD,
drawn from its own random stream, moved by scheduled currency shocks; conversion at the day's
rate.

The ledger keeps one reporting currency, the USD, in integer cents. A market's prices are
kept (in ``model.lst_price`` and the demand model) in its own currency expressed at the
first day's rate ("local units": an amount in local currency divided by its starting rate
per USD), so consumers compare local prices with local reference prices, and an amount in
local units is worth ``value`` of it in USD today, where ``value`` is 1 on the first day.

Each currency's log value against the USD follows an Ornstein-Uhlenbeck process around its
level (0, or the log of the factors of the currency shocks in force):

    x[t+1] = x[t] - kappa dt x[t] + sigma sqrt(dt) eps,   dt = 1/365,   value = exp(x) * shock

so daily log changes have the annual volatility ``sigma`` (calendar days: a year is 365
daily steps) and deviations die out at rate ``kappa`` (0: a geometric Brownian motion).
"""

from __future__ import annotations

import numpy as np

from market.scenario import CURRENCIES, Currency, ScenarioError

DT = 1.0 / 365.0
USD = CURRENCIES.index("USD")
CNY = CURRENCIES.index("CNY")


def stream(rng: np.random.Generator, salt: int) -> np.random.Generator:
    """A random stream of its own, derived from the seed of ``rng`` and ``salt`` without drawing
    from ``rng`` (so adding it leaves every other draw of the run as it was)."""
    ss = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (salt,)))


class Rates:
    """Today's exchange rates of every currency, and their history.

    ``value[c]``: the USD value of one unit of currency ``c`` relative to the first day (1 then);
    ``per_usd[c]``: units of ``c`` per USD today. ``market_value[m]``: the value of market
    ``m``'s currency. Disabled (``enabled = false``), every value stays 1.
    """

    def __init__(self, cfg: Currency, markets: list[str], rng: np.random.Generator):
        self.cfg = cfg
        self.enabled = cfg.enabled
        unknown = sorted(set(cfg.market_currency) - set(markets))
        if unknown:
            raise ScenarioError(f"key 'currency.market_currency': unknown market {unknown[0]!r} "
                                f"(known: {', '.join(markets)})")
        self.names = CURRENCIES
        self.start_per_usd = np.array([cfg.start_per_usd[c] for c in CURRENCIES])
        self.sigma = np.array([cfg.volatility[c] for c in CURRENCIES]) * cfg.volatility_scale
        self.kappa = cfg.mean_reversion
        self.market_currency = np.array([CURRENCIES.index(cfg.market_currency.get(m, "USD")) for m in markets],
                                        dtype=np.int64)
        if not self.enabled:
            self.market_currency[:] = USD
        self.rng = stream(rng, 0x4658)                  # "FX"
        self.x = np.zeros(len(CURRENCIES))              # log value against the level
        self.shock = np.ones(len(CURRENCIES))           # factors of the currency shocks in force
        self.value = np.ones(len(CURRENCIES))
        self.history: list[np.ndarray] = []             # per_usd, one row a day

    @property
    def per_usd(self) -> np.ndarray:
        """Units of each currency per USD today."""
        return self.start_per_usd / self.value

    @property
    def market_value(self) -> np.ndarray:
        """Today's value of each market's currency (USD per local unit; 1 on the first day)."""
        return self.value[self.market_currency]

    @property
    def cny_value(self) -> float:
        """Today's value of the CNY (what goods bought in CNY cost in USD, per USD they cost on day 0)."""
        return float(self.value[CNY]) if self.enabled else 1.0

    def goods_factor(self, in_cny: np.ndarray) -> np.ndarray:
        """What goods cost in USD today per USD they cost on day 0: the CNY's value for goods
        bought in CNY, 1 for goods bought in USD."""
        return np.where(in_cny, self.cny_value, 1.0)

    def set_shock(self, factor: np.ndarray):
        """The currency shocks in force today (one factor per currency): the level moves at once."""
        self.shock = np.asarray(factor, dtype=np.float64)
        self._refresh()

    def advance(self):
        """One day of the rate process (one draw per currency, in the fixed order of CURRENCIES)."""
        if not self.enabled:
            return
        eps = self.rng.standard_normal(len(CURRENCIES))
        self.x = self.x - self.kappa * DT * self.x + self.sigma * np.sqrt(DT) * eps
        self._refresh()

    def _refresh(self):
        if self.enabled:
            self.value = np.exp(self.x) * self.shock
            self.value[USD] = 1.0

    def record(self):
        """Note today's rates (called once a day, after the day's last conversion)."""
        self.history.append(self.per_usd.copy())

    def daily_figures(self) -> dict:
        """Today's rate of each currency per USD (the ``rate_*`` columns of the time series)."""
        per = self.per_usd
        return {f"rate_{c}": float(per[i]) for i, c in enumerate(CURRENCIES) if i != USD}

    def summary_figures(self) -> dict:
        """The rates at the start and end, their range, and their realised annual volatility."""
        hist = np.array(self.history) if self.history else self.per_usd[None, :]
        out = {}
        for i, c in enumerate(CURRENCIES):
            if i == USD:
                continue
            r = hist[:, i]
            d = np.diff(np.log(r))
            out[c] = {"start_per_usd": float(self.start_per_usd[i]), "end_per_usd": float(r[-1]),
                      "min_per_usd": float(r.min()), "max_per_usd": float(r.max()),
                      "realised_volatility": float(d.std(ddof=1) * np.sqrt(365.0)) if d.size > 1 else None,
                      "configured_volatility": float(self.sigma[i])}
        return {"enabled": self.enabled, "reporting_currency": "USD", "rates": out}
