"""Pricing policies of a 4PL integrator.

Every policy quotes a price per parcel from the integrator's composed cost
(what it pays the 3PLs) and, when known, the merchant's do-it-yourself cost
(what the merchant would pay contracting carriers directly):

``price(cost, diy_cost=None) -> price``   vectorised over quotes
``observe(accepted, *, profit=None, cost=None, arms=None)``   feedback

* :class:`CostPlus` - fixed markup on cost.
* :class:`ValueBased` - captures a share of the merchant's saving over DIY.
* :class:`AdaptiveMarkup` - learns the most profitable markup from
  acceptances and realised profit with a multi-armed bandit over a markup
  grid (Thompson sampling, UCB1 or UCB1-Tuned), or with Thompson sampling on
  a logistic acceptance curve fitted to all arms at once (``"logistic"``),
  which needs far fewer answers when merchants quote rarely.

:func:`make_pricing_policy` builds one by name for scenario files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = [
    "CostPlus",
    "ValueBased",
    "AdaptiveMarkup",
    "PRICING_POLICIES",
    "make_pricing_policy",
]


def _out(x):
    """Scalars in, scalar out; arrays in, array out."""
    return float(x) if np.ndim(x) == 0 else x


@dataclass
class CostPlus:
    """Price = cost x (1 + markup)."""

    markup: float = 0.15
    name: ClassVar[str] = "cost_plus"

    def __post_init__(self):
        if self.markup < 0:
            raise ValueError("markup must be >= 0: the integrator never prices below cost")

    def price(self, cost, diy_cost=None):
        """Quote(s) for composed cost(s); ``diy_cost`` is ignored."""
        return _out(np.asarray(cost, dtype=float) * (1.0 + self.markup))

    def observe(self, accepted, *, profit=None, cost=None, arms=None) -> None:
        """Fixed policy: feedback is ignored."""


@dataclass
class ValueBased:
    """Price = cost + share x (DIY cost - cost), never below cost x (1 + min_markup).

    The merchant keeps ``1 - share`` of the saving the integrator creates.
    When the integrator is no cheaper than DIY there is no saving to share
    and the price falls back to the floor.
    """

    share: float = 0.5
    min_markup: float = 0.0
    name: ClassVar[str] = "value_based"

    def __post_init__(self):
        if not 0.0 <= self.share <= 1.0:
            raise ValueError("share must lie in [0, 1]")
        if self.min_markup < 0:
            raise ValueError("min_markup must be >= 0")

    def price(self, cost, diy_cost=None):
        """Quote(s); ``diy_cost`` (the merchant's own cost) is required."""
        if diy_cost is None:
            raise ValueError("value-based pricing needs the merchant's do-it-yourself cost")
        cost = np.asarray(cost, dtype=float)
        diy = np.asarray(diy_cost, dtype=float)
        return _out(np.maximum(cost * (1.0 + self.min_markup), cost + self.share * (diy - cost)))

    def observe(self, accepted, *, profit=None, cost=None, arms=None) -> None:
        """Fixed policy: feedback is ignored."""


class AdaptiveMarkup:
    """Bandit over a grid of markups, rewarded with realised margin on cost.

    Each quote pulls an arm (a markup); its reward is the realised profit
    divided by cost if the merchant accepted, 0 otherwise, so the best arm
    maximises expected profit per unit of cost - the acceptance/margin
    trade-off of a demand curve the integrator does not know.

    Methods
    -------
    ``"thompson"`` (default)
        Beta posterior on each arm's acceptance probability; a quote uses the
        arm maximising sampled acceptance x estimated realised margin. Each
        quote in a batch samples independently.
    ``"ucb1"``
        Auer et al. (2002) UCB1 on rewards scaled by ``reward_scale``
        (default: the largest markup). One arm per batch.
    ``"ucb1-tuned"``
        UCB1 with the empirical-variance bonus; far less exploration when
        acceptance is nearly certain or hopeless.

    ``"logistic"``
        Thompson sampling on a parametric demand curve: acceptance is
        ``sigmoid(a - b x markup)``; ``(a, b)`` has a Gaussian prior
        (``LOGISTIC_PRIOR``) and a Laplace-approximated posterior fitted by
        Newton's method to the (discounted) acceptances of every arm; a quote
        samples ``(a, b)`` and takes the arm maximising
        ``markup x sigmoid(a - b x markup)`` (expected margin per quote). Each
        answer informs every arm, so it learns a competitor's undercutting
        (a steeper curve) from few quotes.

    ``discount`` < 1 geometrically forgets old evidence at every
    :meth:`observe` call, for markets whose competitors move.
    """

    METHODS: ClassVar[tuple[str, ...]] = ("thompson", "ucb1", "ucb1-tuned", "logistic")
    LOGISTIC_PRIOR: ClassVar[tuple[tuple[float, float], tuple[float, float]]] = ((0.0, 2.0), (5.0, 20.0))
    """(mean, sd) of the intercept a and of the slope b of the logistic acceptance curve: weak,
    centred on acceptance falling with the markup (an assumption)."""
    name: ClassVar[str] = "adaptive"

    def __init__(
        self,
        markups: Sequence[float] = tuple(np.round(np.arange(0.0, 0.55, 0.05), 2)),
        *,
        method: str = "thompson",
        rng: np.random.Generator | None = None,
        discount: float = 1.0,
        reward_scale: float | None = None,
    ):
        self.markups = np.asarray(markups, dtype=float)
        if self.markups.ndim != 1 or self.markups.size == 0 or np.any(self.markups < 0):
            raise ValueError("markups must be a non-empty 1-D grid of non-negative values")
        if method not in self.METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {self.METHODS}")
        if method in ("thompson", "logistic") and rng is None:
            raise ValueError("Thompson sampling needs a numpy Generator")
        if not 0.0 < discount <= 1.0:
            raise ValueError("discount must lie in (0, 1]")
        self.method = method
        self.rng = rng
        self.discount = discount
        self.reward_scale = float(reward_scale) if reward_scale else float(max(self.markups.max(), 1e-12))
        k = self.markups.size
        self.pulls = np.zeros(k)  # quotes made (discounted)
        self.accepts = np.zeros(k)  # quotes accepted (discounted)
        self.reward_sum = np.zeros(k)  # sum of scaled rewards
        self.reward_sq = np.zeros(k)  # sum of squared scaled rewards
        self.margin_sum = np.zeros(k)  # realised margin on cost, accepted quotes only
        self._posterior: tuple[np.ndarray, np.ndarray] | None = None   # logistic: (mode, covariance)
        self.last_arms: np.ndarray | None = None
        self.last_cost: np.ndarray | None = None
        self.last_price: np.ndarray | None = None

    # -- choosing ----------------------------------------------------------

    def choose_arms(self, n: int) -> np.ndarray:
        """Arm indices for ``n`` quotes, without pricing anything."""
        k = self.markups.size
        if self.method == "logistic":
            mode, cov = self.logistic_posterior()
            ab = self.rng.multivariate_normal(mode, cov, size=n, method="cholesky")
            accept = 1.0 / (1.0 + np.exp(-(ab[:, :1] - ab[:, 1:] * self.markups[None, :])))
            return np.argmax(self.markups[None, :] * accept, axis=1)
        if self.method == "thompson":
            theta = self.rng.beta(1.0 + self.accepts, 1.0 + self.pulls - self.accepts, size=(n, k))
            # realised margin per accepted parcel, prior: the quoted markup
            margin = (self.markups + self.margin_sum) / (1.0 + self.accepts)
            return np.argmax(theta * margin, axis=1)
        untried = np.flatnonzero(self.pulls <= 0)
        if untried.size:
            return np.full(n, untried[0])
        mean = self.reward_sum / self.pulls
        log_total = np.log(self.pulls.sum())
        if self.method == "ucb1":
            bonus = np.sqrt(2.0 * log_total / self.pulls)
        else:
            var = np.maximum(self.reward_sq / self.pulls - mean**2, 0.0) + np.sqrt(2.0 * log_total / self.pulls)
            bonus = np.sqrt(log_total / self.pulls * np.minimum(0.25, var))
        return np.full(n, int(np.argmax(mean + bonus)))

    def price(self, cost, diy_cost=None):
        """Quote(s) at the chosen markups; remembers arms and costs for :meth:`observe`.

        ``diy_cost`` is ignored: the bandit learns what merchants accept.
        """
        c = np.asarray(cost, dtype=float)
        flat = np.atleast_1d(c)
        arms = self.choose_arms(flat.size)
        quotes = flat * (1.0 + self.markups[arms])
        self.last_arms, self.last_cost, self.last_price = arms, flat, quotes
        return float(quotes[0]) if c.ndim == 0 else quotes.reshape(c.shape)

    def logistic_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mode and covariance of the Laplace approximation to the posterior of ``(a, b)`` in
        ``P(accept | markup) = sigmoid(a - b x markup)``, from the discounted quotes and
        acceptances of every arm (cached until the next :meth:`observe`)."""
        if self._posterior is not None:
            return self._posterior
        (ma, sa), (mb, sb) = self.LOGISTIC_PRIOR
        mu0 = np.array([ma, mb])
        prec0 = np.diag([1.0 / sa ** 2, 1.0 / sb ** 2])
        X = np.column_stack([np.ones(self.markups.size), -self.markups])
        acc, rej = self.accepts, np.maximum(self.pulls - self.accepts, 0.0)

        def log_post(theta):
            z = X @ theta
            return float(-(acc * np.logaddexp(0.0, -z)).sum() - (rej * np.logaddexp(0.0, z)).sum()
                         - 0.5 * (theta - mu0) @ prec0 @ (theta - mu0))

        theta = mu0.copy()
        value = log_post(theta)
        for _ in range(100):      # damped Newton on the (concave) log posterior
            p = 1.0 / (1.0 + np.exp(-(X @ theta)))
            grad = X.T @ (acc - self.pulls * p) - prec0 @ (theta - mu0)
            hess = X.T @ (X * (self.pulls * p * (1.0 - p))[:, None]) + prec0
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while t > 1e-6:
                new = log_post(theta + t * step)
                if new >= value - 1e-12:
                    break
                t *= 0.5
            theta, value = theta + t * step, new
            if np.abs(t * step).max() < 1e-9:
                break
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        hess = X.T @ (X * (self.pulls * p * (1.0 - p))[:, None]) + prec0
        self._posterior = (theta, np.linalg.inv(hess))
        return self._posterior

    # -- learning ----------------------------------------------------------

    def observe(self, accepted, *, profit=None, cost=None, arms=None) -> None:
        """Learn from the merchants' answers to the last quotes.

        ``accepted`` is a bool per quote. ``profit`` is the realised profit in
        USD per quote (price minus what the legs really cost; ignored for
        rejected quotes); by default the quoted margin. ``cost`` and ``arms``
        default to those remembered by the last :meth:`price` call.
        """
        arms = self.last_arms if arms is None else np.atleast_1d(np.asarray(arms, dtype=int))
        if arms is None:
            raise ValueError("no quotes to learn from: call price() first or pass arms")
        cost = self.last_cost if cost is None else np.atleast_1d(np.asarray(cost, dtype=float))
        acc = np.broadcast_to(np.atleast_1d(np.asarray(accepted, dtype=bool)), arms.shape)
        if profit is None:
            margin = self.markups[arms]
        else:
            profit = np.broadcast_to(np.atleast_1d(np.asarray(profit, dtype=float)), arms.shape)
            with np.errstate(divide="ignore", invalid="ignore"):
                margin = np.where(cost > 0, profit / np.where(cost > 0, cost, 1.0), self.markups[arms])
        reward = np.where(acc, margin, 0.0) / self.reward_scale
        if self.discount < 1.0:
            for stat in (self.pulls, self.accepts, self.reward_sum, self.reward_sq, self.margin_sum):
                stat *= self.discount
        k = self.markups.size
        self._posterior = None
        self.pulls += np.bincount(arms, minlength=k)
        self.accepts += np.bincount(arms, weights=acc.astype(float), minlength=k)
        self.reward_sum += np.bincount(arms, weights=reward, minlength=k)
        self.reward_sq += np.bincount(arms, weights=reward**2, minlength=k)
        self.margin_sum += np.bincount(arms, weights=np.where(acc, margin, 0.0), minlength=k)

    # -- reporting ---------------------------------------------------------

    def expected_margin(self) -> np.ndarray:
        """Estimated realised margin on cost per quote, per arm (NaN if never tried)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.pulls > 0, self.reward_sum / self.pulls * self.reward_scale, np.nan)

    @property
    def best_markup(self) -> float:
        """Markup with the highest estimated margin per quote so far (logistic: under the
        posterior mode of the acceptance curve)."""
        if self.method == "logistic":
            a, b = self.logistic_posterior()[0]
            return float(self.markups[np.argmax(self.markups / (1.0 + np.exp(-(a - b * self.markups))))])
        est = self.expected_margin()
        return float(self.markups[np.nanargmax(est)]) if np.any(np.isfinite(est)) else float(self.markups[0])


PRICING_POLICIES = {
    "cost_plus": CostPlus,
    "value_based": ValueBased,
    "adaptive": AdaptiveMarkup,
}


def make_pricing_policy(name: str, **params):
    """Build a pricing policy by name (``cost_plus``, ``value_based``, ``adaptive``)."""
    try:
        cls = PRICING_POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown pricing policy {name!r}; known: {sorted(PRICING_POLICIES)}") from None
    return cls(**params)
