"""The market's structure, for ``summary.json``: how full the lanes ran, what providers earned,
who left and who came.

The figures are those ``scripts/economics.py`` recomputes from a run's output files, computed
here by the model from its own running totals and ledger, so a researcher sees them without
post-processing:

- utilisation per mode: the mean over days of the day's capacity-weighted utilisation of the
  mode's parcel lanes (the daily series' ``utilisation_<mode>`` columns);
- parcel lanes: over the run, each lane's parcels carried over its capacity; how many lanes
  carried anything, their median utilisation, the share of them in the 50-90% band and the
  share of the parcels carried on lanes in that band;
- operating margins by role: each provider's revenue (what it was paid for its services) less
  its costs (variable, fixed, penalties, claims, service credits, dispute costs, legs it bought
  from others, premiums), over its revenue, from the ledger's journal; the median over the
  role's providers with revenue, the role's margin as a whole and the share that lost money;
- exits and entries per calendar month;
- spot over contract price per mode, lane by lane: what the mode's spot legs paid for a 1 kg
  parcel over what the same legs would have paid at their lanes' mean contract prices (lanes
  that carried legs both ways; :meth:`market.metrics.recorder.Metrics.spot_over_contract`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from market.money.ledger import KIND

if TYPE_CHECKING:
    from market.model import Marketplace

# what counts as a provider's revenue and cost (the same lists as scripts/economics.py)
REVENUE = ("freight", "handling", "storage", "brokerage", "shortfall_fee", "service_fee")
COSTS = ("operating_cost", "fixed_cost", "penalty", "claim", "service_credit", "dispute_cost",
         "freight", "handling", "brokerage", "premium", "insurance_payout")
BAND = (0.5, 0.9)        # the utilisation band used lanes should mostly sit in (issue 12)


def provider_accounts(model: Marketplace) -> dict[str, list[int]]:
    """Ledger accounts of the providers and integrators, by role (every one that ever traded)."""
    out: dict[str, list[int]] = {}
    for agent in model.carriers + model.operators + model.brokers + model.integrators:
        out.setdefault(agent.role, []).append(int(agent.acct))
    return out


def revenue_and_cost(model: Marketplace) -> tuple[np.ndarray, np.ndarray]:
    """(revenue, cost) of every ledger account over the run, in cents, from the journal."""
    rev_kinds = [KIND[k] for k in REVENUE]
    cost_kinds = [KIND[k] for k in COSTS]
    # the ledger's running sums by account and kind (the journal may have gone to a file)
    revenue = model.ledger.received_by_kind()[:, rev_kinds].sum(axis=1)
    cost = model.ledger.paid_by_kind()[:, cost_kinds].sum(axis=1)
    return revenue, cost


def margins_by_role(model: Marketplace) -> dict[str, dict]:
    """Providers, median operating margin, the role's margin and the share with a loss, per role."""
    revenue, cost = revenue_and_cost(model)
    out = {}
    for role, accts in sorted(provider_accounts(model).items()):
        rev, cst = revenue[accts].astype(np.float64), cost[accts].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            margin = np.where(rev > 0, (rev - cst) / rev, np.nan)
        total = rev.sum()
        out[role] = {"providers": len(accts),
                     "median_margin": float(np.nanmedian(margin)) if np.isfinite(margin).any() else None,
                     "role_margin": float((total - cst.sum()) / total) if total > 0 else None,
                     "share_with_loss": float((rev < cst).mean())}
    return out


def by_month(model: Marketplace, event: str) -> dict[str, int]:
    """How many providers and integrators did ``event`` ("exit" or "entry") in each calendar
    month (months with none left out)."""
    start = model.config.simulation.start_date
    out: dict[str, int] = {}
    for e in model.evolution.log:
        if e["event"] == event:
            month = (start + dt.timedelta(days=e["day"])).strftime("%Y-%m")
            out[month] = out.get(month, 0) + 1
    return dict(sorted(out.items()))


def lane_utilisation(used: np.ndarray, capacity: np.ndarray, lanes: np.ndarray) -> dict:
    """Parcel lanes' utilisation over the run (``used`` and ``capacity`` summed over days, per
    resource; ``lanes`` the parcel lanes' resource ids)."""
    u, c = used[lanes], capacity[lanes]
    carried = u > 0
    util = np.divide(u, c, out=np.zeros(lanes.size), where=c > 0)[carried]
    lo, hi = BAND
    in_band = (util >= lo) & (util <= hi)
    return {"lanes": int(lanes.size), "lanes_used": int(carried.sum()),
            "median_utilisation_of_used": float(np.median(util)) if util.size else None,
            "share_of_used_in_band": float(in_band.mean()) if util.size else None,
            "share_of_parcels_on_lanes_in_band": float(u[carried][in_band].sum() / u[carried].sum()) if util.size else None,
            "band_low": lo, "band_high": hi}


def market_structure(model: Marketplace, metrics) -> dict:
    """The ``market_structure`` block of ``summary.json``."""
    util = {mode: float(metrics.util_sum[i] / metrics.util_days[i]) for i, mode in enumerate(metrics.util_modes)
            if metrics.util_days[i]}
    ratio = {}
    for i, mode in enumerate(metrics.price_modes):
        r = metrics.spot_over_contract(model.net.res_mode == i)
        if r is not None:
            ratio[mode] = r
    return {"utilisation_by_mode": util,
            "parcel_lanes": lane_utilisation(metrics.res_used, metrics.res_capacity, metrics.parcel_lanes),
            "margins_by_role": margins_by_role(model),
            "exits_by_month": by_month(model, "exit"),
            "entries_by_month": by_month(model, "entry"),
            "spot_over_contract_by_mode": ratio}
