"""Tender rounds: buyers put their planned volumes out to tender and sign contracts.

Each buyer (a 4PL for its pooled volume, or a merchant doing it itself) issues a request for
quote per resource it will use. The providers with offers on that resource bid their
cost-plus rates for that volume (passing on economies of density); a sealed-bid reverse
auction awards the volume to the best bids within their spare capacity.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from market.contracts import ACTIVE, SIGNED
from market.ledger import to_cents
from market.world import EXPORT, HANDLING, IMPORT, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

SERVICE_OF_KIND = {TRANSPORT: 0, HANDLING: 1, EXPORT: 2, IMPORT: 2}   # lane, warehouse, brokerage


def sla_days(model: Marketplace, r: int) -> int:
    """Days a stage may take under contract before it is late (the provider's share of it)."""
    net, ct = model.net, model.clearance
    kind = int(net.res_kind[r])
    t = int(net.res_territory[r])
    if kind == TRANSPORT:
        return int(math.ceil(net.res_tri[r, 2])) + 1
    if kind == HANDLING:
        return int(math.ceil(net.res_tri[r, 2])) + 1
    if kind == EXPORT:
        return int(math.ceil(ct.export_clearance[t, 2])) + 1
    g = int(net.res_regime[r])
    return int(math.ceil(ct.clearance[t, g, 2] + ct.inspection_days[t, 2])) + 1


def first_price_award(price: np.ndarray, spare: np.ndarray, need: float, max_winners: int):
    """Lowest asks first until the need is covered (at most max_winners); pay as bid.

    Returns (indices of winners, quantities, second-best price or NaN).
    """
    order = np.argsort(price, kind="stable")
    winners, qty = [], []
    left = need
    for j in order:
        if left <= 1e-9 or len(winners) >= max_winners:
            break
        q = min(spare[j], left)
        if q < min(1.0, need):
            continue
        winners.append(int(j))
        qty.append(float(q))
        left -= q
    losers = [j for j in order if j not in winners]
    second = float(price[losers[0]]) if losers else float("nan")
    return np.array(winners, dtype=np.int64), np.array(qty), second


def tender_round(model: Marketplace, day: int):
    """Run one round of tenders for every (buyer, resource) in the current plan."""
    cfg = model.config
    book, offers, net = model.contracts, model.offers, model.net
    days = cfg.market.contract_days
    live = np.flatnonzero(((book.status == ACTIVE) | (book.status == SIGNED)) & (book.end > day))
    daily = ~net.res_bulk[book.resource[live]]
    reserved = np.bincount(book.offer[live[daily]], weights=book.capacity[live[daily]], minlength=offers.n)
    owners = {a.acct: a for a in model.merchants + model.integrators}
    items = sorted(model.plan.items())
    for i in model.rng.permutation(len(items)):
        (buyer_acct, r), vol = items[int(i)]
        if vol <= 0:
            continue
        buyer = owners[buyer_acct]
        diy = buyer.role == "merchant"
        bulk = bool(net.res_bulk[r])
        offs = offers.by_resource.get(r)
        if offs is None:
            continue
        offs = offs[offers.active[offs]]
        if offs.size == 0:
            continue
        need = vol * cfg.market.contract_cover
        rates = {k: np.zeros(offs.size) for k in ("rate_parcel", "rate_kg", "rate_shipment", "rate_storage", "cost_factor")}
        provider_of = {p.unique_id: p for p in model.carriers + model.operators + model.brokers}
        for j, o in enumerate(offs):
            b = provider_of[int(offers.provider[o])].bid_rates(np.array([o]), need, bulk)
            for k in rates:
                rates[k][j] = b[k][0]
        w = model.reference_weight
        price = rates["rate_parcel"] + rates["rate_kg"] * (w if not bulk else 1.0) + rates["rate_shipment"] * (0.0 if not bulk else 1.0 / max(vol, 1e-9))
        spare = np.inf * np.ones(offs.size) if bulk else np.maximum(offers.capacity[offs] - reserved[offs], 0.0)
        if diy:
            # a merchant contracts only where the saving on spot covers the cost of the contract
            spot = offers.cost_parcel[offs] + offers.cost_kg[offs] * w
            spot = (spot * (1.0 + offers.markup[offs]) * offers.spot_factor[offs]).min() if not bulk else price.min() * (1 + cfg.market.spot_markup)
            saving = (spot - price.min()) * vol * days
            if saving < cfg.merchants.diy_transaction_cost:
                continue
        winners, qty, second = first_price_award(price, spare, need, cfg.market.max_winners)
        model.tenders_today += 1
        for j, q in zip(winners, qty):
            o = int(offs[j])
            cid = book.add(
                cfg.market.auction,
                buyer=buyer.unique_id, buyer_acct=buyer_acct, provider=int(offers.provider[o]),
                provider_acct=int(offers.acct[o]), offer=o, resource=r,
                service=SERVICE_OF_KIND[int(net.res_kind[r])],
                rate_parcel=rates["rate_parcel"][j], rate_kg=rates["rate_kg"][j],
                rate_shipment=rates["rate_shipment"][j], rate_storage=rates["rate_storage"][j],
                cost_factor=rates["cost_factor"][j], capacity=q if not bulk else vol * cfg.market.contract_cover,
                allowance=q * days if bulk else 0.0, volume_commitment=0.0,
                sla_days=sla_days(model, r),
                penalty=cfg.market.late_penalty_share, start=day, end=day + days, status=SIGNED,
                round=day, n_bids=offs.size, winning_bid=float(price[j]), second_bid=second,
                score=float(price[j]))
            if not bulk:
                reserved[o] += q
            if diy:
                model.ledger.transfer(buyer_acct, model.acct_overheads,
                                      int(to_cents(cfg.merchants.diy_transaction_cost)), "transaction_cost")
            del cid
