"""Market concentration of the logistics marketplace.

Herfindahl-Hirschman index (HHI) of firms' shares of parcel volume (or
revenue), overall and per market segment (lane, destination country,
service level...). Vectorised: per-segment shares come from one
``bincount`` over ``(segment, firm)`` pairs, so they can be computed from a
simulation's shipment log each step.

Scales: ``hhi`` is on the 0..10,000 "points" scale of antitrust practice by
default (``scale=1`` for 0..1). :func:`normalized_hhi` rescales to 0..1
between N equal firms and a monopoly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "market_shares",
    "hhi",
    "normalized_hhi",
    "concentration_ratio",
    "shares_by_segment",
    "hhi_by_segment",
    "volume_weighted_hhi",
]

HHI_POINTS = 10_000.0


def _volumes(x, axis=-1) -> np.ndarray:
    v = np.asarray(x, dtype=float)
    if np.any(v < 0) or np.any(np.isnan(v)):
        raise ValueError("volumes must be non-negative numbers")
    return v


def market_shares(volumes_by_firm, axis: int = -1):
    """Each firm's share of total volume.

    A mapping ``{firm: volume}`` gives ``{firm: share}``; an array gives an
    array of shares along ``axis``. A market with no volume has NaN shares.
    """
    if isinstance(volumes_by_firm, Mapping):
        firms = list(volumes_by_firm)
        shares = market_shares(np.array([volumes_by_firm[f] for f in firms], dtype=float))
        return dict(zip(firms, shares.tolist()))
    v = _volumes(volumes_by_firm)
    total = v.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / np.where(total > 0, total, 1.0), np.nan)


def hhi(shares_or_volumes, *, scale: float = HHI_POINTS, axis: int = -1):
    """Herfindahl-Hirschman index: sum of squared market shares x ``scale``.

    Accepts shares or raw volumes (they are normalised first, so both give
    the same answer) as an array or a ``{firm: volume}`` mapping; 2-D arrays
    give one index per row. 10,000 is a monopoly, 10,000/N for N equal firms.
    NaN for a market with no volume.
    """
    if isinstance(shares_or_volumes, Mapping):
        shares_or_volumes = list(shares_or_volumes.values())
    s = market_shares(shares_or_volumes, axis=axis)
    out = scale * np.sum(s**2, axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def normalized_hhi(shares_or_volumes, n_firms: int | None = None, *, axis: int = -1):
    """HHI rescaled to 0 (N equal firms) .. 1 (monopoly): ``(H - 1/N) / (1 - 1/N)``.

    ``N`` defaults to the number of firms listed (including firms with zero
    volume, which are in the market but sell nothing). With one firm it is 1.
    """
    if isinstance(shares_or_volumes, Mapping):
        shares_or_volumes = list(shares_or_volumes.values())
    v = np.asarray(shares_or_volumes, dtype=float)
    n = v.shape[axis] if n_firms is None else int(n_firms)
    h = np.asarray(hhi(v, scale=1.0, axis=axis))
    out = np.ones_like(h) if n <= 1 else (h - 1.0 / n) / (1.0 - 1.0 / n)
    return float(out) if np.ndim(out) == 0 else out


def concentration_ratio(shares_or_volumes, k: int = 4, *, axis: int = -1):
    """CR-k: combined share of the ``k`` largest firms (0..1)."""
    s = np.sort(market_shares(shares_or_volumes, axis=axis), axis=axis)
    s = np.flip(s, axis=axis)
    out = np.take(s, np.arange(min(k, s.shape[axis])), axis=axis).sum(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def _codes(ids, name) -> np.ndarray:
    a = np.asarray(ids)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(
            f"{name} must be integer codes 0..K-1; factorise labels first, e.g. "
            "labels, codes = np.unique(ids, return_inverse=True)"
        )
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must be non-negative")
    return a.ravel()


def shares_by_segment(
    segment_ids,
    firm_ids,
    volumes=None,
    *,
    n_segments: int | None = None,
    n_firms: int | None = None,
) -> np.ndarray:
    """Firm shares within each segment, shape ``(n_segments, n_firms)``.

    One record per shipment (or per aggregated row): its segment code, the
    firm that carried it and its volume (default 1 = count shipments).
    Segments without volume get NaN rows.
    """
    seg = _codes(segment_ids, "segment_ids")
    firm = _codes(firm_ids, "firm_ids")
    if seg.shape != firm.shape:
        raise ValueError("segment_ids and firm_ids must have the same length")
    w = None if volumes is None else _volumes(volumes).ravel()
    S = int(n_segments if n_segments is not None else (seg.max() + 1 if seg.size else 0))
    F = int(n_firms if n_firms is not None else (firm.max() + 1 if firm.size else 0))
    if seg.size and (seg.max() >= S or firm.max() >= F):
        raise ValueError("ids exceed n_segments / n_firms")
    # one flat bincount over (segment, firm) cells
    table = np.bincount(seg * F + firm, weights=w, minlength=S * F).reshape(S, F)
    return market_shares(table, axis=1)


def hhi_by_segment(
    segment_ids,
    firm_ids,
    volumes=None,
    *,
    n_segments: int | None = None,
    n_firms: int | None = None,
    scale: float = HHI_POINTS,
) -> np.ndarray:
    """HHI of each segment, shape ``(n_segments,)``; NaN where a segment has no volume."""
    s = shares_by_segment(segment_ids, firm_ids, volumes, n_segments=n_segments, n_firms=n_firms)
    return scale * np.sum(s**2, axis=1)


def volume_weighted_hhi(segment_ids, firm_ids, volumes=None, *, scale: float = HHI_POINTS) -> float:
    """Average of segment HHIs weighted by segment volume (segments without volume skipped)."""
    seg = _codes(segment_ids, "segment_ids")
    w = None if volumes is None else _volumes(volumes).ravel()
    seg_volume = np.bincount(seg, weights=w)
    h = hhi_by_segment(segment_ids, firm_ids, volumes, n_segments=seg_volume.size, scale=scale)
    keep = seg_volume > 0
    return float(np.average(h[keep], weights=seg_volume[keep])) if keep.any() else float("nan")
