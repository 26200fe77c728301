"""What every provider (carrier, warehouse operator, customs broker) has in common, and decides.

A provider owns offers (rows of the model's :class:`~market.procurement.offers.OfferBook`):
capacity on resources, its own unit costs and a markup. Its decisions live here:

- **tender bids** (:class:`TenderBidding`): the rates it asks for a buyer's volume: cost, less
  the economies of density the volume gives, times its markup (cost plus, truthful, or learned
  from wins and losses: ``market.bidding``) and a surcharge for a buyer with a poor payment
  record;
- **prices** (:meth:`Provider.review_prices`): markups up where its capacity ran hot, down
  where it stood idle;
- **capacity** (:meth:`Provider.review_capacity`): part of the way towards what would put its
  demand in the middle of the utilisation band, never below the spare it sells from networks
  that serve other markets;
- **exit** (:meth:`Provider.close_period`): when its losses over its last few periods (its
  own draw from ``evolution.exit_window``) exceed what it bears, its own share (drawn from
  ``evolution.loss_tolerance``) of its fixed cost over them;
- **the contract net** (:class:`RouteBidder`): bidding for a whole route as lead contractor
  (subcontracting legs it does not serve) or for single legs as a subcontractor.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import mesa
import numpy as np

from market.mechanisms.contract_net import Proposal, Task
from market.mechanisms.reputation import DIMENSIONS
from market.mechanisms.strategies import AdaptiveMarkup

if TYPE_CHECKING:
    from market.procurement.tendering import TenderRound

PAYMENT = DIMENSIONS.index("payment")
TENDER_KEYS = ("rate_parcel", "rate_kg", "rate_shipment", "rate_storage", "ref", "cost_factor")


class TenderBidding:
    """How providers bid in tenders, vectorised over offers (one object for the whole market).

    ``market.bidding``: ``cost_plus`` bids each offer's own markup; ``truthful`` asks its cost;
    ``adaptive`` learns a markup per offer from wins, losses and utilisation.
    """

    def __init__(self, config, offers, reputation):
        self.rule = config.market.bidding
        self.credit_premium = config.market.credit_premium
        self.carriers = config.carriers
        self.offers = offers
        self.reputation = reputation
        self.learner = None
        if self.rule == "adaptive":
            lo, hi = config.carriers.markup_bounds
            self.learner = AdaptiveMarkup(offers.n, initial=offers.markup.copy(), step_up=0.05, step_down=0.05,
                                          min_markup=lo, max_markup=hi,
                                          target_utilisation=float(np.mean(config.carriers.utilisation_target)))

    def markups(self, offer_ids: np.ndarray) -> np.ndarray:
        """The markup each offer bids with."""
        if self.rule == "truthful":
            return np.zeros(offer_ids.size)
        if self.rule == "adaptive":
            return self.learner.markup(offer_ids)
        return self.offers.markup[offer_ids]

    def credit_score(self, buyer_uid: int) -> float:
        """A buyer's credit standing in [0, 1]: the payment dimension of its reputation."""
        return float(self.reputation.dimension_scores(np.array([buyer_uid]))[0, PAYMENT])

    def asks(self, offer_ids: np.ndarray, volume: float, bulk: bool, buyer_uid: int) -> dict[str, np.ndarray]:
        """Rates each offer asks for ``volume`` a day from this buyer (per parcel, kg, shipment,
        storage unit-day) and the density factor behind them."""
        book, carriers = self.offers, self.carriers
        if bulk:
            density = np.ones(offer_ids.size)
        else:   # economies of density (Caplice & Sheffi): a committed volume lowers unit cost
            density = 1.0 - carriers.density_discount * volume / (volume + carriers.density_half_volume) \
                * np.ones(offer_ids.size)
        markup = self.markups(offer_ids)
        credit = 1.0 + self.credit_premium * (1.0 - self.credit_score(buyer_uid))
        up = density * (1.0 + markup) * credit
        return {"rate_parcel": book.cost_parcel[offer_ids] * up, "rate_kg": book.cost_kg[offer_ids] * up,
                "rate_shipment": book.cost_shipment[offer_ids] * up,
                "rate_storage": book.cost_storage[offer_ids] * (1.0 + markup) * credit, "cost_factor": density}

    def learn(self, bid: np.ndarray, won: np.ndarray):
        """Adaptive bidders update their markups from a round's wins and losses."""
        if self.learner is None or bid.size == 0:
            return
        offer_ids = np.unique(bid)
        util = self.offers.utilisation_prev(offer_ids)
        self.learner.observe(np.isin(offer_ids, won), utilisation=util, providers=offer_ids)
        self.offers.markup[offer_ids] = self.learner.markup(offer_ids)

    def add_offers(self, offer_ids: np.ndarray):
        """Offers of a provider that entered mid-run start from their list markup."""
        if self.learner is not None:
            self.learner._markup = np.concatenate([self.learner._markup, self.offers.markup[offer_ids]])
            self.learner.n_providers = self.offers.n


class Provider(mesa.Agent):
    """Base class of the three provider actors; subclasses set ``role``."""

    role = "provider"

    def __init__(self, model, name: str, group: str):
        super().__init__(model)
        self.name = name
        self.group = group
        self.acct = model.ledger.open(f"{self.role}:{name}", self.role, self.unique_id)
        self.offer_ids = np.zeros(0, dtype=np.int64)
        self.in_market = True
        # how many periods it sums before deciding to leave, and the loss it bears over them as
        # a share of its fixed cost (its own draws: patience and deep pockets differ)
        evolution = model.config.evolution
        self.exit_window = int(model.rng.integers(evolution.exit_window[0], evolution.exit_window[1] + 1))
        self.loss_tolerance = float(model.rng.uniform(*evolution.loss_tolerance))
        self.periods: deque[tuple[float, float]] = deque(maxlen=self.exit_window)

    # ---- prices ----
    def review_prices(self):
        """Raise markups where capacity ran hot, cut them where it stood idle."""
        carriers = self.model.config.carriers
        book = self.model.offers
        mine = self.offer_ids[book.active[self.offer_ids]]
        if mine.size == 0:
            return
        util = book.util_sum[mine] / carriers.review_days
        book.util_sum[mine] = 0.0
        lo, hi = carriers.utilisation_target
        step = np.where(util > hi, carriers.markup_step, np.where(util < lo, -carriers.markup_step, 0.0))
        book.markup[mine] = np.clip(book.markup[mine] + step, *carriers.markup_bounds)

    def step(self):
        """Review its prices every ``carriers.review_days`` (unless bidding is adaptive)."""
        if not self.in_market:
            return
        day = self.model.day
        # with adaptive bidding the markup is learned in tenders instead
        if day > 0 and day % self.model.config.carriers.review_days == 0 \
                and self.model.config.market.bidding != "adaptive":
            self.review_prices()

    # ---- capacity and exit (once an evolution period) ----
    def close_period(self, profit_cents: float, fixed_cents: float) -> bool:
        """Note a period's profit and the fixed cost it paid; True when it wants to leave: a
        whole exit window has passed and its losses over it exceed its tolerance times the
        fixed cost it paid over it (a provider that covers its variable costs but not its fixed
        ones goes when the shortfall is more than it will bear; an idle one loses about all of
        its fixed cost, so it goes at its first chance unless its tolerance is near 1)."""
        self.periods.append((float(profit_cents), float(fixed_cents)))
        if len(self.periods) < self.periods.maxlen:
            return False
        loss = -sum(p for p, _ in self.periods)
        return loss > 0 and loss > self.loss_tolerance * sum(f for _, f in self.periods)

    def review_capacity(self, demand_util: np.ndarray, queued: np.ndarray, peak_util: np.ndarray,
                        base_capacity: np.ndarray, growable: np.ndarray, evolution) -> bool:
        """Move the capacity of its open offers part of the way to what would put their demand
        mid-band (``carriers.utilisation_target``).

        Where parcels were left waiting, or it sees more coming on a day than it can take
        (``queued``), and demand (utilisation plus the queue, or the parcels it sees coming,
        ``demand_util``; NaN where it does not review) ran above the band, it adds
        ``evolution.capacity_step`` of the gap at once - unless a disruption has cut the
        resource's capacity (``growable`` false): a closed or congested crossing is not
        reopened by adding trucks. Where even the recent peak of weekly demand (``peak_util``, a
        share of the capacity before shocks) stays more than a tenth below mid-band, it sheds
        half as fast towards the capacity that would run that peak at the top of the band, so
        capacity kept for bursts (stock-out fallbacks, the peak season) is not shed the week it
        stands idle. Never below the spare it sells from networks that serve other
        markets (``outside_capacity``); the fixed cost follows the capacity it keeps for this
        market. ``base_capacity`` (the capacity before shocks) is updated in place; returns
        whether anything changed."""
        book = self.model.offers
        lo, hi = self.model.config.carriers.utilisation_target
        target = 0.5 * (lo + hi)
        mine = self.offer_ids[book.active[self.offer_ids]]
        util, peak = demand_util[mine], peak_util[mine]
        hot = (util > hi) & queued[mine] & growable[mine]
        idle = ~hot & (peak < 0.9 * target)
        if not (hot.any() or idle.any()):
            return False
        step = evolution.capacity_step
        gap = np.where(hot, util / target - 1.0, np.where(idle, peak / hi - 1.0, 0.0))
        old = base_capacity[mine]
        new = np.maximum(old * (1.0 + np.where(hot, step, 0.5 * step) * gap), book.outside_capacity[mine])
        moved = np.abs(new - old) > 1e-9 * np.maximum(old, 1.0)
        if not moved.any():
            return False
        mine = mine[moved]
        base_capacity[mine] = new[moved]
        book.set_fixed_cost(mine, base_capacity[mine])
        return True

    # ---- reporting ----
    @property
    def cash(self) -> float:
        """Its ledger balance, USD."""
        return self.model.ledger.balance(self.acct) / 100.0

    def utilisation(self) -> float:
        """Share of its capacity used yesterday."""
        book = self.model.offers
        cap = book.capacity[self.offer_ids].sum()
        return float(book.used_prev[self.offer_ids].sum() / cap) if cap > 0 else 0.0


class RouteBidder:
    """A provider in the contract net: it bids for a whole route as lead contractor (serving its
    own legs, subcontracting the rest at what it expects the cheapest other provider to ask,
    plus its margin) and for single legs as a subcontractor."""

    def __init__(self, tender: TenderRound, provider: Provider, route_resources: list[int], need: float,
                 buyer_acct: int):
        self.tender = tender
        self.provider = provider
        self.name = provider.name
        self.route_resources = route_resources
        self.contractors: list[RouteBidder] = []
        book = tender.model.offers
        mine = provider.offer_ids
        self.own: dict[int, tuple[int, dict]] = {}
        for r in route_resources:
            offer_ids = mine[(book.resource[mine] == r) & book.active[mine] & (book.capacity[mine] > 0)]
            if offer_ids.size:
                asks = tender.asks(offer_ids, need, False, buyer_acct)
                j = int(np.argmin(asks["ref"]))
                self.own[r] = (int(offer_ids[j]), {k: asks[k][j] for k in TENDER_KEYS})
        self.rel, self.rep = (1.0, 0.5)
        if self.own:
            offer_ids = np.array([v[0] for v in self.own.values()])
            rel, rep = tender.quality(offer_ids)
            self.rel, self.rep = float(rel.min()), float(rep.mean())

    def _spare(self, r: int) -> float:
        offer = self.own[r][0]
        return float(self.tender._spare(np.array([offer]), False, 0.0)[0])

    def propose(self, task: Task) -> Proposal | None:
        """A bid for a route (as lead) or a leg (as subcontractor), or None."""
        margin = 1.0 + self.tender.model.config.integrators.lead_margin
        if task.kind == "route":
            if not self.own:
                return None
            price, qty = 0.0, task.quantity
            for r in self.route_resources:
                if r in self.own:
                    price += self.own[r][1]["ref"]
                    qty = min(qty, self._spare(r))
                else:   # what it expects to pay a subcontractor: the cheapest other provider's ask
                    others = [c.own[r][1]["ref"] for c in self.contractors if r in c.own and c is not self]
                    if not others:
                        return None
                    price += min(others) * margin
            if qty < 1:
                return None
            return Proposal(self.name, task.task_id, price, qty, self.rel, self.rep)
        r = task.attributes["resource"]
        if r not in self.own:
            return None
        qty = min(task.quantity, self._spare(r))
        if qty < 1:
            return None
        return Proposal(self.name, task.task_id, self.own[r][1]["ref"], qty, self.rel, self.rep)

    def subtasks(self, task: Task, quantity: float) -> list[Task]:
        """The legs of a route it does not serve itself, to subcontract."""
        if task.kind != "route":
            return []
        return [Task(task_id=f"{task.task_id}/res{r}", kind="leg", quantity=quantity,
                     attributes={"resource": r}) for r in self.route_resources if r not in self.own]
