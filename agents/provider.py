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
from market.mechanisms.strategies import (AdaptiveMarkup, BanditShading, CostPlus, EquilibriumShading,
                                           Truthful)

if TYPE_CHECKING:
    from market.procurement.tendering import TenderRound

PAYMENT = DIMENSIONS.index("payment")
TENDER_KEYS = ("rate_parcel", "rate_kg", "rate_shipment", "rate_storage", "ref", "cost_factor")


class TenderBidding:
    """How providers bid in tenders, vectorised over offers (one object for the whole market).

    A provider's *cost* for a buyer's volume is its unit cost less the economies of density
    the volume gives, times the surcharge for a buyer with a poor payment record. What it asks
    depends on ``market.bidding`` and on the tender's payment rule (``fmt``):

    ==============  ==========================================  ==========================
    rule            pay as bid (first price, package, contract  Vickrey/VCG, clock
                    net)
    ==============  ==========================================  ==========================
    ``equilibrium`` the first-price equilibrium ask given the   cost (truthful is
                    number of bidders, rivals' costs believed   dominant; in the clock it
                    uniform within ``carriers.cost_spread`` of   drops out at cost)
                    the lane's cost, and the buyer's reserve
    ``learning``    cost + s x (top - cost), ``s`` learned per  cost
                    offer by a bandit from past tenders' profits
    ``truthful``    cost                                        cost
    ``cost_plus``   cost x (1 + the provider's list markup)     the same (format-blind)
    ``adaptive``    cost x (1 + a markup raised after wins and  the same (format-blind)
                    cut after losses)
    ==============  ==========================================  ==========================

    ``top`` is the highest ask that can still win: the reserve when the provider bids alone,
    else the least of the top of rivals' believed costs and the reserve.
    """

    PAY_AS_BID = ("first_price", "package", "contract_net")

    def __init__(self, config, offers, reputation, rng: np.random.Generator | None = None):
        self.rule = config.market.bidding
        self.credit_premium = config.market.credit_premium
        self.carriers = config.carriers
        self.offers = offers
        self.reputation = reputation
        self.learner = None      # the adaptive markups (round-end learning)
        self.bandit = None       # the learned shading (per-tender learning)
        self.truthful = Truthful(offers.n)
        self.list_markup = CostPlus(offers.markup, n_providers=offers.n)
        self.equilibrium = EquilibriumShading(offers.n)
        if self.rule == "adaptive":
            lo, hi = config.carriers.markup_bounds
            self.learner = AdaptiveMarkup(offers.n, initial=offers.markup.copy(), step_up=0.05, step_down=0.05,
                                          min_markup=lo, max_markup=hi,
                                          target_utilisation=float(np.mean(config.carriers.utilisation_target)))
        if self.rule == "learning":
            if rng is None:
                raise ValueError("learning bidders need the run's random generator")
            self.bandit = BanditShading(offers.n, rng, epsilon=config.market.learning_epsilon, initial_value=1.0)

    def start_round(self):
        """A tender round starts: cost-plus bidders load their current list markups."""
        self.list_markup.update(self.offers.markup)

    def strategy(self, fmt: str):
        """The strategy offers bid with in a tender of format ``fmt`` (see the class)."""
        if self.rule == "cost_plus":
            return self.list_markup
        if self.rule == "adaptive":
            return self.learner
        if self.rule == "truthful" or fmt not in self.PAY_AS_BID:
            return self.truthful
        return self.equilibrium if self.rule == "equilibrium" else self.bandit

    def credit_score(self, buyer_uid: int) -> float:
        """A buyer's credit standing in [0, 1]: the payment dimension of its reputation."""
        return float(self.reputation.dimension_scores(np.array([buyer_uid]))[0, PAYMENT])

    def costs(self, offer_ids: np.ndarray, volume: float, bulk: bool, buyer_uid: int,
              ref_weight: float) -> dict[str, np.ndarray]:
        """Each offer's unit costs for ``volume`` a day from this buyer: per parcel, kg and
        shipment (with economies of density and the buyer's credit surcharge), per storage
        unit-day (with the surcharge), of a reference unit of ``ref_weight`` kg (``ref``), the
        density factor (``cost_factor``) and density times surcharge (``scale``)."""
        book, carriers = self.offers, self.carriers
        if bulk:
            density = np.ones(offer_ids.size)
        else:   # economies of density (Caplice & Sheffi): a committed volume lowers unit cost
            density = 1.0 - carriers.density_discount * volume / (volume + carriers.density_half_volume) \
                * np.ones(offer_ids.size)
        credit = 1.0 + self.credit_premium * (1.0 - self.credit_score(buyer_uid))
        up = density * credit
        out = {"rate_parcel": book.cost_parcel[offer_ids] * up, "rate_kg": book.cost_kg[offer_ids] * up,
               "rate_shipment": book.cost_shipment[offer_ids] * up,
               "rate_storage": book.cost_storage[offer_ids] * credit, "cost_factor": density, "scale": up}
        out["ref"] = out["rate_parcel"] + out["rate_kg"] * ref_weight + out["rate_shipment"]
        return out

    def asks(self, offer_ids: np.ndarray, volume: float, bulk: bool, buyer_uid: int, *, ref_weight: float,
             fmt: str = "first_price", context: dict | None = None) -> dict[str, np.ndarray]:
        """Rates each offer asks for ``volume`` a day from this buyer in a tender of format
        ``fmt`` (per parcel, kg, shipment, storage unit-day), the ask for a reference unit
        (``ref``), its cost (``cost_ref``) and the density factor behind them.

        ``context`` describes the tender (equilibrium and learning bidders need it):
        ``n_bidders`` (providers eligible), ``lane_cost`` (the lane's cost of a reference unit
        before density and credit, the centre of beliefs about rivals' costs), ``reserve``
        (the buyer's reserve per reference unit, ``None`` for none) and, where the buyer scores
        bids, ``score_factor`` (each offer's quality factor: score = price x factor). Every
        rate is the cost's rate times the same ratio ask / cost."""
        cost = self.costs(offer_ids, volume, bulk, buyer_uid, ref_weight)
        strategy = self.strategy(fmt)
        c = cost["ref"]
        if strategy is self.equilibrium:
            ctx = self.tender_context(context, cost)
            f = ctx["score_factor"]
            # shade in score units (a better-scored bid can win at a higher price), then back to price
            ask = np.asarray(strategy.ask(c * f, offer_ids, ctx), dtype=float) / f
        elif strategy is self.bandit:
            ask = np.asarray(strategy.ask(c, offer_ids, self.tender_context(context, cost)), dtype=float)
        else:
            ask = np.asarray(strategy.ask(c, offer_ids, None), dtype=float)
        ratio = np.divide(ask, c, out=np.ones_like(ask), where=c > 0)
        out = {k: cost[k] * ratio for k in ("rate_parcel", "rate_kg", "rate_shipment", "rate_storage")}
        out.update(ref=ask, cost_ref=c, cost_factor=cost["cost_factor"])
        return out

    def tender_context(self, context: dict | None, cost: dict) -> dict:
        """The shading strategies' view of a tender, in score units (price x each bid's quality
        factor; all 1 where bids are compared on price): bidders, the believed range of rivals'
        score-costs (costs uniform within ``carriers.cost_spread`` of the lane's cost, scaled by
        the density and credit every bidder applies and by the bidders' mean quality factor),
        each bidder's reserve, and in price units the highest ask that can win (``top``)."""
        if context is None:
            raise ValueError("equilibrium and learning bids need the tender's context")
        spread = self.carriers.cost_spread
        k = cost["ref"].size
        f = np.asarray(context.get("score_factor", np.ones(k)), dtype=float)
        f_mean = float(f.mean()) if k else 1.0
        # every bidder's cost carries the same density and credit factors: so does the lane cost
        centre = float(context["lane_cost"]) * (float(cost["scale"][0]) if k else 1.0)
        lo, hi = centre * (1.0 - spread) * f_mean, centre * (1.0 + spread) * f_mean
        reserve = context.get("reserve")
        n = int(context["n_bidders"])
        if reserve is None:
            top = hi / f
        else:
            top = np.full(k, reserve) if n <= 1 else np.minimum(hi / f, reserve)
        return {"n_bidders": n, "cost_bounds": (lo, hi), "score_factor": f,
                "reserve": None if reserve is None else reserve * f, "top": top}

    def observe(self, offer_ids: np.ndarray, won: np.ndarray, asks: dict, fmt: str):
        """After a pay-as-bid tender, learning bidders score the share they played: the margin
        they won as a share of the room they had (0 when they lost)."""
        if self.bandit is None or fmt not in self.PAY_AS_BID or offer_ids.size == 0:
            return
        share = self.bandit.grid[self.bandit.last_arm[offer_ids]]
        self.bandit.observe(won, providers=offer_ids, profit=np.where(won, share, 0.0))

    def learn(self, bid: np.ndarray, won: np.ndarray):
        """Adaptive bidders update their markups from a round's wins and losses."""
        if self.learner is None or bid.size == 0:
            return
        offer_ids = np.unique(bid)
        util = self.offers.utilisation_prev(offer_ids)
        self.learner.observe(np.isin(offer_ids, won), utilisation=util, providers=offer_ids)
        self.offers.markup[offer_ids] = self.learner.markup(offer_ids)

    def add_offers(self, offer_ids: np.ndarray):
        """Offers of a provider that entered mid-run: they start from their list markup (adaptive)
        or with fresh learning (bandit)."""
        n = self.offers.n
        self.truthful.n_providers = self.equilibrium.n_providers = n
        self.list_markup.update(self.offers.markup)
        if self.learner is not None:
            self.learner._markup = np.concatenate([self.learner._markup, self.offers.markup[offer_ids]])
            self.learner.n_providers = n
        if self.bandit is not None:
            self.bandit.add_providers(n - self.bandit.n_providers)


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

    @staticmethod
    def review_capacity(providers: list[Provider], demand_util: np.ndarray, queued: np.ndarray,
                        peak_util: np.ndarray, base_capacity: np.ndarray, growable: np.ndarray, evolution):
        """Each of these providers moves the capacity of its open offers part of the way to
        what would put their demand mid-band (``carriers.utilisation_target``).

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
        market. ``base_capacity`` (the capacity before shocks) is updated in place.

        The rule is offer by offer and providers own disjoint offers, so the providers
        reviewing today decide in one pass over all their offers (a loop over providers took
        a tenth of a small run's day)."""
        if not providers:
            return
        book = providers[0].model.offers
        lo, hi = providers[0].model.config.carriers.utilisation_target
        target = 0.5 * (lo + hi)
        ids = np.concatenate([p.offer_ids for p in providers])
        owner = np.repeat(np.arange(len(providers)), [p.offer_ids.size for p in providers])
        open_ = book.active[ids]
        mine, owner = ids[open_], owner[open_]
        util, peak = demand_util[mine], peak_util[mine]
        hot = (util > hi) & queued[mine] & growable[mine]
        idle = ~hot & (peak < 0.9 * target)
        step = evolution.capacity_step
        gap = np.where(hot, util / target - 1.0, np.where(idle, peak / hi - 1.0, 0.0))
        old = base_capacity[mine]
        new = np.maximum(old * (1.0 + np.where(hot, step, 0.5 * step) * gap), book.outside_capacity[mine])
        # a provider with no offer off the band leaves them all as they are; one that acts
        # also lifts an offer below its outside spare to it
        acting = np.isin(owner, owner[hot | idle])
        moved = acting & (np.abs(new - old) > 1e-9 * np.maximum(old, 1.0))
        mine = mine[moved]
        base_capacity[mine] = new[moved]
        book.set_fixed_cost(mine, base_capacity[mine])

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
                asks = tender.asks(offer_ids, need, False, buyer_acct, fmt="contract_net")
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
