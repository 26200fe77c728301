"""Reputation of market participants (carriers, 4PLs, shippers).

:class:`ReputationBook` keeps, for every entity, Beta-reputation evidence
(Josang & Ismail 2002, "The Beta Reputation System") on several dimensions:

* ``delivery`` -- on-time (success) vs late (failure) deliveries;
* ``loss`` -- shipments delivered intact vs lost/damaged;
* ``dispute`` -- transactions without vs with a dispute;
* ``payment`` -- invoices paid on time vs late/defaulted.

Each dimension holds positive evidence ``r`` and negative evidence ``s``; its
score is the Beta posterior mean ``(r + a) / (r + s + a + b)`` with prior
``Beta(a, b)`` (default uniform: a newcomer scores 0.5).  Old evidence is
forgotten exponentially (``decay``), so reputations recover after failures.
The overall score is a weighted mean of the dimension scores, in [0, 1].
All updates are vectorised batch updates (``np.bincount``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["ReputationBook", "DIMENSIONS"]


def _broadcast(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # np.broadcast_to costs microseconds a call; evidence mostly comes a value per entity already
    return a if a.shape == shape else np.broadcast_to(a, shape)


DIMENSIONS: tuple[str, ...] = ("delivery", "loss", "dispute", "payment")
_DEFAULT_WEIGHTS = {"delivery": 0.5, "loss": 0.25, "dispute": 0.1, "payment": 0.15}


class ReputationBook:
    """Beta reputation with exponential forgetting for ``n_entities`` entities.

    Parameters
    ----------
    n_entities: number of entities (indices ``0 .. n-1``); grow with
        :meth:`add_entities`.
    half_life: evidence half-life in :meth:`decay` steps (``None``: no
        forgetting unless ``decay`` is given an explicit factor).
    prior: ``(a, b)`` Beta prior pseudo-counts.
    weights: weight of each dimension in the overall score.
    """

    def __init__(self, n_entities: int, half_life: float | None = 30.0,
                 prior: tuple[float, float] = (1.0, 1.0),
                 weights: Mapping[str, float] | None = None) -> None:
        self.dimensions = DIMENSIONS
        self._dim = {d: i for i, d in enumerate(self.dimensions)}
        w = dict(_DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(w) - set(self.dimensions)
        if unknown:
            raise ValueError(f"unknown reputation dimensions {sorted(unknown)}")
        self.weights = np.array([float(w.get(d, 0.0)) for d in self.dimensions])
        if np.any(self.weights < 0) or self.weights.sum() <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        self.prior = (float(prior[0]), float(prior[1]))
        if min(self.prior) <= 0:
            raise ValueError("prior pseudo-counts must be > 0")
        self.half_life = half_life
        self.positive = np.zeros((int(n_entities), len(self.dimensions)))
        self.negative = np.zeros((int(n_entities), len(self.dimensions)))

    @property
    def n_entities(self) -> int:
        """Number of entities with a reputation."""
        return int(self.positive.shape[0])

    def add_entities(self, k: int) -> np.ndarray:
        """Append ``k`` newcomers (prior reputation); return their indices."""
        n = self.n_entities
        pad = np.zeros((int(k), len(self.dimensions)))
        self.positive = np.vstack([self.positive, pad])
        self.negative = np.vstack([self.negative, pad.copy()])
        return np.arange(n, n + int(k))

    # -- updates --------------------------------------------------------
    def record(self, entity: np.ndarray, dimension: str | np.ndarray,
               success: np.ndarray, weight: np.ndarray | float = 1.0) -> None:
        """Add evidence in one batch.

        ``entity`` (indices, repeats allowed), ``success`` (bool) and
        ``weight`` (evidence mass, e.g. shipment value share) broadcast
        together; ``dimension`` is a name or an array of dimension indices.
        """
        e = np.atleast_1d(np.asarray(entity, dtype=np.int64))
        ok = _broadcast(np.asarray(success, dtype=bool), e.shape)
        w = _broadcast(np.asarray(weight, dtype=float), e.shape)
        if np.any(w < 0):
            raise ValueError("evidence weight must be >= 0")
        if e.size and (e.min() < 0 or e.max() >= self.n_entities):
            raise IndexError("entity index out of range")
        d = (np.full(e.shape, self._dim[dimension]) if isinstance(dimension, str)
             else _broadcast(np.asarray(dimension, dtype=np.int64), e.shape))
        flat = e * len(self.dimensions) + d
        size = self.positive.size
        self.positive += np.bincount(flat, weights=w * ok, minlength=size).reshape(
            self.positive.shape)
        self.negative += np.bincount(flat, weights=w * ~ok, minlength=size).reshape(
            self.negative.shape)

    def record_deliveries(self, entity: np.ndarray, on_time: np.ndarray,
                          lost: np.ndarray | None = None,
                          weight: np.ndarray | float = 1.0) -> None:
        """Delivery outcomes: punctuality and (optionally) loss/damage."""
        self.record(entity, "delivery", on_time, weight)
        if lost is not None:
            self.record(entity, "loss", ~np.asarray(lost, dtype=bool), weight)

    def record_disputes(self, entity: np.ndarray, disputed: np.ndarray,
                        weight: np.ndarray | float = 1.0) -> None:
        """Transactions closed with (failure) or without (success) a dispute."""
        self.record(entity, "dispute", ~np.asarray(disputed, dtype=bool), weight)

    def record_payments(self, entity: np.ndarray, paid_on_time: np.ndarray,
                        weight: np.ndarray | float = 1.0) -> None:
        """Payment history: invoices paid on time (success) or late/defaulted."""
        self.record(entity, "payment", paid_on_time, weight)

    def decay(self, steps: float = 1.0, factor: float | None = None) -> None:
        """Forget evidence: multiply all counts by ``factor`` or by
        ``0.5 ** (steps / half_life)``."""
        if factor is None:
            if self.half_life is None:
                return
            factor = 0.5 ** (steps / self.half_life)
        if not 0.0 <= factor <= 1.0:
            raise ValueError("decay factor must lie in [0, 1]")
        self.positive *= factor
        self.negative *= factor

    # -- queries --------------------------------------------------------
    def dimension_scores(self, entity: np.ndarray | None = None) -> np.ndarray:
        """Beta posterior means, shape ``(n, n_dimensions)``."""
        sl = slice(None) if entity is None else np.asarray(entity, dtype=np.int64)
        a, b = self.prior
        r, s = self.positive[sl], self.negative[sl]
        return (r + a) / (r + s + a + b)

    def score(self, entity: np.ndarray | None = None) -> np.ndarray:
        """Overall reputation in [0, 1] (weighted mean of dimension scores)."""
        return self.dimension_scores(entity) @ (self.weights / self.weights.sum())

    def evidence(self, entity: np.ndarray | None = None) -> np.ndarray:
        """Total (decayed) evidence mass per entity -- a confidence measure."""
        sl = slice(None) if entity is None else np.asarray(entity, dtype=np.int64)
        return (self.positive[sl] + self.negative[sl]).sum(axis=1)
