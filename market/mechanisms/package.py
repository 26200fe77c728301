"""Combinatorial (package) reverse auction over several lanes.

Providers bid on *packages*: a bid offers a bundle of lane quantities (e.g.
"20 units Shanghai->LAX and 10 units US->Shanghai") for one total price.
Economies of scope (shared line-haul, consolidation, backhauls) make package
prices sub-additive, which single-lane tenders cannot express.  The buyer
chooses the set of bids that covers the demand of every lane at minimum total
price -- the weighted set-partitioning (``cover="exact"``) or set-covering
(``cover="at_least"``) problem -- solved exactly with ``scipy.optimize.milp``.
Bids are all-or-nothing unless marked divisible (a divisible bid may be taken
in part, its quantities and price scaled alike); a taken bid is awarded
exactly the quantities the solution gives it.

:func:`backhaul_bundles` is a carrier's economy of scope: lanes it serves in
both directions between two places share the repositioning a one-way lane
runs empty.
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
    "backhaul_bundles",
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
    total_cost: sum of the winning package prices (USD), each times the share
        of it taken; ``inf`` if infeasible.
    coverage: units covered per lane by the winning bids.
    feasible: whether the demand could be covered under the rules.
    fraction: share of each bid taken (1 for a winning all-or-nothing bid,
        0 for a loser, in between for a divisible bid taken in part).
    """

    selected: np.ndarray
    winners: np.ndarray
    total_cost: float
    coverage: np.ndarray
    feasible: bool
    fraction: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.fraction is None:
            self.fraction = self.selected.astype(float)


def _check(bids: PackageBids, demand_per_lane: np.ndarray, cover: str) -> np.ndarray:
    d = np.asarray(demand_per_lane, dtype=float).ravel()
    if d.size != bids.n_lanes:
        raise ValueError(f"demand has {d.size} lanes, bids have {bids.n_lanes}")
    if cover not in ("exact", "at_least"):
        raise ValueError(f"cover must be 'exact' or 'at_least', not {cover!r}")
    return d


def _exclusion(bids: PackageBids, xor: bool | str) -> sparse.csr_matrix | None:
    """Rows of bids that may not be taken together (sum of their shares <= 1): one row per
    bidder (``xor=True``) or per bidder and lane it bids on (``xor="lane"``)."""
    n = bids.n_bids
    if xor is False:
        return None
    _, inv = np.unique(bids.bidder, return_inverse=True)
    if xor is True:
        n_prov = int(inv.max()) + 1
        if n_prov == n:
            return None
        return sparse.csr_matrix((np.ones(n), (inv, np.arange(n))), shape=(n_prov, n))
    if xor != "lane":
        raise ValueError(f"xor must be True, False or 'lane', not {xor!r}")
    j, lane = np.nonzero(bids.quantity > 0)
    key = inv[j] * bids.n_lanes + lane
    groups, row = np.unique(key, return_inverse=True)
    if np.bincount(row).max(initial=0) <= 1:
        return None
    return sparse.csr_matrix((np.ones(j.size), (row, j)), shape=(groups.size, n))


def _infeasible(bids: PackageBids) -> PackageAward:
    return PackageAward(
        selected=np.zeros(bids.n_bids, dtype=bool),
        winners=np.zeros(0, dtype=np.int64), total_cost=float("inf"),
        coverage=np.zeros(bids.n_lanes), feasible=False,
    )


def _award(bids: PackageBids, fraction: np.ndarray) -> PackageAward:
    x = np.asarray(fraction, dtype=float)
    selected = x > 0
    return PackageAward(
        selected=selected, winners=np.flatnonzero(selected),
        total_cost=float(bids.price @ x) if x.size else 0.0,
        coverage=x @ bids.quantity if x.size else np.zeros(bids.n_lanes), feasible=True,
        fraction=x,
    )


def solve_package_auction(
    bids: PackageBids,
    demand_per_lane: np.ndarray,
    xor: bool | str = True,
    cover: Literal["exact", "at_least"] = "exact",
    divisible: np.ndarray | None = None,
) -> PackageAward:
    """Winner determination of a combinatorial reverse auction (exact MILP).

    Minimise ``sum(price_j x_j)`` subject to, for every lane ``l``,
    ``sum_j quantity[j, l] x_j == demand[l]`` (``cover="exact"``, set
    partitioning) or ``>= demand[l]`` (``cover="at_least"``, set covering),
    where ``x_j`` is binary for an all-or-nothing bid and in ``[0, 1]`` for a
    ``divisible`` one.  Bids a bidder may not win together: with
    ``xor=True`` at most one accepted bid per provider (XOR bidding
    language); with ``xor="lane"`` a provider's accepted bids may not
    overlap on any lane (its single-lane bids may all win, but not together
    with a package that contains their lanes); with ``xor=False`` bids are
    OR-ed.  Solved with ``scipy.optimize.milp`` (HiGHS, branch and cut);
    returns an infeasible award (``feasible=False``, ``total_cost=inf``)
    when no selection covers the demand.
    """
    d = _check(bids, demand_per_lane, cover)
    n = bids.n_bids
    div = np.zeros(n, dtype=bool) if divisible is None else np.asarray(divisible, dtype=bool).ravel()
    if div.size != n:
        raise ValueError(f"divisible has {div.size} entries, there are {n} bids")
    if n == 0:
        return _award(bids, np.zeros(0, dtype=bool)) if np.all(d <= 0) else _infeasible(bids)

    a = sparse.csr_matrix(bids.quantity.T)
    ub = d if cover == "exact" else np.full(d.size, np.inf)
    constraints = [LinearConstraint(a, d, ub)]
    groups = _exclusion(bids, xor)
    if groups is not None:
        constraints.append(LinearConstraint(groups, 0, 1))
    res = milp(
        bids.price, integrality=(~div).astype(float), bounds=Bounds(0, 1),
        constraints=constraints, options={"mip_rel_gap": 1e-9},
    )
    if res.status == 2:  # infeasible
        return _infeasible(bids)
    if not res.success:
        raise RuntimeError(f"package MILP failed: {res.message}")
    x = np.clip(res.x, 0.0, 1.0)
    x[~div] = np.round(x[~div])
    x[x < 1e-9] = 0.0
    return _award(bids, x)


def backhaul_bundles(mode: np.ndarray, origin: np.ndarray, destination: np.ndarray,
                     quantity: np.ndarray, unit_cost: np.ndarray,
                     empty_share: float) -> list[tuple[np.ndarray, float]]:
    """A carrier's bundles of lanes in both directions between two places, each with the
    cost it saves by serving them together.

    A vehicle (or aircraft) on a one-way lane returns empty: a share
    ``empty_share`` of a lane's unit cost pays for that repositioning.  A
    carrier that also carries volume the other way fills the return: on the
    matched volume ``min(Q_AB, Q_BA)`` neither direction runs empty, and it
    saves ``empty_share x matched x (cost_AB + cost_BA)``, with ``cost_AB``
    the volume-weighted unit cost of its lanes from ``A`` to ``B`` (in the
    same ``mode``).  Lanes within one place (``origin == destination``) or
    of no place (negative codes) have no backhaul.

    Returns, for every unordered pair of places served both ways, the indices
    of the lanes in the bundle and the saving (USD per day of volume); lanes
    without a reverse partner are in no bundle.
    """
    mode = np.asarray(mode)
    o, t = np.asarray(origin), np.asarray(destination)
    q, c = np.asarray(quantity, dtype=float), np.asarray(unit_cost, dtype=float)
    if not (mode.shape == o.shape == t.shape == q.shape == c.shape):
        raise ValueError("mode, origin, destination, quantity and unit_cost need one entry per lane")
    if not 0.0 <= empty_share <= 1.0:
        raise ValueError("empty_share must lie in [0, 1]")
    out = []
    directed = (o >= 0) & (t >= 0) & (o != t) & (q > 0)
    keys = {(int(mode[i]), int(o[i]), int(t[i])) for i in np.flatnonzero(directed)}
    for m, a, b in sorted(keys):
        if a > b or (m, b, a) not in keys:
            continue
        ab = np.flatnonzero(directed & (mode == m) & (o == a) & (t == b))
        ba = np.flatnonzero(directed & (mode == m) & (o == b) & (t == a))
        q_ab, q_ba = q[ab].sum(), q[ba].sum()
        cost_ab, cost_ba = (q[ab] @ c[ab]) / q_ab, (q[ba] @ c[ba]) / q_ba
        saving = empty_share * min(q_ab, q_ba) * (cost_ab + cost_ba)
        if saving > 0:
            out.append((np.concatenate([ab, ba]), float(saving)))
    return out
