"""Posted spot prices that rise with utilisation.

Spot freight rates rise steeply as capacity tightens (peak season, blank
sailings).  :func:`posted_spot_price` models the posted per-unit rate of a
provider as a convex function of its utilisation; the offer book posts every
offer's spot price with it each day (``OfferBook.update_spot``).  Spot units
then take the cheapest offers with spare capacity
(:func:`market.goods.allocation.allocate_capacity`), or trade in a double
auction (:mod:`market.mechanisms.double_auction`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "posted_spot_price",
]


def posted_spot_price(
    base_rate: np.ndarray | float,
    utilisation: np.ndarray | float,
    slope: float | np.ndarray = 1.0,
    convexity: float | np.ndarray = 2.0,
    cap: float | np.ndarray | None = None,
) -> np.ndarray:
    """Posted spot rate per unit rising with capacity utilisation.

    ``price = base_rate * (1 + slope * max(utilisation, 0) ** convexity)``,
    capped at ``cap`` (an absolute USD/unit ceiling, e.g. a regulatory or
    contractual cap; ``None`` for none).  With ``slope >= 0`` and
    ``convexity > 0`` the price is non-decreasing in utilisation; at 100 %
    utilisation it is ``base_rate * (1 + slope)``.  Broadcasts over all
    arguments.
    """
    slope = np.asarray(slope, dtype=float)
    convexity = np.asarray(convexity, dtype=float)
    if np.any(slope < 0) or np.any(convexity <= 0):
        raise ValueError("need slope >= 0 and convexity > 0")
    u = np.maximum(np.asarray(utilisation, dtype=float), 0.0)
    price = np.asarray(base_rate, dtype=float) * (1.0 + slope * u**convexity)
    if cap is not None:
        price = np.minimum(price, cap)
    return price
