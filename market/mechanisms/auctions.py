"""Procurement tenders and single-lane reverse auctions.

A shipper (or the 4PL acting for it) tenders ``demand`` units of a lane;
providers (carriers, forwarders, 3PLs) answer with sealed bids: a per-unit
price, the capacity they offer and their service attributes.  The functions
here turn bids into an allocation and payments.  Everything is plain numpy
data; money is float USD.

Contents
--------
* :class:`TenderBids`, :class:`ScoreRule`, :func:`award_tender` -- multi-unit
  scoring tender with winner-count limits, solved exactly with
  ``scipy.optimize.milp`` (HiGHS), first-price or VCG payments.
* :func:`descending_clock_auction` -- an English (descending) clock.
* :func:`first_price_equilibrium_bid` -- symmetric Bayes-Nash equilibrium
  bid of a first-price reverse auction with independent private costs and a
  reserve price (how providers shade their asks in pay-as-bid tenders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
from scipy import integrate, sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = [
    "TenderBids",
    "ScoreRule",
    "TenderAward",
    "award_tender",
    "ClockAuctionResult",
    "descending_clock_auction",
    "first_price_equilibrium_bid",
]

_MILP_OPTIONS = {"mip_rel_gap": 1e-9, "presolve": True}
_QTY_TOL = 1e-9


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
@dataclass
class TenderBids:
    """Sealed bids received in one tender (one row per bid).

    Attributes
    ----------
    bidder:
        Integer provider id of each bid.  A provider may submit several bids
        (e.g. price tiers); for VCG payments all bids of a provider are
        removed together.
    price:
        Per-unit ask in USD.
    capacity:
        Units the bid offers (upper bound on the quantity it can be awarded).
    reliability:
        Promised/estimated on-time probability in [0, 1] (default 1).
    reputation:
        Reputation score in [0, 1] (default 1), e.g. from
        :class:`market.mechanisms.reputation.ReputationBook`.
    incumbent:
        Whether the bidder currently serves the lane (default False).
    """

    bidder: np.ndarray
    price: np.ndarray
    capacity: np.ndarray
    reliability: np.ndarray | None = None
    reputation: np.ndarray | None = None
    incumbent: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.price = np.atleast_1d(np.asarray(self.price, dtype=float))
        n = self.price.shape[0]
        self.bidder = np.atleast_1d(np.asarray(self.bidder, dtype=np.int64))
        self.capacity = np.atleast_1d(np.asarray(self.capacity, dtype=float))
        self.reliability = (
            np.ones(n) if self.reliability is None
            else np.atleast_1d(np.asarray(self.reliability, dtype=float))
        )
        self.reputation = (
            np.ones(n) if self.reputation is None
            else np.atleast_1d(np.asarray(self.reputation, dtype=float))
        )
        self.incumbent = (
            np.zeros(n, dtype=bool) if self.incumbent is None
            else np.atleast_1d(np.asarray(self.incumbent, dtype=bool))
        )
        arrays = {
            "bidder": self.bidder, "price": self.price, "capacity": self.capacity,
            "reliability": self.reliability, "reputation": self.reputation,
            "incumbent": self.incumbent,
        }
        for name, arr in arrays.items():
            if arr.ndim != 1:
                raise ValueError(f"TenderBids.{name} must be one-dimensional")
            if arr.shape[0] != n:
                raise ValueError(
                    f"TenderBids arrays must have equal lengths: price has {n}, "
                    f"{name} has {arr.shape[0]}"
                )
        if np.any(~np.isfinite(self.price)):
            raise ValueError("TenderBids.price must be finite")
        if np.any(self.capacity < 0) or np.any(~np.isfinite(self.capacity)):
            raise ValueError("TenderBids.capacity must be finite and >= 0")
        for name in ("reliability", "reputation"):
            a = arrays[name]
            if np.any((a < 0) | (a > 1)):
                raise ValueError(f"TenderBids.{name} must lie in [0, 1]")

    def __len__(self) -> int:
        return int(self.price.shape[0])

    def subset(self, index: np.ndarray) -> "TenderBids":
        """Return the bids selected by ``index`` (boolean mask or indices)."""
        return TenderBids(
            bidder=self.bidder[index], price=self.price[index],
            capacity=self.capacity[index], reliability=self.reliability[index],
            reputation=self.reputation[index], incumbent=self.incumbent[index],
        )


@dataclass(frozen=True)
class ScoreRule:
    """Scoring rule turning a bid into a per-unit *score* (lower is better).

    ``score = price * factor`` with::

        factor = (1 + w_reliability * (1 - reliability)
                    + w_reputation  * (1 - reputation))
                 * (1 - incumbent_discount * incumbent)

    A perfectly reliable, fully reputable non-incumbent has ``factor == 1`` so
    its score equals its price.  ``w_reliability = 1`` means a bid with 90 %
    on-time probability is treated as if it were 10 % more expensive; the
    incumbent discount models switching costs (a new provider needs
    onboarding).  Scores are "score-equivalent USD per unit".
    """

    w_reliability: float = 1.0
    w_reputation: float = 0.5
    incumbent_discount: float = 0.0

    def __post_init__(self) -> None:
        if self.w_reliability < 0 or self.w_reputation < 0:
            raise ValueError("score weights must be >= 0")
        if not 0.0 <= self.incumbent_discount < 1.0:
            raise ValueError("incumbent_discount must lie in [0, 1)")

    def factor(self, bids: TenderBids) -> np.ndarray:
        """Per-bid multiplicative quality factor (>0); ``score = price * factor``."""
        return (
            1.0
            + self.w_reliability * (1.0 - bids.reliability)
            + self.w_reputation * (1.0 - bids.reputation)
        ) * (1.0 - self.incumbent_discount * bids.incumbent)

    def score(self, bids: TenderBids) -> np.ndarray:
        """Per-unit score of every bid (lower is better)."""
        return bids.price * self.factor(bids)


@dataclass
class TenderAward:
    """Outcome of :func:`award_tender` (arrays are aligned with the bids).

    Attributes
    ----------
    quantity: units awarded to each bid (0 for losers).
    unit_payment: USD paid per awarded unit to each bid (0 for losers).
    score: per-unit score of each bid (see :class:`ScoreRule`).
    winners: indices of bids with a positive award, ascending.
    total_cost: total USD paid by the buyer, ``sum(quantity * unit_payment)``.
    second_price: score of the best losing eligible bid (score-equivalent
        USD/unit; equals its price when all quality factors are 1), NaN if
        every eligible bid won something.
    n_bids: number of bids received.
    covered: units awarded; less than ``demand`` if capacity is short.
    demand: units tendered.
    payment: payment rule used ("first_price" or "vickrey").
    score_cost: optimal total score (the minimised objective).
    eligible: bids that took part (positive capacity, score within the
        reserve price).
    """

    quantity: np.ndarray
    unit_payment: np.ndarray
    score: np.ndarray
    winners: np.ndarray
    total_cost: float
    second_price: float
    n_bids: int
    covered: float
    demand: float
    payment: str
    score_cost: float = 0.0
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


# ---------------------------------------------------------------------------
# Winner determination
# ---------------------------------------------------------------------------
def _coverable(capacity: np.ndarray, demand: float, max_winners: int | None) -> float:
    """Largest coverable quantity: ``min(demand, sum of the k largest capacities)``."""
    if capacity.size == 0 or demand <= 0:
        return 0.0
    k = capacity.size if max_winners is None else min(max_winners, capacity.size)
    if k >= capacity.size:
        top = capacity.sum()
    else:
        top = np.partition(capacity, capacity.size - k)[capacity.size - k:].sum()
    return float(min(demand, top))


def _lots(capacity: np.ndarray, target: float, m: int, min_lot: float | None) -> np.ndarray:
    """Minimum quantity of a selected bid (only used when ``m > 1``)."""
    if m <= 1:
        return np.zeros_like(capacity)
    lot = 1.0 if min_lot is None else float(min_lot)
    return np.minimum(np.minimum(capacity, lot), target / m)


def _min_cost_allocation(
    score: np.ndarray,
    capacity: np.ndarray,
    target: float,
    min_winners: int,
    max_winners: int | None,
    min_lot: float | None,
    tie_break: bool,
) -> tuple[np.ndarray, float]:
    """Minimise ``score @ q`` s.t. ``sum(q) == target``, ``q <= capacity`` and
    ``min_winners <= #{q > 0} <= max_winners`` (with minimum lots).

    ``target`` must be coverable (see :func:`_coverable`).  Returns the
    quantities and the optimal objective.

    The LP relaxation (winner-count constraints dropped) is solved first; if
    its optimum happens to satisfy the winner-count and lot constraints it is
    optimal for the MILP too and is returned, otherwise the MILP with binary
    selection variables is solved.  With ``tie_break`` a second solve keeps the
    quantity awarded to every group of equal-score bids (hence the optimal
    cost) and, within each group, moves quantity to the lowest indices by
    minimising ``sum((i+1) q_i)``.
    """
    n = score.size
    q = np.zeros(n)
    if n == 0 or target <= _QTY_TOL:
        return q, 0.0
    k = n if max_winners is None else min(int(max_winners), n)
    m = min(max(int(min_winners), 0), k)

    if k == 1:
        # Single winner: the cheapest bid able to carry the whole target.
        able = capacity >= target * (1 - 1e-12) - _QTY_TOL
        cand = np.flatnonzero(able)
        w = cand[np.argmin(score[cand])]  # argmin -> lowest index on ties
        q[w] = target
        return q, float(score[w] * target)

    lots = _lots(capacity, target, m, min_lot)
    scale = max(float(np.max(np.abs(score))), 1e-12)
    tol = _QTY_TOL * max(1.0, target)
    ar = np.arange(n)
    group = np.unique(score, return_inverse=True)[1].astype(np.int64)

    def solve(binary: bool, obj: np.ndarray, group_total: np.ndarray | None = None):
        """One HiGHS solve over x = [q] (LP) or x = [q, y] (MILP)."""
        if binary:
            # sum(q) == target; q_i - cap_i y_i <= 0; q_i - lot_i y_i >= 0;
            # m <= sum(y) <= k
            rows = [np.zeros(n, np.int64), 1 + ar, 1 + ar, 1 + n + ar, 1 + n + ar,
                    np.full(n, 1 + 2 * n)]
            cols = [ar, ar, n + ar, ar, n + ar, n + ar]
            vals = [np.ones(n), np.ones(n), -capacity, np.ones(n), -lots, np.ones(n)]
            lb = np.concatenate([[target], np.full(n, -np.inf), np.zeros(n), [m]])
            ub = np.concatenate([[target], np.zeros(n), np.full(n, np.inf), [k]])
            n_rows, width = 2 * n + 2, 2 * n
            integrality = np.concatenate([np.zeros(n), np.ones(n)])
            bounds = Bounds(np.zeros(2 * n), np.concatenate([capacity, np.ones(n)]))
        else:
            rows, cols, vals = [np.zeros(n, np.int64)], [ar], [np.ones(n)]
            lb = ub = np.array([float(target)])
            n_rows, width = 1, n
            integrality = None
            bounds = Bounds(np.zeros(n), capacity)
        if group_total is not None:  # tie-break: fixed quantity per score group
            rows.append(n_rows + group)
            cols.append(ar)
            vals.append(np.ones(n))
            lb, ub = np.append(lb, group_total), np.append(ub, group_total)
            n_rows += group_total.size
        a = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_rows, width))
        c = np.concatenate([obj, np.zeros(width - n)])
        res = milp(c, integrality=integrality, bounds=bounds,
                   constraints=LinearConstraint(a, lb, ub), options=_MILP_OPTIONS)
        if not res.success:
            return None
        x = np.clip(res.x[:n], 0.0, capacity)
        x[x < tol] = 0.0
        return x

    def admissible(x: np.ndarray) -> bool:
        pos = x > 0
        cnt = int(pos.sum())
        if cnt > k:
            return False
        return m <= 1 or (cnt >= m and bool(np.all(x[pos] >= lots[pos] - tol)))

    constrained = m > 1 or k < n
    binary = False
    q = solve(False, score / scale)
    if q is None:
        raise RuntimeError("tender LP failed")
    if constrained and not admissible(q):
        binary = True
        q = solve(True, score / scale)
        if q is None:
            raise RuntimeError("tender MILP failed")
    best = float(score @ q)

    if tie_break:
        totals = np.bincount(group, weights=q, minlength=int(group.max()) + 1)
        order_obj = (ar + 1.0) / n
        q2 = solve(binary, order_obj, totals)
        if q2 is not None and constrained and not binary and not admissible(q2):
            q2 = solve(True, order_obj, totals)
        if q2 is not None and float(score @ q2) <= best + 1e-7 * max(1.0, abs(best)):
            q = q2
    return q, float(score @ q)


def award_tender(
    bids: TenderBids,
    demand: float,
    rule: ScoreRule = ScoreRule(),
    min_winners: int = 1,
    max_winners: int | None = None,
    payment: Literal["first_price", "vickrey"] = "first_price",
    min_lot: float | None = None,
    reserve_price: float | None = None,
) -> TenderAward:
    """Award a multi-unit procurement tender for one lane.

    Winner determination minimises the total score ``sum(score_i * q_i)``
    subject to

    * ``sum(q) == covered`` where ``covered = min(demand, capacity of the
      max_winners largest eligible bids)`` (all capacity if unlimited);
    * ``0 <= q_i <= capacity_i``;
    * ``min_winners <= #winners <= max_winners`` using binary selection
      variables ``y_i`` with ``q_i <= capacity_i y_i``; when ``min_winners > 1``
      every selected bid carries at least a minimum lot
      ``min(min_lot, capacity_i, covered / min_winners)`` (``min_lot``
      defaults to one unit) so that "winning" means a real share.

    It is solved exactly with ``scipy.optimize.milp`` (HiGHS): the LP
    relaxation first, and the MILP whenever the relaxed optimum violates the
    winner-count or lot constraints.  The single-winner case
    (``max_winners == 1``) is solved in closed form (the cheapest-score bid
    able to carry the whole quantity).  Ties between equal-score bids are
    broken deterministically: quantity goes to the lowest bid index first.
    ``min_winners`` is capped at the number of eligible bids.

    Payments
    --------
    ``"first_price"``: each winner is paid its own ask per unit.

    ``"vickrey"``: VCG payments.  For each winning provider ``b`` (all its bids
    removed) the buyer re-solves the same MILP; the provider's score payment
    is ``its score cost + (C_-b + V * (covered - covered_-b)) - C`` where ``C``
    is the optimal total score, ``C_-b`` the optimum without ``b`` and ``V``
    the value per unit of demand left unserved without ``b``: ``reserve_price``
    if given, else the highest eligible score.  Only the first choice is
    independent of the bids, so pass ``reserve_price`` when a provider can be
    pivotal for coverage (capacity short without it) and strategy-proofness
    matters; with enough capacity ``V`` plays no role.  The externality term
    is floored at 0 (it can only turn negative when removing ``b`` also
    relaxes the winner-count limits or with the default ``V``).  Score
    payments are converted back to USD by dividing by the bid's quality
    factor, then expressed per awarded unit.  For one unit and one winner
    this is the second-lowest score.

    Parameters
    ----------
    bids: the sealed bids.
    demand: units tendered (>= 0).
    rule: scoring rule (default :class:`ScoreRule`).
    min_winners, max_winners: limits on the number of winning bids
        (``max_winners=None`` means unlimited).
    payment: "first_price" or "vickrey".
    min_lot: minimum quantity per winner when ``min_winners > 1``.
    reserve_price: bids with a score above it are not eligible; also the value
        of unserved units in the VCG counterfactual.
    """
    if payment not in ("first_price", "vickrey"):
        raise ValueError(f"unknown payment rule {payment!r}")
    if demand < 0 or not np.isfinite(demand):
        raise ValueError("demand must be finite and >= 0")
    if max_winners is not None and max_winners < 1:
        raise ValueError("max_winners must be >= 1 or None")
    if max_winners is not None and min_winners > max_winners:
        raise ValueError("min_winners must not exceed max_winners")

    n = len(bids)
    factor = rule.factor(bids)
    score = bids.price * factor
    eligible = bids.capacity > 0
    if reserve_price is not None:
        eligible &= score <= reserve_price
    idx = np.flatnonzero(eligible)
    tie_break = np.unique(score[idx]).size < idx.size

    s_e, cap_e = score[idx], bids.capacity[idx]
    covered = _coverable(cap_e, demand, max_winners)
    q_e, best = _min_cost_allocation(
        s_e, cap_e, covered, min_winners, max_winners, min_lot, tie_break)

    quantity = np.zeros(n)
    quantity[idx] = q_e
    winners = np.flatnonzero(quantity > 0)
    unit_payment = np.zeros(n)
    unit_payment[winners] = bids.price[winners]

    losers = idx[q_e <= 0]
    second_price = float(score[losers].min()) if losers.size else float("nan")

    if payment == "vickrey" and winners.size:
        value_unserved = (
            float(reserve_price) if reserve_price is not None else float(s_e.max())
        )
        for b in np.unique(bids.bidder[winners]):
            keep = bids.bidder[idx] != b
            cov_b = _coverable(cap_e[keep], demand, max_winners)
            _, best_b = _min_cost_allocation(
                s_e[keep], cap_e[keep], cov_b, min_winners, max_winners, min_lot,
                tie_break=False)
            bonus = max(0.0, best_b + value_unserved * (covered - cov_b) - best)
            mine = winners[bids.bidder[winners] == b]
            q_b = quantity[mine].sum()
            unit_payment[mine] = bids.price[mine] + bonus / (q_b * factor[mine])

    total_cost = float(quantity @ unit_payment)
    return TenderAward(
        quantity=quantity, unit_payment=unit_payment, score=score, winners=winners,
        total_cost=total_cost, second_price=second_price, n_bids=n,
        covered=float(quantity.sum()), demand=float(demand), payment=payment,
        score_cost=best, eligible=eligible,
    )


# ---------------------------------------------------------------------------
# Descending clock auction
# ---------------------------------------------------------------------------
@dataclass
class ClockAuctionResult:
    """Outcome of :func:`descending_clock_auction`.

    winners: indices of bidders awarded a positive quantity.
    quantity: units awarded per bidder.
    price: clearing (clock) price per unit paid to every winner.
    rounds: number of price decrements taken.
    covered: units awarded (< demand when supply at the start price is short).
    """

    winners: np.ndarray
    quantity: np.ndarray
    price: float
    rounds: int
    covered: float


def descending_clock_auction(
    costs_or_limits: np.ndarray,
    demand: float,
    start_price: float,
    decrement: float,
    capacity: np.ndarray | None = None,
    max_rounds: int = 1_000_000,
) -> ClockAuctionResult:
    """Descending (reverse English) clock auction for ``demand`` units.

    The auctioneer calls a per-unit price that starts at ``start_price`` and
    falls by ``decrement`` each round.  Bidder ``i`` stays in while the price
    is at least its limit (its drop-out price, e.g. its cost for a truthful
    bidder) and then offers its whole ``capacity`` (default one unit each).

    The clock keeps descending while there is excess supply.  It stops

    * when supply at the current price no longer exceeds demand: every bidder
      still in wins its capacity; or
    * when one more step would leave supply below demand: the clock stays at
      the current price; bidders who would still be in win their capacity and
      the remaining demand is rationed among those who would drop out at the
      next step in order of their drop-out price (intra-round bids; ties go
      to the lowest index).

    If supply at ``start_price`` is already short, all bidders in win at the
    start price.  For one unit the price ends within one ``decrement`` of the
    second-lowest limit (the Vickrey price).
    """
    limits = np.asarray(costs_or_limits, dtype=float).ravel()
    n = limits.size
    cap = np.ones(n) if capacity is None else np.asarray(capacity, dtype=float).ravel()
    if cap.size != n:
        raise ValueError("capacity must have one entry per bidder")
    if decrement <= 0:
        raise ValueError("decrement must be > 0")
    if demand <= 0 or n == 0:
        return ClockAuctionResult(np.zeros(0, dtype=np.int64), np.zeros(n),
                                  float(start_price), 0, 0.0)

    order = np.argsort(limits, kind="stable")
    sorted_limits = limits[order]
    cum_cap = np.concatenate([[0.0], np.cumsum(cap[order])])

    def supply(p: float) -> float:
        return float(cum_cap[np.searchsorted(sorted_limits, p, side="right")])

    rounds = 0
    price = float(start_price)
    ration = False
    while supply(price) > demand and rounds < max_rounds:
        nxt = float(start_price) - (rounds + 1) * decrement
        if supply(nxt) < demand:
            ration = True
            break
        price = nxt
        rounds += 1

    quantity = np.zeros(n)
    active = limits <= price
    if not ration:
        quantity[active] = cap[active]
    else:
        stay = limits <= price - decrement
        quantity[stay] = cap[stay]
        left = demand - quantity.sum()
        drop = np.flatnonzero(active & ~stay)
        drop = drop[np.lexsort((drop, limits[drop]))]
        before = np.concatenate([[0.0], np.cumsum(cap[drop])[:-1]])
        quantity[drop] = np.clip(left - before, 0.0, cap[drop])
    winners = np.flatnonzero(quantity > 0)
    return ClockAuctionResult(winners=winners, quantity=quantity, price=price,
                              rounds=rounds, covered=float(quantity.sum()))


# ---------------------------------------------------------------------------
# Equilibrium bidding in first-price reverse auctions
# ---------------------------------------------------------------------------
def first_price_equilibrium_bid(
    cost: np.ndarray | float,
    n_bidders: int,
    cost_cdf_or_uniform_bounds: tuple[float, float] | Callable[[np.ndarray], np.ndarray],
    upper: float | None = None,
    reserve: float | np.ndarray | None = None,
) -> np.ndarray | float:
    """Symmetric Bayes-Nash equilibrium ask in a first-price reverse auction.

    With ``n`` bidders whose costs are i.i.d. with CDF ``F`` on
    ``[c_lo, c_hi]`` and no reserve, the equilibrium ask of a bidder with cost
    ``c`` is::

        b(c) = c + int_c^{c_hi} (1 - F(t))^(n-1) dt / (1 - F(c))^(n-1)

    i.e. the expected lowest rival cost given that all rivals' costs exceed
    ``c``.  For uniform costs this is ``c + (c_hi - c) / n``; a lone bidder
    (``n == 1``) asks ``c_hi``.

    With a reserve ``r`` (the buyer accepts no ask above it) let
    ``u = min(r, c_hi)``; with rivals a bidder with ``c < u`` asks::

        b(c) = c + int_c^u (1 - F(t))^(n-1) dt / (1 - F(c))^(n-1)

    (Krishna, *Auction Theory*, 2nd ed., section 2.5, for a procurement
    auction: the boundary term ``(1 - F(u))^(n-1) (r - u)`` vanishes with
    rivals, as ``F(u) = 1`` or ``u = r``), so ``b(u) = u``; a lone bidder asks
    the reserve.  A bidder that cannot win at a profit (``c >= u`` with
    rivals, or ``c >= r``) asks its cost.  Asks are never below cost.

    Parameters
    ----------
    cost: cost(s), vectorised.
    n_bidders: number of bidders ``n >= 1``.
    cost_cdf_or_uniform_bounds: either ``(c_lo, c_hi)`` for uniform costs
        (closed form) or the CDF ``F`` as a vectorised callable, or a frozen
        ``scipy.stats`` distribution (``.cdf`` and ``.support()``).  The
        general case is integrated numerically with
        ``scipy.integrate.quad_vec``.
    upper: upper end ``c_hi`` of the cost support (needed for a bare callable).
    reserve: the buyer's reserve price (``None`` or infinite: no reserve); one
        per cost where bidders face different reserves (e.g. in score units).
    """
    if n_bidders < 1:
        raise ValueError("n_bidders must be >= 1")
    c = np.asarray(cost, dtype=float)
    scalar = c.ndim == 0
    c = np.atleast_1d(c)
    r = np.broadcast_to(np.inf if reserve is None else np.asarray(reserve, dtype=float), c.shape)
    r = np.where(np.isnan(r), np.inf, r)
    spec = cost_cdf_or_uniform_bounds
    k = n_bidders - 1

    if isinstance(spec, (tuple, list)) and len(spec) == 2 and not callable(spec):
        lo, hi = map(float, spec)
        if hi < lo:
            raise ValueError("uniform bounds must satisfy lo <= hi")
        cdf = None
    else:
        if hasattr(spec, "cdf") and hasattr(spec, "support"):
            cdf = spec.cdf
            lo = float(spec.support()[0])
            hi = float(spec.support()[1]) if upper is None else float(upper)
        elif callable(spec):
            cdf = spec
            if upper is None:
                raise ValueError("upper (the top of the cost support) is required")
            lo, hi = -np.inf, float(upper)
        else:
            raise TypeError("pass (lo, hi) bounds, a CDF callable or a frozen distribution")
        if not np.isfinite(hi):
            raise ValueError("cost support must be bounded above")

    u = np.minimum(r, hi)
    if k == 0:           # a lone bidder: the reserve, or the top of the support without one
        out = np.maximum(c, np.where(np.isfinite(r), r, hi))
        return float(out[0]) if scalar else out

    # below the support every cost asks what the lowest cost asks (F(c) = 0 there)
    cc = np.minimum(np.maximum(c, lo), u) if np.isfinite(lo) else np.minimum(c, u)
    if cdf is None:
        # uniform on [lo, hi]: int_c^u ((hi - t) / (hi - c))^(n-1) dt in closed form
        width = hi - cc
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(width > 0, (hi - u) / np.where(width > 0, width, 1.0), 0.0)
        markup = np.where(width > 0, width / n_bidders * (1.0 - ratio ** n_bidders), 0.0)
    else:
        width = u - cc

        def integrand(s: float) -> np.ndarray:
            t = cc + s * width
            return (1.0 - np.asarray(cdf(t), dtype=float)) ** k

        integral, _ = integrate.quad_vec(integrand, 0.0, 1.0, epsabs=1e-12, epsrel=1e-10)
        integral = integral * width
        denom = (1.0 - np.asarray(cdf(cc), dtype=float)) ** k
        with np.errstate(divide="ignore", invalid="ignore"):
            markup = np.where(denom > 1e-300, integral / denom, 0.0)
    out = cc + markup
    # a bidder that cannot win at a profit asks its cost; nobody asks below cost
    out = np.where(c >= u, c, np.maximum(out, c))
    return float(out[0]) if scalar else out
