"""Provider bidding strategies, vectorised over many providers.

One strategy object holds state arrays for ``n_providers`` providers (in the
model: one row per offer), so a single object can price for every carrier in
the model at once.  The interface is

* ``ask(costs, providers=None, context=None) -> prices``: asks for the
  providers ``providers`` (indices, default all) whose unit costs are
  ``costs`` (shape ``(k,)`` or ``(k, n_lanes)``); ``context`` describes the
  tender where a strategy needs it (the number of bidders, the believed range
  of rivals' costs, the buyer's reserve);
* ``observe(won, utilisation=None, providers=None, profit=None)``: feedback
  after the tender/spot round (whether each provider won, its capacity
  utilisation and realised profit).

Markup strategies ask ``cost * (1 + markup)``: :class:`Truthful` (no markup,
dominant under Vickrey/VCG and in a clock auction), :class:`CostPlus` (a
list markup), :class:`AdaptiveMarkup` (raised after wins, cut after losses)
and :class:`BanditMarkup` (learned by an epsilon-greedy bandit).  Shading
strategies ask ``cost + s * (top - cost)``, a share ``s`` of the room between
cost and the highest ask that can still win: :class:`EquilibriumShading`
(the symmetric Bayes-Nash equilibrium of a first-price reverse auction,
:func:`market.mechanisms.auctions.first_price_equilibrium_bid`) and
:class:`BanditShading` (``s`` learned from the profits of past tenders,
which moves it towards the equilibrium's ``1 / n``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .auctions import first_price_equilibrium_bid

__all__ = [
    "BiddingStrategy",
    "Truthful",
    "CostPlus",
    "AdaptiveMarkup",
    "BanditMarkup",
    "EquilibriumShading",
    "BanditShading",
]


def _idx(providers: np.ndarray | None, n: int) -> np.ndarray:
    if providers is None:
        return np.arange(n)
    p = np.asarray(providers)
    return np.flatnonzero(p) if p.dtype == bool else p.astype(np.int64)


def _apply(costs: np.ndarray, markup: np.ndarray) -> np.ndarray:
    c = np.asarray(costs, dtype=float)
    m = np.asarray(markup, dtype=float)
    if c.ndim == 2 and m.ndim == 1:
        m = m[:, None]
    return c * (1.0 + m)


class BiddingStrategy:
    """Base class: a markup per provider (stateless unless overridden).

    With ``providers=None`` the whole state is used (length ``n_providers``,
    broadcast when ``n_providers == 1``); pass unique provider indices (or a
    boolean mask) to price or update a subset.
    """

    def __init__(self, n_providers: int = 1) -> None:
        self.n_providers = int(n_providers)

    def markup(self, providers: np.ndarray | None = None) -> np.ndarray:
        """Current markup of the given providers."""
        return np.zeros(_idx(providers, self.n_providers).size)

    def ask(self, costs: np.ndarray, providers: np.ndarray | None = None,
            context: dict[str, Any] | None = None) -> np.ndarray:
        """Per-unit asks for ``providers`` given their unit ``costs``."""
        return _apply(costs, self.markup(providers))

    def observe(self, won: np.ndarray, utilisation: np.ndarray | None = None,
                providers: np.ndarray | None = None,
                profit: np.ndarray | None = None) -> None:
        """Feedback after a round (no-op for static strategies)."""


class Truthful(BiddingStrategy):
    """Ask = cost (dominant strategy under Vickrey/VCG payments)."""


class CostPlus(BiddingStrategy):
    """Ask = cost * (1 + markup); ``markup`` scalar or one per provider."""

    def __init__(self, markup: float | np.ndarray = 0.1, n_providers: int | None = None) -> None:
        m = np.atleast_1d(np.asarray(markup, dtype=float))
        n = m.size if n_providers is None else int(n_providers)
        super().__init__(n)
        self._markup = np.broadcast_to(m, (n,)).copy()

    def markup(self, providers: np.ndarray | None = None) -> np.ndarray:
        """The fixed markup of each of ``providers``."""
        return self._markup[_idx(providers, self.n_providers)].copy()

    def update(self, markup: float | np.ndarray) -> None:
        """Load new list markups (one per provider, or one for all), e.g. after price reviews;
        the number of providers follows the array's length."""
        m = np.atleast_1d(np.asarray(markup, dtype=float))
        n = m.size if m.size > 1 else self.n_providers
        self._markup = np.broadcast_to(m, (n,)).copy()
        self.n_providers = n


class AdaptiveMarkup(BiddingStrategy):
    """Markup learned from wins, losses and utilisation (bounded).

    After each observed round a provider's markup is updated multiplicatively
    in ``(1 + markup)`` space::

        won  -> (1 + m) *= 1 + step_up   * (1 + util_gain * (u - target))
        lost -> (1 + m) *= 1 - step_down * (1 + util_gain * (target - u))

    so winners raise their price (faster when already busy), losers cut it
    (faster when capacity sits idle); providers that did not take part are
    unchanged.  The markup is clipped to ``[min_markup, max_markup]``.  This is
    the classic "raise after a win, lower after a loss" learning rule
    (cf. Roth-Erev style direct adaptation in agent-based electricity/freight
    auction models).
    """

    def __init__(self, n_providers: int, initial: float | np.ndarray = 0.10,
                 step_up: float = 0.05, step_down: float = 0.05,
                 min_markup: float = 0.0, max_markup: float = 1.0,
                 target_utilisation: float = 0.85, util_gain: float = 1.0) -> None:
        super().__init__(n_providers)
        if not 0 <= step_down < 1 or step_up < 0:
            raise ValueError("need step_up >= 0 and 0 <= step_down < 1")
        if min_markup > max_markup or min_markup <= -1:
            raise ValueError("need -1 < min_markup <= max_markup")
        self.step_up, self.step_down = float(step_up), float(step_down)
        self.min_markup, self.max_markup = float(min_markup), float(max_markup)
        self.target = float(target_utilisation)
        self.util_gain = float(util_gain)
        self._markup = np.clip(np.broadcast_to(np.asarray(initial, float), (n_providers,)),
                               self.min_markup, self.max_markup).copy()

    def markup(self, providers=None):
        """The markup each of ``providers`` has learned so far."""
        return self._markup[_idx(providers, self.n_providers)].copy()

    def observe(self, won, utilisation=None, providers=None, profit=None):
        """Raise the markup of those who won, cut it for those who lost (see the class)."""
        idx = _idx(providers, self.n_providers)
        w = np.broadcast_to(np.asarray(won, dtype=bool), idx.shape)
        u = (np.full(idx.shape, self.target) if utilisation is None
             else np.broadcast_to(np.asarray(utilisation, float), idx.shape))
        up = 1.0 + self.step_up * np.maximum(0.0, 1.0 + self.util_gain * (u - self.target))
        # keep the cut factor positive: step_down * pressure < 1
        pressure = np.clip(1.0 + self.util_gain * (self.target - u), 0.0,
                           0.99 / max(self.step_down, 1e-12))
        down = 1.0 - self.step_down * pressure
        factor = np.where(w, up, down)
        m = (1.0 + self._markup[idx]) * factor - 1.0
        self._markup[idx] = np.clip(m, self.min_markup, self.max_markup)


class BanditMarkup(BiddingStrategy):
    """Epsilon-greedy multi-armed bandit over a grid of markups.

    Each provider keeps an action-value estimate per markup on ``grid``.
    ``ask`` explores a uniformly random arm with probability ``epsilon`` and
    otherwise exploits the best arm (ties: lowest markup); ``observe`` updates
    the chosen arm with the reward -- the realised ``profit`` if given, else
    ``won * markup`` (margin per unit of cost) -- by sample average
    (``step_size=None``) or with a constant step size (tracks non-stationary
    competition).  All randomness comes from the supplied Generator.
    """

    def __init__(self, n_providers: int, rng: np.random.Generator,
                 grid: np.ndarray = np.linspace(0.0, 0.5, 11), epsilon: float = 0.1,
                 step_size: float | None = None, initial_value: float = 0.0) -> None:
        super().__init__(n_providers)
        self.rng = rng
        self.grid = np.asarray(grid, dtype=float)
        self.epsilon = float(epsilon)
        self.step_size = step_size
        self.initial_value = float(initial_value)
        self.values = np.full((n_providers, self.grid.size), float(initial_value))
        self.counts = np.zeros((n_providers, self.grid.size), dtype=np.int64)
        self.last_arm = np.argmax(self.values, axis=1)

    def markup(self, providers=None):
        """The markup of the arm each of ``providers`` played last."""
        return self.grid[self.last_arm[_idx(providers, self.n_providers)]]

    def choose(self, providers=None) -> np.ndarray:
        """Pick an arm per provider (a uniformly random one with probability ``epsilon``, else
        the best so far, ties to the lowest) and return its grid value."""
        idx = _idx(providers, self.n_providers)
        explore = self.rng.random(idx.size) < self.epsilon
        random_arm = self.rng.integers(0, self.grid.size, idx.size)
        greedy = np.argmax(self.values[idx], axis=1)
        self.last_arm[idx] = np.where(explore, random_arm, greedy)
        return self.grid[self.last_arm[idx]]

    def ask(self, costs, providers=None, context=None):
        """Pick an arm per provider (explore with probability ``epsilon``) and ask cost times
        one plus its markup."""
        return _apply(np.asarray(costs, dtype=float), self.choose(providers))

    def add_providers(self, k: int) -> None:
        """Room for ``k`` more providers (e.g. offers of a provider entering), with fresh values."""
        self.values = np.vstack([self.values, np.full((k, self.grid.size), self.initial_value)])
        self.counts = np.vstack([self.counts, np.zeros((k, self.grid.size), dtype=np.int64)])
        self.last_arm = np.concatenate([self.last_arm, np.argmax(self.values[-k:], axis=1)]) if k else self.last_arm
        self.n_providers += k

    def observe(self, won, utilisation=None, providers=None, profit=None):
        """Update the value of each provider's last arm with its reward (see the class)."""
        idx = _idx(providers, self.n_providers)
        arm = self.last_arm[idx]
        w = np.broadcast_to(np.asarray(won, dtype=float), idx.shape)
        reward = (w * self.grid[arm] if profit is None
                  else np.broadcast_to(np.asarray(profit, float), idx.shape))
        self.counts[idx, arm] += 1
        alpha = (1.0 / self.counts[idx, arm] if self.step_size is None
                 else float(self.step_size))
        self.values[idx, arm] += alpha * (reward - self.values[idx, arm])


def _shade(costs: np.ndarray, share: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``cost + share * (top - cost)``, never below cost."""
    return costs + share * np.maximum(top - costs, 0.0)


class EquilibriumShading(BiddingStrategy):
    """The symmetric Bayes-Nash equilibrium ask of a first-price reverse auction.

    A provider believes its rivals' costs are independent draws, uniform on
    ``context["cost_bounds"] = (lo, hi)``, that ``context["n_bidders"]``
    bidders (itself included) take part and that the buyer accepts no ask
    above ``context["reserve"]`` (``None``: no reserve).  It asks
    :func:`~market.mechanisms.auctions.first_price_equilibrium_bid` of its
    cost: ``c + (hi - c) / n`` with rivals and no binding reserve, the reserve
    when it bids alone, never less than its cost.  Stateless.
    """

    def ask(self, costs, providers=None, context=None):
        """Equilibrium asks given the tender's ``context`` (see the class)."""
        if context is None:
            raise ValueError("EquilibriumShading needs the tender's context: n_bidders, cost_bounds, reserve")
        c = np.asarray(costs, dtype=float)
        return np.asarray(first_price_equilibrium_bid(c, int(context["n_bidders"]), tuple(context["cost_bounds"]),
                                                      reserve=context.get("reserve")), dtype=float)


class BanditShading(BanditMarkup):
    """Shading learned by an epsilon-greedy bandit, one per provider.

    The arms are shares ``s`` of the room between cost and the highest ask
    that can still win (``context["top"]``: the reserve when the provider
    bids alone, else the least of the top of rivals' believed costs and the
    reserve); the ask is ``cost + s * (top - cost)``.  Rewarded with the
    realised margin on cost (0 when it loses), each provider's best arm moves
    towards the share that maximises its expected profit against the others:
    ``1 / n`` among ``n`` symmetric bidders with uniform costs (the
    equilibrium of :class:`EquilibriumShading`), 1 when it bids alone.
    """

    def __init__(self, n_providers: int, rng: np.random.Generator,
                 grid: np.ndarray = np.linspace(0.0, 1.0, 21), epsilon: float = 0.1,
                 step_size: float | None = None, initial_value: float = 0.0) -> None:
        super().__init__(n_providers, rng, grid=grid, epsilon=epsilon, step_size=step_size,
                         initial_value=initial_value)

    def markup(self, providers=None):
        """The share of the room each of ``providers`` played last (not a markup on cost)."""
        return super().markup(providers)

    def ask(self, costs, providers=None, context=None):
        """``cost + s * (top - cost)`` with ``s`` each provider's arm for this tender."""
        if context is None or "top" not in context:
            raise ValueError("BanditShading needs the tender's context: top (the highest ask that can win)")
        c = np.asarray(costs, dtype=float)
        return _shade(c, self.choose(providers), np.broadcast_to(np.asarray(context["top"], float), c.shape))
