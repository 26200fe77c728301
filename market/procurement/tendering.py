"""Tender rounds: buyers put their planned volumes out to tender and sign contracts.

Each buyer (a 4PL for its pooled volume, or a merchant doing it itself) issues a request for
quote per resource it will use. The providers with offers there bid for that volume: their
cost (less the economies of density the volume gives, plus a surcharge for a buyer with poor
credit) shaded by their bidding rule for the tender's format (``market.bidding``;
:class:`agents.provider.TenderBidding`). The buyer accepts no ask above its reserve, its
outside option: today's best spot price plus ``market.reserve_premium`` for assured capacity.
Winner determination and payment follow the scenario's format (``market.auction``):

* ``first_price`` - sealed bids scored on price, reliability, reputation and incumbency,
  awarded by an exact MILP with side constraints (min / max winners, capacities); pay as bid;
* ``vickrey`` - the same winner determination with VCG payments;
* ``clock`` - a descending clock auction from the reserve; bidders drop out at their asks;
  every winner is paid the clearing price;
* ``package`` - a buyer tenders all its daily resources at once; providers bid on single
  resources (divisible) and, where their lanes complement each other, on all-or-nothing
  bundles priced from the cost they save by serving them together (backhaul: lanes both ways
  between two territories); the exact MILP's award is what is signed, bundles whole.

Integrators may instead procure each route by the contract net protocol
(``integrators.procurement = "contract_net"``): a lead provider bids for the whole route and
subcontracts the legs it does not serve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from agents.provider import RouteBidder
from market.money.contracts import SIGNED
from market.money.ledger import to_cents
from market.mechanisms.auctions import ScoreRule, TenderBids, award_tender, descending_clock_auction
from market.mechanisms.contract_net import Task, run_contract_net, tender_award_fn
from market.mechanisms.package import PackageBids, backhaul_bundles, solve_package_auction
from market.world import EXPORT, HANDLING, IMPORT, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

SERVICE_OF_KIND = {TRANSPORT: 0, HANDLING: 1, EXPORT: 2, IMPORT: 2}   # lane, warehouse, brokerage
RATE_KEYS = ("rate_parcel", "rate_kg", "rate_shipment", "rate_storage")
BULK_REFERENCE_KG = 1000.0   # bulk bids are compared on a one-tonne shipment


def sla_days(net, clearance, r: int) -> int:
    """Days stage ``r`` may take under contract before it is late (the provider's share of it),
    from the network's transit times and the customs tables' clearance times today."""
    kind = int(net.res_kind[r])
    t = int(net.res_territory[r])
    if kind in (TRANSPORT, HANDLING):
        return int(math.ceil(net.res_tri[r, 2])) + 1
    if kind == EXPORT:
        return int(math.ceil(clearance.export_clearance[t, 2])) + 1
    g = int(net.res_regime[r])
    return int(math.ceil(clearance.clearance[t, g, 2] + clearance.inspection_days[t, 2])) + 1


@dataclass
class Request:
    """A buyer's request for quote on one resource: its planned volume and the volume it
    tenders for (``need``: the volume times the contract cover)."""

    buyer_acct: int
    resource: int
    volume: float     # per day: parcels, kg (bulk lanes) or entries (bulk customs)
    need: float       # volume x cover
    bulk: bool


class TenderRound:
    """One round of tenders on a given day (a fresh object each round).

    Takes the model because a round reads the volume plan, the offer book, the contract book
    (capacity already reserved), reputations, the network and clearance tables (for SLAs),
    the providers' bidding and the buyers (merchants and integrators), and writes contracts,
    incumbents and the merchants' transaction costs (ledger); it draws the order in which
    buyers tender from the run's random stream.
    """

    def __init__(self, model: Marketplace, day: int):
        self.model = model
        self.day = day
        cfg = model.config.market
        self.cfg = cfg
        book, offers, net = model.contracts, model.offers, model.net
        live = book.live_legs(day)
        daily = ~net.res_bulk[book.resource[live]]
        self.reserved = np.bincount(book.offer[live[daily]], weights=book.capacity[live[daily]], minlength=offers.n)
        self.rule = ScoreRule(w_reliability=cfg.w_reliability, w_reputation=cfg.w_reputation,
                              incumbent_discount=cfg.incumbent_discount)
        self.owners = {a.acct: a for a in model.merchants + model.integrators}
        self.providers = {p.unique_id: p for p in model.carriers + model.operators + model.brokers}
        self.bid_offers: list[np.ndarray] = []
        self.won_offers: list[np.ndarray] = []
        self.contracts_signed = 0
        self.tenders = 0
        self._context: dict[int, dict] = {}
        self._quality: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        model.bidding.start_round()

    # ---- what providers ask ----
    def ref_weight(self, bulk: bool) -> float:
        """Weight of the reference unit prices are compared on: a 1 kg parcel, or a one-tonne
        shipment on bulk resources."""
        return BULK_REFERENCE_KG if bulk else self.model.reference_weight

    def context(self, r: int) -> dict:
        """What bidders on resource ``r`` know about its tender this round: how many providers
        are eligible, the lane's cost of a reference unit (each eligible offer's cost over its
        provider's cost factor, averaged: the published lane cost every provider's own cost is
        a draw around) and the buyer's reserve."""
        if r not in self._context:
            offers = self.model.offers
            offs = self._eligible(r)
            bulk = bool(self.model.net.res_bulk[r])
            w = self.ref_weight(bulk)
            raw = offers.cost_parcel[offs] + offers.cost_kg[offs] * w + offers.cost_shipment[offs]
            factor = np.array([getattr(self.providers.get(int(p)), "cost_factor", 1.0)
                               for p in offers.provider[offs]], dtype=float)
            self._context[r] = {
                "n_bidders": int(np.unique(offers.provider[offs]).size),
                "lane_cost": float(np.mean(raw / factor)) if offs.size else 0.0,
                "reserve": self.reservation(offs, bulk) if offs.size else None,
            }
        return self._context[r]

    def asks(self, offs: np.ndarray, volume: float, bulk: bool, buyer_acct: int,
             fmt: str = "first_price") -> dict[str, np.ndarray]:
        """What each offer asks for ``volume`` a day from this buyer in a tender of format
        ``fmt`` (the providers' bidding, :class:`agents.provider.TenderBidding`): rates, the
        price of a reference unit (``ref``) and its cost (``cost_ref``). In a first-price tender
        bidders also know each bid's quality factor in the buyer's score (their track records
        and who held the contract before): they shade in score units."""
        r = int(self.model.offers.resource[offs[0]])
        context = self.context(r)
        if fmt == "first_price":
            context = dict(context, score_factor=self.score_factor(offs, buyer_acct, r))
        return self.model.bidding.asks(offs, volume, bulk, self.owners[buyer_acct].unique_id,
                                       ref_weight=self.ref_weight(bulk), fmt=fmt, context=context)

    def score_factor(self, offs: np.ndarray, buyer_acct: int, r: int) -> np.ndarray:
        """Each offer's quality factor in this buyer's score (price x factor = score)."""
        rel, rep = self.quality(offs)
        prev = self.model.incumbents.get((buyer_acct, r), set())
        incumbent = np.isin(self.model.offers.provider[offs], list(prev)) if prev else np.zeros(offs.size, dtype=bool)
        return self.rule.factor(SimpleNamespace(reliability=rel, reputation=rep, incumbent=incumbent))

    def quality(self, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reliability, reputation) of each offer's provider, for scoring (they do not change
        during a round: kept per set of offers)."""
        key = offs.tobytes()
        if key not in self._quality:
            self._quality[key] = self._measure_quality(offs)
        return self._quality[key]

    def _measure_quality(self, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model, offers, net = self.model, self.model.offers, self.model.net
        kind = net.res_kind[offers.resource[offs]]
        delay = net.res_delay[offers.resource[offs]] * offers.delay_mult[offs]
        reliability = np.where(kind == TRANSPORT, 1.0 - delay, np.where(kind == HANDLING, 1.0, offers.accuracy[offs]))
        return np.clip(reliability, 0.0, 1.0), model.reputation.score(offers.provider[offs])

    def spot_price(self, offs: np.ndarray, bulk: bool) -> float:
        """The buyer's outside option: today's best posted spot price of a reference unit."""
        offers = self.model.offers
        w = self.ref_weight(bulk)
        spot = (offers.cost_parcel[offs] + offers.cost_kg[offs] * w + offers.cost_shipment[offs]) \
            * (1.0 + offers.markup[offs]) * offers.spot_factor[offs]
        return float(spot.min())

    def reservation(self, offs: np.ndarray, bulk: bool) -> float:
        """The most a buyer pays per reference unit under contract: its outside option (spot)
        plus what assured capacity is worth to it (``market.reserve_premium``)."""
        return self.spot_price(offs, bulk) * (1.0 + self.cfg.reserve_premium)

    # ---- the round ----
    def run(self):
        """Tender every buyer's requests, buyers in random order: one by one, or (``package``)
        a buyer's daily resources in one combinatorial tender and its bulk ones one by one.
        Under ``contract_net`` procurement the integrators first procure their routes by the
        contract net and tender only what it left uncovered. Adaptive bidders then learn."""
        model = self.model
        requests = self.requests()
        by_buyer: dict[int, list[Request]] = {}
        for request in requests:
            by_buyer.setdefault(request.buyer_acct, []).append(request)
        if model.config.integrators.procurement == "contract_net":
            for it in model.integrators:
                covered = self.contract_net(it)
                by_buyer[it.acct] = [request for request in by_buyer.get(it.acct, [])
                                     if request.resource not in covered]
        for buyer_acct in model.rng.permutation(sorted(by_buyer)):
            buyer_requests = by_buyer[int(buyer_acct)]
            if self.cfg.auction == "package":
                daily = [request for request in buyer_requests if not request.bulk]
                if daily:
                    self.package(int(buyer_acct), daily)
                buyer_requests = [request for request in buyer_requests if request.bulk]
            for request in buyer_requests:
                self.single(request)
        model.bidding.learn(np.concatenate(self.bid_offers) if self.bid_offers else np.zeros(0, dtype=np.int64),
                            np.concatenate(self.won_offers) if self.won_offers else np.zeros(0, dtype=np.int64))

    def requests(self) -> list[Request]:
        """A request for every (buyer, resource) with planned volume and some offer, in order;
        none from a buyer whose payment record makes providers refuse it credit (it buys at spot)."""
        model = self.model
        cover = self.cfg.contract_cover
        refused = {acct for acct, owner in self.owners.items() if model.credit.refuses(owner.unique_id)}
        out = []
        for (acct, r), vol in sorted(model.plan.volumes.items()):
            if vol > 0 and r in model.offers.by_resource and acct not in refused:
                out.append(Request(acct, r, vol, vol * cover, bool(model.net.res_bulk[r])))
        return out

    def _eligible(self, r: int) -> np.ndarray:
        offers = self.model.offers
        offs = offers.by_resource.get(r, np.zeros(0, dtype=np.int64))
        return offs[offers.active[offs] & (offers.capacity[offs] > 0)]

    def _spare(self, offs: np.ndarray, bulk: bool, need: float) -> np.ndarray:
        offers = self.model.offers
        if bulk:   # bulk contracts are volume allowances, not daily slots
            return np.full(offs.size, need)
        return np.maximum(offers.capacity[offs] - self.reserved[offs], 0.0)

    def expected_price(self, asks: dict, r: int, fmt: str) -> float:
        """What the buyer expects to pay per reference unit: the best ask within its reserve
        where winners are paid their bids; under Vickrey and the clock the second best (what
        beating the runner-up costs), or the reserve when only one ask is within it."""
        reserve = self.context(r)["reserve"]
        ok = np.sort(asks["ref"][asks["ref"] <= reserve * (1.0 + 1e-12)])
        if ok.size == 0:
            return float("inf")
        if fmt in ("vickrey", "clock"):
            return float(ok[1]) if ok.size > 1 else float(reserve)
        return float(ok[0])

    def _worth_contracting(self, request: Request, asks: dict, offs: np.ndarray, fmt: str) -> bool:
        """A merchant contracts only where the saving on spot pays for running the contract."""
        if self.owners[request.buyer_acct].role != "merchant":
            return True
        spot = self.spot_price(offs, request.bulk)
        # reference prices are per parcel, per one-tonne shipment (bulk lanes) or per entry
        per_ref = BULK_REFERENCE_KG if request.bulk and self.model.net.res_kind[request.resource] == TRANSPORT \
            else 1.0
        saving = (spot - self.expected_price(asks, request.resource, fmt)) * request.volume / per_ref \
            * self.cfg.contract_days
        return saving >= self.model.config.merchants.diy_transaction_cost

    def _within_reserve(self, asks: dict, r: int) -> np.ndarray:
        """Asks the buyer accepts: none above its reserve."""
        reserve = self.context(r)["reserve"]
        return asks["ref"] <= reserve * (1.0 + 1e-12)

    def single(self, request: Request):
        """A tender for one resource, in the scenario's format (package falls back to first price)."""
        offs = self._eligible(request.resource)
        if offs.size == 0:
            return
        auction = self.cfg.auction if self.cfg.auction != "package" else "first_price"
        asks = self.asks(offs, request.need, request.bulk, request.buyer_acct, fmt=auction)
        if not self._worth_contracting(request, asks, offs, auction):
            return
        self.bid_offers.append(offs)
        self.tenders += 1
        n_bids = offs.size
        won_all = np.zeros(n_bids, dtype=bool)
        ok = self._within_reserve(asks, request.resource)
        if not ok.any():
            self.model.bidding.observe(offs, won_all, asks, auction)
            return
        bidders, kept = offs[ok], {k: v[ok] for k, v in asks.items()}
        spare = self._spare(bidders, request.bulk, request.need)
        rel, rep = self.quality(bidders)
        prev = self.model.incumbents.get((request.buyer_acct, request.resource), set())
        incumbent = np.isin(self.model.offers.provider[bidders], list(prev))
        reserve = self.context(request.resource)["reserve"]
        if auction == "clock":
            # bidders stay in while the clock is at or above their asks, offering at most the need
            result = descending_clock_auction(kept["ref"], request.need, start_price=reserve,
                                              decrement=self.cfg.clock_decrement * reserve,
                                              capacity=np.minimum(spare, request.need))
            qty = np.asarray(result.quantity, dtype=float)
            pay = np.where(qty > 0, result.price, 0.0)
            order = np.argsort(kept["ref"], kind="stable")
            second = float(kept["ref"][order[1]]) if bidders.size > 1 else float("nan")
            score = kept["ref"]
        else:
            bids = TenderBids(bidder=self.model.offers.provider[bidders], price=kept["ref"], capacity=spare,
                              reliability=rel, reputation=rep, incumbent=incumbent)
            # every bid is within the reserve; the reserve in score units (at the least favourable
            # quality factor) is what VCG values the volume no other bidder could carry at
            reserve_score = reserve * float(self.rule.factor(bids).max())
            result = award_tender(bids, request.need, rule=self.rule,
                                  min_winners=min(self.cfg.min_winners, bidders.size),
                                  max_winners=self.cfg.max_winners, payment=auction,
                                  reserve_price=reserve_score if auction == "vickrey" else None)
            qty, pay, second, score = result.quantity, result.unit_payment, result.second_price, result.score
        won = np.flatnonzero(qty > 1e-9)
        for j in won:
            self.sign(request, int(bidders[j]), float(qty[j]),
                      {k: kept[k][j] * pay[j] / kept["ref"][j] for k in RATE_KEYS}, float(kept["cost_factor"][j]),
                      n_bids=n_bids, winning=float(pay[j]), second=second, score=float(score[j]),
                      mechanism=auction)
        won_all[np.flatnonzero(ok)[won]] = True
        self.model.bidding.observe(offs, won_all, asks, auction)
        self.won_offers.append(bidders[won])
        self.model.incumbents[(request.buyer_acct, request.resource)] = \
            set(self.model.offers.provider[bidders[won]].tolist())

    def lane_directions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mode, origin territory, destination territory) of every resource; -1 where it is not
        a lane."""
        if not hasattr(self, "_directions"):
            world, net = self.model.world, self.model.net
            territories = world.territories
            origin = np.full(len(world.resources), -1, dtype=np.int64)
            dest = np.full(len(world.resources), -1, dtype=np.int64)
            for res in world.resources:
                if res.lane is not None:
                    origin[res.index] = territories.index(world.graph.nodes[res.lane.u]["territory"])
                    dest[res.index] = territories.index(world.graph.nodes[res.lane.v]["territory"])
            self._directions = (net.res_mode, origin, dest)
        return self._directions

    def package(self, buyer_acct: int, requests: list[Request]):
        """A combinatorial tender over all of a buyer's daily resources.

        Every eligible offer bids on its resource alone, for up to the need within its spare
        capacity, divisibly (the buyer may take part of it) at its ask. A provider that serves
        lanes both ways between two territories also bids on them as an all-or-nothing bundle:
        the same quantities, priced from its cost of serving them together (its lanes' costs
        less the repositioning it saves, :func:`~market.mechanisms.package.backhaul_bundles`)
        with the same ratio of ask to cost as its lane asks. The buyer's exact MILP covers each
        lane's need at least total price, a provider never winning a lane twice (alone and in a
        bundle); each accepted bid is signed for what the MILP gave it, bundles whole."""
        model, offers = self.model, self.model.offers
        n_lanes = len(requests)
        need = np.array([request.need for request in requests])
        rows_q, rows_p, rows_b, rows_div, rows_items, rows_kind = [], [], [], [], [], []
        by_provider: dict[int, list[tuple]] = {}
        bid_on: list[tuple[np.ndarray, dict]] = []
        for li, request in enumerate(requests):
            offs = self._eligible(request.resource)
            if offs.size == 0:
                continue
            asks = self.asks(offs, request.need, False, buyer_acct, fmt="package")
            if not self._worth_contracting(request, asks, offs, "package"):
                continue
            self.bid_offers.append(offs)
            bid_on.append((offs, asks))
            ok = self._within_reserve(asks, request.resource)
            spare = np.minimum(self._spare(offs, False, request.need), request.need)
            for j, off in enumerate(offs):
                if spare[j] < min(1.0, request.need) or not ok[j]:     # a whole slot, or all of a smaller need
                    continue
                q = np.zeros(n_lanes)
                q[li] = spare[j]
                asks_j = {k: float(asks[k][j]) for k in (*RATE_KEYS, "ref", "cost_ref", "cost_factor")}
                item = (li, int(off), float(spare[j]), asks_j)
                rows_q.append(q)
                rows_p.append(asks_j["ref"] * spare[j])
                rows_b.append(int(offers.provider[off]))
                rows_div.append(True)
                rows_items.append([(item, 1.0)])
                rows_kind.append("single")
                by_provider.setdefault(int(offers.provider[off]), []).append(item)
        mode, origin, dest = self.lane_directions()
        for prov, items in by_provider.items():
            if len(items) < 2:
                continue
            res = np.array([requests[li].resource for li, *_ in items])
            qty = np.array([q for _, _, q, _ in items])
            cost = np.array([a["cost_ref"] for *_, a in items])
            ask = np.array([a["ref"] for *_, a in items])
            for members, saving in backhaul_bundles(mode[res], origin[res], dest[res], qty, cost,
                                                    self.cfg.backhaul_share):
                c_total = float(qty[members] @ cost[members])
                factor = 1.0 - saving / c_total          # the bundle's cost as a share of its lanes'
                q = np.zeros(n_lanes)
                for m in members:
                    q[items[m][0]] = items[m][2]
                rows_q.append(q)
                rows_p.append(float(qty[members] @ ask[members]) * factor)
                rows_b.append(prov)
                rows_div.append(False)
                rows_items.append([(items[m], factor) for m in members])
                rows_kind.append("bundle")
        won = self._award_package(buyer_acct, requests, rows_q, rows_p, rows_b, rows_div, rows_items, rows_kind,
                                  need) if rows_q else set()
        for offs, asks in bid_on:      # learning bidders score every lane bid they made
            model.bidding.observe(offs, np.isin(offs, list(won)), asks, "package")

    def _award_package(self, buyer_acct, requests, rows_q, rows_p, rows_b, rows_div, rows_items, rows_kind,
                       need) -> set[int]:
        """Winner determination of a package tender and the contracts it signs; returns the
        offers that won something."""
        model, offers = self.model, self.model.offers
        self.tenders += 1
        quantities = np.vstack(rows_q)
        demand = np.minimum(need, quantities[np.array(rows_div)].sum(axis=0))
        award = solve_package_auction(PackageBids(bidder=np.array(rows_b), quantity=quantities,
                                                  price=np.array(rows_p)),
                                      demand, xor="lane", cover="exact", divisible=np.array(rows_div))
        won: set[int] = set()
        if not award.feasible:
            return won
        for i in np.flatnonzero(award.selected):
            share = float(award.fraction[i])
            for (li, off, qq, asks_j), factor in rows_items[i]:
                unit = asks_j["ref"] * factor
                self.sign(requests[li], off, qq * share, {k: asks_j[k] * factor for k in RATE_KEYS},
                          asks_j["cost_factor"], n_bids=len(rows_q), winning=unit, second=float("nan"),
                          score=unit, mechanism=f"package/{rows_kind[i]}")
                self.won_offers.append(np.array([off]))
                won.add(off)
                model.incumbents.setdefault((buyer_acct, requests[li].resource), set()).add(int(offers.provider[off]))
        return won

    # ---- contract net (integrators, per route) ----
    def contract_net(self, integrator) -> set[int]:
        """Procure each of the integrator's routes by the contract net; returns resources covered."""
        model, offers = self.model, self.model.offers
        covered: set[int] = set()
        routes = sorted((r, v) for (acct, r), v in model.plan.routes.items() if acct == integrator.acct and v > 0)
        award_fn = tender_award_fn(self.rule, max_winners=1, payment="first_price")
        for route, vol in routes:
            resources = [r for r in model.world.routes[route].resources if not model.net.res_bulk[r]]
            if not resources:
                continue
            need = vol * self.cfg.contract_cover
            leads = [p for p in self.providers.values() if p.in_market
                     and np.isin(offers.resource[p.offer_ids], resources).any()]
            contractors = [RouteBidder(self, p, resources, need, integrator.acct) for p in leads]
            for bidder in contractors:
                bidder.contractors = contractors
            task = Task(task_id=f"route{route}", kind="route", quantity=need,
                        attributes={"resources": tuple(resources)})
            tree = run_contract_net(task, contractors, manager=integrator.name, award_fn=award_fn, max_depth=2)
            self.tenders += 1
            tree.validate()
            by_name = {bidder.name: bidder for bidder in contractors}
            for award in tree.awards:
                lead = by_name[award.contractor]
                for r in resources:
                    if r in lead.own:
                        off, asks_j = lead.own[r]
                        q = min(award.quantity, self._spare(np.array([off]), False, need)[0])
                        if q >= 1:
                            self.sign(Request(integrator.acct, r, vol, need, False), off, q,
                                      {k: asks_j[k] for k in RATE_KEYS}, asks_j["cost_factor"],
                                      n_bids=len(tree.proposals), winning=award.unit_price, second=float("nan"),
                                      score=award.unit_price, mechanism="contract_net")
                            covered.add(r)
                for node in award.subcontracts:
                    r = node.task.attributes["resource"]
                    for sub in node.awards:
                        sub_bidder = by_name[sub.contractor]
                        off, asks_j = sub_bidder.own[r]
                        q = min(sub.quantity, self._spare(np.array([off]), False, need)[0])
                        if q < 1:
                            continue
                        factor = sub.unit_price / asks_j["ref"]
                        sub_rates = {k: asks_j[k] * factor for k in RATE_KEYS}
                        rates = {k: v * (1.0 + model.config.integrators.lead_margin) for k, v in sub_rates.items()}
                        self.sign(Request(integrator.acct, r, vol, need, False), off, q, rates, asks_j["cost_factor"],
                                  n_bids=len(node.proposals), winning=sub.unit_price, second=float("nan"),
                                  score=sub.unit_price, mechanism="contract_net/sub",
                                  lead=lead.provider, sub_rates=sub_rates)
                        covered.add(r)
        return covered

    # ---- signing ----
    def sign(self, request: Request, offer: int, qty: float, rates: dict, cost_factor: float, *, n_bids: int,
             winning: float, second: float, score: float, mechanism: str, lead=None, sub_rates=None):
        """Sign a contract for ``qty`` a day (bulk: an allowance of ``qty`` x the contract days)
        at these rates; with ``lead``, the lead provider signs and subcontracts the leg to the
        offer's provider at ``sub_rates``. A merchant pays its transaction cost."""
        model, book, offers, cfg = self.model, self.model.contracts, self.model.offers, self.cfg
        days = cfg.contract_days
        buyer = self.owners[request.buyer_acct]
        provider_uid, provider_acct = int(offers.provider[offer]), int(offers.acct[offer])
        extra = {}
        if lead is not None:     # a subcontracted leg: the buyer pays the lead, the lead pays the server
            extra = {"sub_acct": provider_acct, "sub_provider": provider_uid,
                     "sub_rate_parcel": sub_rates["rate_parcel"], "sub_rate_kg": sub_rates["rate_kg"],
                     "sub_rate_shipment": sub_rates["rate_shipment"]}
            provider_uid, provider_acct = lead.unique_id, lead.acct
        book.add(mechanism, buyer=buyer.unique_id, buyer_acct=request.buyer_acct, provider=provider_uid,
                 provider_acct=provider_acct, offer=offer, resource=request.resource,
                 service=SERVICE_OF_KIND[int(model.net.res_kind[request.resource])],
                 cost_factor=cost_factor, capacity=qty, allowance=qty * days if request.bulk else 0.0,
                 volume_commitment=0.0 if request.bulk else cfg.commitment_share * qty * days,
                 sla_days=sla_days(model.net, model.clearance, request.resource),
                 penalty=cfg.late_penalty_share,
                 start=self.day, end=self.day + days, status=SIGNED, round=self.day, n_bids=n_bids,
                 winning_bid=winning, second_bid=second, score=score, **rates, **extra)
        if not request.bulk:
            self.reserved[offer] += qty
        self.contracts_signed += 1
        if buyer.role == "merchant":
            model.ledger.transfer(request.buyer_acct, model.acct_overheads,
                                  int(to_cents(model.config.merchants.diy_transaction_cost)), "transaction_cost")


def tender_round(model: Marketplace, day: int) -> TenderRound:
    """Run one round of tenders for every (buyer, resource) in the current plan."""
    rnd = TenderRound(model, day)
    rnd.run()
    model.tenders_today = rnd.tenders
    return rnd
