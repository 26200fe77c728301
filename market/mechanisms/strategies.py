"""Provider bidding strategies, vectorised over many providers.

One strategy object holds state arrays for ``n_providers`` providers, so a
single object can price for every carrier in the model at once.  The
interface is

* ``ask(costs, providers=None, context=None) -> prices``: asks for the
  providers ``providers`` (indices, default all) whose unit costs are
  ``costs`` (shape ``(k,)`` or ``(k, n_lanes)``);
* ``observe(won, utilisation=None, providers=None, profit=None)``: feedback
  after the tender/spot round (whether each provider won, its capacity
  utilisation and realised profit).

Prices are ``cost * (1 + markup)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BiddingStrategy",
    "Truthful",
    "CostPlus",
    "AdaptiveMarkup",
    "BanditMarkup",
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
        self.values = np.full((n_providers, self.grid.size), float(initial_value))
        self.counts = np.zeros((n_providers, self.grid.size), dtype=np.int64)
        self.last_arm = np.argmax(self.values, axis=1)

    def markup(self, providers=None):
        """The markup of the arm each of ``providers`` played last."""
        return self.grid[self.last_arm[_idx(providers, self.n_providers)]]

    def ask(self, costs, providers=None, context=None):
        """Pick an arm per provider (explore with probability ``epsilon``) and ask cost times
        one plus its markup."""
        c = np.asarray(costs, dtype=float)
        idx = _idx(providers, self.n_providers)
        explore = self.rng.random(idx.size) < self.epsilon
        random_arm = self.rng.integers(0, self.grid.size, idx.size)
        greedy = np.argmax(self.values[idx], axis=1)
        self.last_arm[idx] = np.where(explore, random_arm, greedy)
        return _apply(c, self.grid[self.last_arm[idx]])

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
