"""Combinatorial (package) reverse auction over several lanes.

Providers bid on *packages*: a bid offers a bundle of lane quantities (e.g.
"20 units Shenzhen->LAX and 10 units Shenzhen->ORD") for one total price.
Economies of scope (shared line-haul, consolidation, backhauls) make package
prices sub-additive, which single-lane tenders cannot express.  The buyer
chooses the set of bids that covers the demand of every lane at minimum total
price -- the weighted set-partitioning (``cover="exact"``) or set-covering
(``cover="at_least"``) problem -- solved exactly with ``scipy.optimize.milp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = [
    "PackageBids",
    "PackageAward",
    "solve_package_auction",
    "brute_force_package_auction",
]


@dataclass
class PackageBids:
    """Package bids.

    bidder: provider id of each bid, shape ``(n_bids,)``.
    quantity: units of every lane covered by each bid, ``(n_bids, n_lanes)``.
    price: total USD asked for each package, ``(n_bids,)``.
    """

    bidder: np.ndarray
    quantity: np.ndarray
    price: np.ndarray

    def __post_init__(self) -> None:
        self.bidder = np.atleast_1d(np.asarray(self.bidder, dtype=np.int64))
        self.price = np.atleast_1d(np.asarray(self.price, dtype=float))
        self.quantity = np.asarray(self.quantity, dtype=float)
        if self.quantity.ndim == 1:
            self.quantity = self.quantity[:, None]
        n = self.price.shape[0]
        if self.bidder.shape != (n,) or self.quantity.ndim != 2 or self.quantity.shape[0] != n:
            raise ValueError(
                "PackageBids: bidder and price need shape (n_bids,), "
                "quantity (n_bids, n_lanes)"
            )
        if np.any(self.quantity < 0) or not np.all(np.isfinite(self.quantity)):
            raise ValueError("package quantities must be finite and >= 0")
        if not np.all(np.isfinite(self.price)):
            raise ValueError("package prices must be finite")

    @property
    def n_bids(self) -> int:
        """Number of package bids."""
        return int(self.price.shape[0])

    @property
    def n_lanes(self) -> int:
        """Number of lanes the packages are over."""
        return int(self.quantity.shape[1])


@dataclass
class PackageAward:
    """Outcome of a package auction.

    selected: boolean mask of winning bids.
    winners: indices of winning bids.
    total_cost: sum of the winning package prices (USD); ``inf`` if infeasible.
    coverage: units covered per lane by the winning bids.
    feasible: whether the demand could be covered under the rules.
    """

    selected: np.ndarray
    winners: np.ndarray
    total_cost: float
    coverage: np.ndarray
    feasible: bool


def _check(bids: PackageBids, demand_per_lane: np.ndarray, cover: str) -> np.ndarray:
    d = np.asarray(demand_per_lane, dtype=float).ravel()
    if d.size != bids.n_lanes:
        raise ValueError(f"demand has {d.size} lanes, bids have {bids.n_lanes}")
    if cover not in ("exact", "at_least"):
        raise ValueError(f"cover must be 'exact' or 'at_least', not {cover!r}")
    return d


def _infeasible(bids: PackageBids) -> PackageAward:
    return PackageAward(
        selected=np.zeros(bids.n_bids, dtype=bool),
        winners=np.zeros(0, dtype=np.int64), total_cost=float("inf"),
        coverage=np.zeros(bids.n_lanes), feasible=False,
    )


def _award(bids: PackageBids, selected: np.ndarray) -> PackageAward:
    return PackageAward(
        selected=selected, winners=np.flatnonzero(selected),
        total_cost=float(bids.price[selected].sum()),
        coverage=bids.quantity[selected].sum(axis=0), feasible=True,
    )


def solve_package_auction(
    bids: PackageBids,
    demand_per_lane: np.ndarray,
    xor: bool = True,
    cover: Literal["exact", "at_least"] = "exact",
) -> PackageAward:
    """Winner determination of a combinatorial reverse auction (exact MILP).

    Minimise ``sum(price_j x_j)`` over binary ``x`` subject to, for every lane
    ``l``, ``sum_j quantity[j, l] x_j == demand[l]`` (``cover="exact"``, set
    partitioning) or ``>= demand[l]`` (``cover="at_least"``, set covering),
    and -- with ``xor=True`` -- at most one accepted bid per provider (XOR
    bidding language; otherwise bids are OR-ed).  Solved with
    ``scipy.optimize.milp`` (HiGHS, branch and cut); returns an infeasible
    award (``feasible=False``, ``total_cost=inf``) when no selection covers the
    demand.
    """
    d = _check(bids, demand_per_lane, cover)
    n = bids.n_bids
    if n == 0:
        return _award(bids, np.zeros(0, dtype=bool)) if np.all(d <= 0) else _infeasible(bids)

    a = sparse.csr_matrix(bids.quantity.T)
    ub = d if cover == "exact" else np.full(d.size, np.inf)
    constraints = [LinearConstraint(a, d, ub)]
    if xor:
        _, inv = np.unique(bids.bidder, return_inverse=True)
        n_prov = int(inv.max()) + 1
        if n_prov < n:
            g = sparse.csr_matrix((np.ones(n), (inv, np.arange(n))), shape=(n_prov, n))
            constraints.append(LinearConstraint(g, 0, 1))
    res = milp(
        bids.price, integrality=np.ones(n), bounds=Bounds(0, 1),
        constraints=constraints, options={"mip_rel_gap": 1e-9},
    )
    if res.status == 2:  # infeasible
        return _infeasible(bids)
    if not res.success:
        raise RuntimeError(f"package MILP failed: {res.message}")
    return _award(bids, res.x > 0.5)


def brute_force_package_auction(
    bids: PackageBids,
    demand_per_lane: np.ndarray,
    xor: bool = True,
    cover: Literal["exact", "at_least"] = "exact",
    tol: float = 1e-9,
) -> PackageAward:
    """Exhaustive winner determination (all ``2**n_bids`` subsets).

    Reference implementation for tests on small instances (``n_bids <= 20``);
    same semantics as :func:`solve_package_auction`.  Ties go to the subset
    that comes first in binary enumeration order.
    """
    d = _check(bids, demand_per_lane, cover)
    n = bids.n_bids
    if n > 20:
        raise ValueError("brute force is limited to 20 bids")
    if n == 0:
        return _award(bids, np.zeros(0, dtype=bool)) if np.all(d <= 0) else _infeasible(bids)
    subsets = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
    cov = subsets.astype(float) @ bids.quantity
    ok = (np.all(np.abs(cov - d) <= tol, axis=1) if cover == "exact"
          else np.all(cov >= d - tol, axis=1))
    if xor:
        _, inv = np.unique(bids.bidder, return_inverse=True)
        per_bidder = subsets.astype(np.int64) @ np.eye(inv.max() + 1, dtype=np.int64)[inv]
        ok &= np.all(per_bidder <= 1, axis=1)
    if not ok.any():
        return _infeasible(bids)
    cost = np.where(ok, subsets.astype(float) @ bids.price, np.inf)
    return _award(bids, subsets[int(np.argmin(cost))])
