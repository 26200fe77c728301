"""Tender rounds: buyers put their planned volumes out to tender and sign contracts.

Each buyer (a 4PL for its pooled volume, or a merchant doing it itself) issues a request for
quote per resource it will use. The providers with offers there bid their rates for that
volume (cost, less the economies of density the volume gives, plus their strategy's markup
and a surcharge for a buyer with poor credit). Winner determination and payment follow the
scenario's format (``market.auction``):

* ``first_price`` - sealed bids scored on price, reliability, reputation and incumbency,
  awarded by an exact MILP with side constraints (min / max winners, capacities); pay as bid;
* ``vickrey`` - the same winner determination with VCG payments;
* ``clock`` - a descending clock auction; every winner is paid the clearing price;
* ``package`` - a buyer tenders all its lanes at once; providers bid on single lanes and on
  the bundle of lanes they serve (with a scope discount); winners by an exact MILP.

Integrators may instead procure each route by the contract net protocol
(``integrators.procurement = "contract_net"``): a lead provider bids for the whole route and
subcontracts the legs it does not serve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agents.provider import RouteBidder
from market.money.contracts import SIGNED
from market.money.ledger import to_cents
from market.mechanisms.auctions import ScoreRule, TenderBids, award_tender, descending_clock_auction
from market.mechanisms.contract_net import Task, run_contract_net, tender_award_fn
from market.mechanisms.package import PackageBids, solve_package_auction
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
    buyer_acct: int
    resource: int
    volume: float     # per day: parcels, kg (bulk lanes) or entries (bulk customs)
    need: float       # volume x cover
    bulk: bool


class TenderRound:
    """One round of tenders on a given day (a fresh object each round)."""

    def __init__(self, model: Marketplace, day: int):
        self.m = model
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

    # ---- what providers ask ----
    def asks(self, offs: np.ndarray, volume: float, bulk: bool, buyer_acct: int) -> dict[str, np.ndarray]:
        """Rates each offer asks for ``volume`` a day from this buyer (the providers' bidding,
        :class:`agents.provider.TenderBidding`), and its reference price."""
        out = self.m.bidding.asks(offs, volume, bulk, self.owners[buyer_acct].unique_id)
        out["ref"] = self.reference_price(out, bulk)
        return out

    def reference_price(self, rates: dict, bulk: bool) -> np.ndarray:
        w = BULK_REFERENCE_KG if bulk else self.m.reference_weight
        return rates["rate_parcel"] + rates["rate_kg"] * w + rates["rate_shipment"]

    def quality(self, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reliability, reputation) of each offer's provider, for scoring."""
        m, o, net = self.m, self.m.offers, self.m.net
        kind = net.res_kind[o.resource[offs]]
        delay = net.res_delay[o.resource[offs]] * o.delay_mult[offs]
        reliability = np.where(kind == TRANSPORT, 1.0 - delay, np.where(kind == HANDLING, 1.0, o.accuracy[offs]))
        return np.clip(reliability, 0.0, 1.0), m.reputation.score(o.provider[offs])

    def reservation(self, offs: np.ndarray, bulk: bool) -> float:
        """The most a buyer pays per reference unit: a quarter over today's best spot price."""
        o = self.m.offers
        w = BULK_REFERENCE_KG if bulk else self.m.reference_weight
        spot = (o.cost_parcel[offs] + o.cost_kg[offs] * w + o.cost_shipment[offs]) \
            * (1.0 + o.markup[offs]) * o.spot_factor[offs]
        return float(spot.min()) * 1.25

    # ---- the round ----
    def run(self):
        m = self.m
        requests = self.requests()
        by_buyer: dict[int, list[Request]] = {}
        for rq in requests:
            by_buyer.setdefault(rq.buyer_acct, []).append(rq)
        if m.config.integrators.procurement == "contract_net":
            for it in m.integrators:
                covered = self.contract_net(it)
                by_buyer[it.acct] = [rq for rq in by_buyer.get(it.acct, []) if rq.resource not in covered]
        for b in m.rng.permutation(sorted(by_buyer)):
            reqs = by_buyer[int(b)]
            if self.cfg.auction == "package":
                daily = [rq for rq in reqs if not rq.bulk]
                if daily:
                    self.package(int(b), daily)
                reqs = [rq for rq in reqs if rq.bulk]
            for rq in reqs:
                self.single(rq)
        m.bidding.learn(np.concatenate(self.bid_offers) if self.bid_offers else np.zeros(0, dtype=np.int64),
                        np.concatenate(self.won_offers) if self.won_offers else np.zeros(0, dtype=np.int64))

    def requests(self) -> list[Request]:
        m = self.m
        cover = self.cfg.contract_cover
        out = []
        for (acct, r), vol in sorted(m.plan.volumes.items()):
            if vol > 0 and r in m.offers.by_resource:
                out.append(Request(acct, r, vol, vol * cover, bool(m.net.res_bulk[r])))
        return out

    def _eligible(self, r: int) -> np.ndarray:
        o = self.m.offers
        offs = o.by_resource.get(r, np.zeros(0, dtype=np.int64))
        return offs[o.active[offs] & (o.capacity[offs] > 0)]

    def _spare(self, offs: np.ndarray, bulk: bool, need: float) -> np.ndarray:
        o = self.m.offers
        if bulk:   # bulk contracts are volume allowances, not daily slots
            return np.full(offs.size, need)
        return np.maximum(o.capacity[offs] - self.reserved[offs], 0.0)

    def _worth_contracting(self, rq: Request, asks: dict, offs: np.ndarray) -> bool:
        """A merchant contracts only where the saving on spot pays for running the contract."""
        if self.owners[rq.buyer_acct].role != "merchant":
            return True
        spot = self.reservation(offs, rq.bulk) / 1.25
        # reference prices are per parcel, per one-tonne shipment (bulk lanes) or per entry
        per_ref = BULK_REFERENCE_KG if rq.bulk and self.m.net.res_kind[rq.resource] == TRANSPORT else 1.0
        saving = (spot - asks["ref"].min()) * rq.volume / per_ref * self.cfg.contract_days
        return saving >= self.m.config.merchants.diy_transaction_cost

    def single(self, rq: Request):
        """A tender for one resource, in the scenario's format (package falls back to first price)."""
        offs = self._eligible(rq.resource)
        if offs.size == 0:
            return
        a = self.asks(offs, rq.need, rq.bulk, rq.buyer_acct)
        if not self._worth_contracting(rq, a, offs):
            return
        spare = self._spare(offs, rq.bulk, rq.need)
        rel, rep = self.quality(offs)
        prev = self.m.incumbents.get((rq.buyer_acct, rq.resource), set())
        incumbent = np.isin(self.m.offers.provider[offs], list(prev))
        fmt = self.cfg.auction if self.cfg.auction != "package" else "first_price"
        reserve = self.reservation(offs, rq.bulk)
        self.bid_offers.append(offs)
        self.tenders += 1
        if fmt == "clock":
            res = descending_clock_auction(a["ref"], rq.need, start_price=reserve,
                                           decrement=self.cfg.clock_decrement * reserve, capacity=spare)
            qty = np.asarray(res.quantity, dtype=float)
            pay = np.where(qty > 0, res.price, 0.0)
            order = np.argsort(a["ref"], kind="stable")
            second = float(a["ref"][order[1]]) if offs.size > 1 else float("nan")
            score = a["ref"]
        else:
            bids = TenderBids(bidder=self.m.offers.provider[offs], price=a["ref"], capacity=spare,
                              reliability=rel, reputation=rep, incumbent=incumbent)
            # the buyer's reservation price, in score units at the least favourable quality
            # factor: no bid is excluded unless its price itself exceeds the reservation
            reserve_score = reserve * float(self.rule.factor(bids).max())
            res = award_tender(bids, rq.need, rule=self.rule,
                               min_winners=min(self.cfg.min_winners, offs.size),
                               max_winners=self.cfg.max_winners, payment=fmt,
                               reserve_price=reserve_score if fmt == "vickrey" else None)
            qty, pay, second, score = res.quantity, res.unit_payment, res.second_price, res.score
        won = np.flatnonzero(qty > 1e-9)
        for j in won:
            self.sign(rq, int(offs[j]), float(qty[j]), {k: a[k][j] * pay[j] / a["ref"][j] for k in RATE_KEYS},
                      float(a["cost_factor"][j]), n_bids=offs.size, winning=float(pay[j]),
                      second=second, score=float(score[j]), mechanism=fmt)
        self.won_offers.append(offs[won])
        self.m.incumbents[(rq.buyer_acct, rq.resource)] = set(self.m.offers.provider[offs[won]].tolist())

    def package(self, buyer_acct: int, reqs: list[Request]):
        """A combinatorial tender over all of a buyer's daily resources."""
        m, o = self.m, self.m.offers
        lanes = [rq.resource for rq in reqs]
        need = np.array([rq.need for rq in reqs])
        L = len(lanes)
        rows_q, rows_p, rows_b, rows_kind = [], [], [], []
        by_provider: dict[int, list[tuple[int, int, float, dict]]] = {}
        for li, rq in enumerate(reqs):
            offs = self._eligible(rq.resource)
            if offs.size == 0:
                continue
            a = self.asks(offs, rq.need, False, buyer_acct)
            if not self._worth_contracting(rq, a, offs):
                continue
            spare = np.minimum(self._spare(offs, False, rq.need), rq.need)
            self.bid_offers.append(offs)
            for j, off in enumerate(offs):
                if spare[j] < 1:
                    continue
                q = np.zeros(L)
                q[li] = spare[j]
                asks_j = {k: a[k][j] for k in (*RATE_KEYS, "ref", "cost_factor")}
                rows_q.append(q)
                rows_p.append(a["ref"][j] * spare[j])
                rows_b.append(int(o.provider[off]))
                rows_kind.append(("single", [(li, int(off), float(spare[j]), asks_j)]))
                by_provider.setdefault(int(o.provider[off]), []).append((li, int(off), float(spare[j]), asks_j))
        disc = 1.0 - self.cfg.package_discount
        for prov, items in by_provider.items():
            lanes_of = {li for li, *_ in items}
            if len(lanes_of) < 2:
                continue
            # the provider's bundle: its cheapest offer on each lane it serves, at a scope discount
            best = {}
            for li, off, q, asks_j in items:
                if li not in best or asks_j["ref"] < best[li][3]["ref"]:
                    best[li] = (li, off, q, asks_j)
            q = np.zeros(L)
            price = 0.0
            for li, off, qq, asks_j in best.values():
                q[li] = qq
                price += asks_j["ref"] * qq * disc
            rows_q.append(q)
            rows_p.append(price)
            rows_b.append(prov)
            rows_kind.append(("bundle", list(best.values())))
        if not rows_q:
            return
        self.tenders += 1
        Q = np.vstack(rows_q)
        demand = np.minimum(need, Q.sum(axis=0))
        award = solve_package_auction(PackageBids(bidder=np.array(rows_b), quantity=Q, price=np.array(rows_p)),
                                      demand, xor=True, cover="at_least")
        if not award.feasible:
            return
        # give each lane's need to the selected bids, cheapest per unit first
        left = demand.copy()
        chosen = []
        for i in np.flatnonzero(award.selected):
            kind, items = rows_kind[i]
            f = disc if kind == "bundle" else 1.0
            for li, off, qq, asks_j in items:
                chosen.append((asks_j["ref"] * f, li, off, qq, asks_j, f, kind))
        chosen.sort(key=lambda t: (t[1], t[0]))
        for unit, li, off, qq, asks_j, f, kind in chosen:
            q = min(qq, left[li])
            if q < 1e-9:
                continue
            left[li] -= q
            self.sign(reqs[li], off, q, {k: asks_j[k] * f for k in RATE_KEYS}, asks_j["cost_factor"],
                      n_bids=len(rows_q), winning=unit, second=float("nan"), score=unit,
                      mechanism=f"package/{kind}")
            self.won_offers.append(np.array([off]))
            m.incumbents.setdefault((buyer_acct, reqs[li].resource), set()).add(int(o.provider[off]))

    # ---- contract net (integrators, per route) ----
    def contract_net(self, integrator) -> set[int]:
        """Procure each of the integrator's routes by the contract net; returns resources covered."""
        m, o = self.m, self.m.offers
        covered: set[int] = set()
        routes = sorted((r, v) for (acct, r), v in m.plan.routes.items() if acct == integrator.acct and v > 0)
        award_fn = tender_award_fn(self.rule, max_winners=1, payment="first_price")
        for route, vol in routes:
            res = [r for r in m.world.routes[route].resources if not m.net.res_bulk[r]]
            if not res:
                continue
            need = vol * self.cfg.contract_cover
            leads = [p for p in self.providers.values() if p.in_market
                     and np.isin(o.resource[p.offer_ids], res).any()]
            contractors = [RouteBidder(self, p, res, need, integrator.acct) for p in leads]
            for c in contractors:
                c.contractors = contractors
            task = Task(task_id=f"route{route}", kind="route", quantity=need,
                        attributes={"resources": tuple(res)})
            tree = run_contract_net(task, contractors, manager=integrator.name, award_fn=award_fn, max_depth=2)
            self.tenders += 1
            tree.validate()
            by_name = {c.name: c for c in contractors}
            for award in tree.awards:
                lead = by_name[award.contractor]
                for r in res:
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
                        sc = by_name[sub.contractor]
                        off, asks_j = sc.own[r]
                        q = min(sub.quantity, self._spare(np.array([off]), False, need)[0])
                        if q < 1:
                            continue
                        f = sub.unit_price / asks_j["ref"]
                        sub_rates = {k: asks_j[k] * f for k in RATE_KEYS}
                        rates = {k: v * (1.0 + m.config.integrators.lead_margin) for k, v in sub_rates.items()}
                        self.sign(Request(integrator.acct, r, vol, need, False), off, q, rates, asks_j["cost_factor"],
                                  n_bids=len(node.proposals), winning=sub.unit_price, second=float("nan"),
                                  score=sub.unit_price, mechanism="contract_net/sub",
                                  lead=lead.provider, sub_rates=sub_rates)
                        covered.add(r)
        return covered

    # ---- signing ----
    def sign(self, rq: Request, offer: int, qty: float, rates: dict, cost_factor: float, *, n_bids: int,
             winning: float, second: float, score: float, mechanism: str, lead=None, sub_rates=None):
        m, book, o, cfg = self.m, self.m.contracts, self.m.offers, self.cfg
        days = cfg.contract_days
        buyer = self.owners[rq.buyer_acct]
        provider_uid, provider_acct = int(o.provider[offer]), int(o.acct[offer])
        extra = {}
        if lead is not None:     # a subcontracted leg: the buyer pays the lead, the lead pays the server
            extra = {"sub_acct": provider_acct, "sub_provider": provider_uid,
                     "sub_rate_parcel": sub_rates["rate_parcel"], "sub_rate_kg": sub_rates["rate_kg"],
                     "sub_rate_shipment": sub_rates["rate_shipment"]}
            provider_uid, provider_acct = lead.unique_id, lead.acct
        book.add(mechanism, buyer=buyer.unique_id, buyer_acct=rq.buyer_acct, provider=provider_uid,
                 provider_acct=provider_acct, offer=offer, resource=rq.resource,
                 service=SERVICE_OF_KIND[int(m.net.res_kind[rq.resource])],
                 cost_factor=cost_factor, capacity=qty, allowance=qty * days if rq.bulk else 0.0,
                 volume_commitment=0.0 if rq.bulk else cfg.commitment_share * qty * days,
                 sla_days=sla_days(m.net, m.clearance, rq.resource), penalty=cfg.late_penalty_share,
                 start=self.day, end=self.day + days, status=SIGNED, round=self.day, n_bids=n_bids,
                 winning_bid=winning, second_bid=second, score=score, **rates, **extra)
        if not rq.bulk:
            self.reserved[offer] += qty
        self.contracts_signed += 1
        if buyer.role == "merchant":
            m.ledger.transfer(rq.buyer_acct, m.acct_overheads,
                              int(to_cents(m.config.merchants.diy_transaction_cost)), "transaction_cost")


def tender_round(model: Marketplace, day: int) -> TenderRound:
    """Run one round of tenders for every (buyer, resource) in the current plan."""
    rnd = TenderRound(model, day)
    rnd.run()
    model.tenders_today = rnd.tenders
    return rnd
