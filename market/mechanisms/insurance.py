"""Cargo insurance: premiums and claim settlement, vectorised over shipments.

When a shipment is lost or damaged the loss is shared in layers:

1. the **carrier** is liable up to its liability limit (by contract or by the
   applicable convention, typically a weight-based limit such as the Montreal
   Convention's SDR per kg: ``carriers.liability_per_kg``);
2. if the owner bought cargo insurance, the **insurer** pays the remaining
   loss up to the sum insured, minus the deductible;
3. the rest stays with the cargo **owner**.

:func:`settle_claims` returns the three shares, which always sum to the loss
(the model files a lost or damaged parcel's or consignment's claims with
them); :func:`premium` prices the insurer's layer consistently: expected
insurer payout times ``(1 + loading)`` plus a fixed expense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClaimSettlement",
    "insurer_layer",
    "premium",
    "settle_claims",
]


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def insurer_layer(loss, carrier_liability_limit, deductible=0.0, sum_insured=np.inf):
    """Amount an insurer pays for a ``loss`` (insured shipments only).

    ``max(0, min(loss - carrier_pays, sum_insured) - deductible)`` with
    ``carrier_pays = min(loss, carrier_liability_limit)``.  Vectorised.
    """
    loss = _arr(loss)
    carrier = np.minimum(loss, np.maximum(_arr(carrier_liability_limit), 0.0))
    return np.maximum(np.minimum(loss - carrier, _arr(sum_insured)) - _arr(deductible), 0.0)


def premium(value, channel_risk, loading=0.25, carrier_liability_limit=0.0,
            deductible=0.0, sum_insured=None, loss_severity=1.0, expense=0.0,
            min_premium=0.0) -> np.ndarray:
    """Cargo-insurance premium in USD per shipment (vectorised).

    ``premium = max(min_premium, (1 + loading) * channel_risk * payout + expense)``
    where ``payout = insurer_layer(value * loss_severity, ...)`` is what the
    insurer would pay if the shipment suffered a loss of ``loss_severity``
    (fraction of value, 1 = total loss), ``channel_risk`` is the probability
    of such a loss on the shipping channel/lane, ``loading`` the insurer's
    safety/profit loading and ``sum_insured`` defaults to the declared value.
    With ``loading = expense = 0`` the premium is actuarially fair.
    """
    value = _arr(value)
    p = _arr(channel_risk)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("channel_risk must be a probability")
    if np.any(_arr(loading) < -1):
        raise ValueError("loading must be >= -1")
    si = value if sum_insured is None else _arr(sum_insured)
    payout = insurer_layer(value * _arr(loss_severity), carrier_liability_limit,
                           deductible, si)
    return np.maximum((1.0 + _arr(loading)) * p * payout + _arr(expense), _arr(min_premium))


@dataclass
class ClaimSettlement:
    """Who bears a loss, per shipment (USD): ``carrier + insurer + owner == loss``."""

    loss: np.ndarray
    carrier: np.ndarray
    insurer: np.ndarray
    owner: np.ndarray


def settle_claims(value, carrier_liability_limit, insured, deductible=0.0,
                  loss_fraction=1.0, sum_insured=None) -> ClaimSettlement:
    """Settle loss/damage claims for a batch of shipments.

    ``loss = value * loss_fraction`` (0 where nothing happened); the carrier
    pays ``min(loss, carrier_liability_limit)``; for ``insured`` shipments the
    insurer pays ``max(0, min(remainder, sum_insured) - deductible)`` (sum
    insured defaults to the value); the owner keeps the rest.  Money is
    conserved (owner is the residual) and every share is non-negative up to
    floating-point rounding.
    """
    value = _arr(value)
    frac = _arr(loss_fraction)
    if np.any(value < 0) or np.any((frac < 0) | (frac > 1)):
        raise ValueError("need value >= 0 and 0 <= loss_fraction <= 1")
    loss = np.broadcast_to(value * frac, np.broadcast_shapes(
        value.shape, frac.shape, np.shape(insured), np.shape(carrier_liability_limit),
        np.shape(deductible))).astype(float)
    carrier = np.minimum(loss, np.maximum(_arr(carrier_liability_limit), 0.0))
    si = value if sum_insured is None else _arr(sum_insured)
    insurer = np.where(np.asarray(insured, dtype=bool),
                       insurer_layer(loss, carrier_liability_limit, deductible, si), 0.0)
    owner = loss - carrier - insurer
    return ClaimSettlement(loss=loss, carrier=carrier, insurer=insurer, owner=owner)
