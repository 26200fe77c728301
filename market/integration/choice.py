"""Merchant choice among logistics offers: multinomial logit (MNL) and nested logit.

Merchants (choosers) compare offers (alternatives: integrator offers, 3PLs
bought directly, do-it-yourself) on landed cost, delivery days, reliability
and tracking visibility. Preferences are heterogeneous: each merchant has
its own coefficients, drawn once with :func:`draw_preferences` (mixed logit
by simulation). Everything is vectorised over a ``(choosers, alternatives)``
array.

The nested logit (:func:`nested_logit_probabilities`) groups alternatives that are close
substitutes - e.g. the services of several 4PL integrators on one channel - into nests with a
dissimilarity parameter ``lambda`` in (0, 1]: at 1 it is the MNL; towards 0 the alternatives of
a nest act as one, so adding a copy of an alternative barely moves the nest's share (no
independence-of-irrelevant-alternatives artefact).

Sign convention: coefficients are *sensitivities* and are non-negative for
a rational merchant; :func:`utilities` applies the signs (cost and days
lower utility, reliability and visibility raise it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from market.arrays import unique_inverse

__all__ = [
    "COEFFICIENTS",
    "Preferences",
    "draw_preferences",
    "utilities",
    "apply_switching_cost",
    "mnl_probabilities",
    "nested_logit_probabilities",
    "nested_logsum",
    "logsum",
    "sample_choice",
]

COEFFICIENTS = ("cost", "time", "reliability", "visibility")


@dataclass(frozen=True)
class Preferences:
    """Per-merchant taste coefficients, each an array of shape ``(n,)``.

    ``cost``         utility lost per USD of landed cost
    ``time``         utility lost per day of delivery
    ``reliability``  utility gained per unit of on-time probability (0..1)
    ``visibility``   utility gained per unit of tracking visibility (0..1)
    """

    cost: np.ndarray
    time: np.ndarray
    reliability: np.ndarray
    visibility: np.ndarray

    def __post_init__(self):
        arrays = {f.name: np.atleast_1d(np.asarray(getattr(self, f.name), dtype=float)) for f in fields(self)}
        n = max(a.shape[0] for a in arrays.values())
        for name, a in arrays.items():
            if a.ndim != 1 or a.shape[0] not in (1, n):
                raise ValueError(f"coefficient {name!r} must have shape ({n},), got {a.shape}")
            object.__setattr__(self, name, np.broadcast_to(a, (n,)).copy())

    def __len__(self) -> int:
        return self.cost.shape[0]

    def __getitem__(self, idx) -> Preferences:
        """Preferences of a subset of merchants (index, slice or mask)."""
        return Preferences(*(np.atleast_1d(getattr(self, f.name)[idx]) for f in fields(self)))

    def willingness_to_pay(self, name: str) -> np.ndarray:
        """USD a merchant would pay per unit of attribute ``name`` (e.g. per day saved)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return getattr(self, name) / self.cost


def draw_preferences(
    n: int,
    means: Mapping[str, float],
    sds: Mapping[str, float] | None = None,
    rng: np.random.Generator | None = None,
    *,
    dist: str | Mapping[str, str] = "lognormal",
) -> Preferences:
    """Draw ``n`` merchants' coefficients.

    ``means`` and ``sds`` give each coefficient's population mean and standard
    deviation (of the coefficient itself, not of its log); missing names are
    0. ``dist`` is ``"lognormal"`` (default: keeps sensitivities positive),
    ``"normal"`` or ``"fixed"``, for all coefficients or per name.
    """
    unknown = (set(means) | set(sds or {})) - set(COEFFICIENTS)
    if unknown:
        raise ValueError(f"unknown coefficients {sorted(unknown)}; known: {COEFFICIENTS}")
    if rng is None:
        raise ValueError("pass a numpy Generator so draws are reproducible")
    sds = sds or {}
    out = {}
    for name in COEFFICIENTS:
        mean = float(means.get(name, 0.0))
        sd = float(sds.get(name, 0.0))
        kind = dist if isinstance(dist, str) else dist.get(name, "lognormal")
        if sd < 0:
            raise ValueError(f"sd of {name!r} must be >= 0")
        if kind == "fixed" or sd == 0.0:
            out[name] = np.full(n, mean)
        elif kind == "normal":
            out[name] = rng.normal(mean, sd, size=n)
        elif kind == "lognormal":
            if mean <= 0:
                raise ValueError(f"lognormal {name!r} needs a positive mean, got {mean}")
            # moments of the coefficient -> parameters of its log
            sigma2 = np.log1p((sd / mean) ** 2)
            out[name] = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), size=n)
        else:
            raise ValueError(f"unknown distribution {kind!r}")
    return Preferences(**out)


def _coef(beta: Preferences | Mapping[str, object], name: str) -> np.ndarray:
    value = getattr(beta, name) if isinstance(beta, Preferences) else beta.get(name, 0.0)
    # (n,) -> (n, 1) so it broadcasts over alternatives
    return np.asarray(value, dtype=float).reshape(-1, 1)


def apply_switching_cost(U: np.ndarray, current, penalty) -> np.ndarray:
    """Subtract ``penalty`` (utility units) from every alternative except the current one.

    ``current`` is each chooser's current alternative index, ``-1`` for a
    chooser without one (who pays nothing: everything is new to them).
    """
    U = np.array(U, dtype=float, ndmin=2)
    n, J = U.shape
    current = np.broadcast_to(np.asarray(current, dtype=int), (n,))
    if np.any(current >= J):
        raise ValueError("current alternative index out of range")
    penalty = np.broadcast_to(np.asarray(penalty, dtype=float), (n,))
    is_other = np.arange(J)[None, :] != current[:, None]
    has_current = (current >= 0)[:, None]
    return U - np.where(is_other & has_current, penalty[:, None], 0.0)


def utilities(
    landed_cost,
    delivery_days,
    reliability,
    visibility,
    beta: Preferences | Mapping[str, object],
    *,
    asc=None,
    current=None,
    switching_cost=0.0,
) -> np.ndarray:
    """Systematic utilities, shape ``(choosers, alternatives)``.

    ``U = -b_cost*landed_cost - b_time*delivery_days + b_rel*reliability
    + b_vis*visibility + asc``. Attributes are ``(J,)`` (same offers for all)
    or ``(n, J)`` (merchant-specific quotes); coefficients are ``(n,)`` arrays
    or scalars. ``switching_cost`` is in USD (per chooser or scalar), turned
    into utility with each merchant's cost coefficient and charged on every
    alternative other than ``current`` (index per chooser, -1 for none).
    """
    U = (
        -_coef(beta, "cost") * np.asarray(landed_cost, dtype=float)
        - _coef(beta, "time") * np.asarray(delivery_days, dtype=float)
        + _coef(beta, "reliability") * np.asarray(reliability, dtype=float)
        + _coef(beta, "visibility") * np.asarray(visibility, dtype=float)
    )
    if asc is not None:
        U = U + np.asarray(asc, dtype=float)
    U = np.array(U, ndmin=2)
    if current is not None:
        usd = np.broadcast_to(np.asarray(switching_cost, dtype=float), (U.shape[0],))
        U = apply_switching_cost(U, current, usd * _coef(beta, "cost")[:, 0])
    return U


def _masked(U, available):
    U = np.asarray(U, dtype=float)
    if available is None:
        return U
    available = np.broadcast_to(np.asarray(available, dtype=bool), U.shape)
    return np.where(available, U, -np.inf)


def mnl_probabilities(U, available=None) -> np.ndarray:
    """Logit choice probabilities over the last axis.

    Stable for any magnitude (the row maximum is subtracted before ``exp``).
    ``available`` (bool, broadcastable) marks alternatives a chooser can
    pick; unavailable ones, and ones with utility ``-inf``, get probability 0.
    A row with nothing available is all zeros.
    """
    V = _masked(U, available)
    top = np.max(V, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    E = np.exp(V - top)
    total = E.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, E / np.where(total > 0, total, 1.0), 0.0)


def _nest_parts(U, nests, lambdas, available):
    """Within-nest shares, nest inclusive values, the nests' lambdas and each alternative's
    nest (index into the nests present) of a nested logit, vectorised over choosers."""
    V = np.array(_masked(U, available), dtype=float, ndmin=2)
    nests = np.asarray(nests, dtype=np.int64)
    if nests.shape != (V.shape[1],):
        raise ValueError(f"nests must give one nest id per alternative ({V.shape[1]}), got shape {nests.shape}")
    ids, inv = unique_inverse(nests)
    lam = np.broadcast_to(np.asarray(lambdas, dtype=float), (ids.size,)) if np.ndim(lambdas) == 0 \
        else np.asarray(lambdas, dtype=float)[ids]
    if lam.shape != (ids.size,) or np.any(lam <= 0) or np.any(lam > 1):
        raise ValueError("each nest needs a dissimilarity parameter in (0, 1]")
    scaled = V / lam[inv][None, :]
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, inv[order][1:] != inv[order][:-1]])
    top = np.maximum.reduceat(scaled[:, order], starts, axis=1)          # (n, K) per-nest maximum
    top = np.where(np.isfinite(top), top, 0.0)
    E = np.exp(scaled - top[:, inv])                                     # 0 where unavailable
    total = np.add.reduceat(E[:, order], starts, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iv = np.where(total > 0, top + np.log(np.where(total > 0, total, 1.0)), -np.inf)
        within = np.where(total[:, inv] > 0, E / np.where(total > 0, total, 1.0)[:, inv], 0.0)
    return within, iv, lam, inv


def nested_logit_probabilities(U, nests, lambdas, available=None) -> np.ndarray:
    """Two-level nested logit choice probabilities over the last axis.

    ``nests`` gives each alternative's nest id; ``lambdas`` each nest's dissimilarity parameter
    in (0, 1] (a scalar for all nests, or an array indexed by nest id). With ``I_k`` the log of
    the sum of ``exp(U_j / lambda_k)`` over the nest, ``P(j) = P(j | k) P(k)`` with
    ``P(j | k) = exp(U_j / lambda_k - I_k)`` and ``P(k)`` the logit of ``lambda_k I_k`` over
    nests. All lambdas 1 give the MNL. Unavailable alternatives (or utility ``-inf``) get 0;
    a row with nothing available is all zeros.
    """
    within, iv, lam, inv = _nest_parts(U, nests, lambdas, available)
    top = mnl_probabilities(lam[None, :] * iv)
    out = within * top[:, inv]
    return out if np.ndim(U) > 1 else out[0]


def nested_logsum(U, nests, lambdas, available=None) -> np.ndarray:
    """Expected maximum utility of a nested logit: ``log sum_k exp(lambda_k I_k)``."""
    _, iv, lam, _ = _nest_parts(U, nests, lambdas, available)
    out = logsum(lam[None, :] * iv)
    return out if np.ndim(U) > 1 else out[0]


def logsum(U, available=None) -> np.ndarray:
    """Expected maximum utility ``log(sum(exp(U)))`` per chooser (``-inf`` if nothing available).

    Divided by the cost coefficient it is the merchant's consumer surplus in
    USD, up to a constant: the welfare measure for comparing market designs.
    """
    V = _masked(U, available)
    top = np.max(V, axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(np.exp(V - safe[..., None]).sum(axis=-1)), -np.inf)


def sample_choice(probs, rng: np.random.Generator) -> np.ndarray:
    """Draw one alternative per chooser: one uniform each, inverted on cumulative sums.

    Returns alternative indices (int), ``-1`` for choosers whose row is all
    zero. Alternatives with probability 0 are never drawn.
    """
    P = np.array(probs, dtype=float, ndmin=2)
    cum = np.cumsum(P, axis=1)
    total = cum[:, -1]
    # 1 - U lies in (0, 1]: the draw can never land on a leading zero-probability alternative
    x = (1.0 - rng.random(P.shape[0])) * total
    idx = (cum < x[:, None]).sum(axis=1)
    idx = np.minimum(idx, P.shape[1] - 1)
    return np.where(total > 0, idx, -1)
