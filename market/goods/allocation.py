"""Daily capacity allocation: contract capacity first, then spot, cheapest first (or in a
double auction per resource).

Plain functions over arrays, so they can be tested without a model. The daily allocation is
vectorized over every resource and buyer at once (no Python loop over resources, buyers or
contracts); the double auctions clear each resource's market with the mechanisms of
:mod:`market.mechanisms.double_auction`.
"""

from __future__ import annotations

import numpy as np

from market.mechanisms.double_auction import call_market_clear, zi_continuous_double_auction


def stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``, faster where the keys span fewer than 65,536 values:
    numpy sorts 16-bit integers by radix (linear time) and wider ones by timsort, and a stable
    order is the same permutation whichever algorithm finds it."""
    keys = np.asarray(keys)
    if keys.size > 64 and keys.dtype.kind in "iu":
        lo, hi = int(keys.min()), int(keys.max())
        if hi - lo < 65536:
            return np.argsort((keys - lo).astype(np.uint16), kind="stable")
    return np.argsort(keys, kind="stable")


def _rank_within(keys_sorted: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal keys of a sorted array."""
    n = keys_sorted.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.ones(n, dtype=bool)
    first[1:] = keys_sorted[1:] != keys_sorted[:-1]
    starts = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    return np.arange(n) - starts


def _fill(keys: np.ndarray, slot_keys: np.ndarray, slot_cap: np.ndarray) -> np.ndarray:
    """Give each item (keys, in priority order) a slot with the same key, filling slots in order.

    slot_keys must be sorted; slot_cap are whole units. Returns the slot index per item, or -1
    when the item's key has no capacity left.
    """
    out = np.full(keys.size, -1, dtype=np.int64)
    if keys.size == 0 or slot_keys.size == 0:
        return out
    order = stable_order(keys)      # stable: keeps priority order within a key
    out[order] = _fill_sorted(keys[order], slot_keys, slot_cap)
    return out


def allocate_capacity(resource: np.ndarray, buyer: np.ndarray,
                      contract_resource: np.ndarray, contract_buyer: np.ndarray,
                      contract_remaining: np.ndarray, contract_offer: np.ndarray,
                      offer_resource: np.ndarray, offer_spare: np.ndarray,
                      offer_price: np.ndarray, contracts_use_spare: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Allocate today's capacity to units waiting to start a stage.

    Units are given in priority order (first come, first served). A unit first uses the
    remaining capacity of its buyer's contracts on its resource (in contract order); units
    without contract capacity buy spot from the resource's offers, cheapest first, up to each
    offer's spare capacity (capacity not used and not held for contracts today; with
    ``contracts_use_spare``, capacity not used, less what these units took under contract:
    contract capacity nobody claims is sold spot). Units that get neither wait.

    Returns (contract index or -1, offer index or -1) per unit.
    """
    resource = np.asarray(resource, dtype=np.int64)
    buyer = np.asarray(buyer, dtype=np.int64)
    n = resource.size
    contract_of = np.full(n, -1, dtype=np.int64)
    offer_of = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return contract_of, offer_of

    scale = int(max(buyer.max(initial=0), np.max(contract_buyer, initial=0))) + 1
    # 1. contracts, grouped by (resource, buyer)
    if contract_resource.size:
        ckey = contract_resource.astype(np.int64) * scale + contract_buyer
        corder = stable_order(ckey)
        slot = _fill(resource * scale + buyer, ckey[corder],
                     np.floor(contract_remaining[corder] + 1e-9).astype(np.int64))
        has = slot >= 0
        contract_of[has] = corder[slot[has]]
        offer_of[has] = contract_offer[contract_of[has]]

    # 2. spot, grouped by resource, cheapest offer first
    free = np.flatnonzero(contract_of < 0)
    if free.size and offer_resource.size:
        oorder = np.lexsort((offer_price, offer_resource))
        if contracts_use_spare and free.size < n:
            offer_spare = offer_spare - np.bincount(offer_of[offer_of >= 0], minlength=offer_resource.size)
        spare = np.floor(np.maximum(offer_spare[oorder], 0) + 1e-9).astype(np.int64)
        slot = _fill(resource[free], offer_resource[oorder].astype(np.int64), spare)
        has = slot >= 0
        offer_of[free[has]] = oorder[slot[has]]
    return contract_of, offer_of


def _double_auction_sides(resource: np.ndarray, offer_resource: np.ndarray, offer_spare: np.ndarray):
    """Per resource with units waiting: its units and its offers with a whole spare slot."""
    slots = np.floor(np.maximum(offer_spare, 0) + 1e-9).astype(np.int64)
    for r in np.unique(resource).tolist():
        offs = np.flatnonzero((offer_resource == r) & (slots > 0))
        if offs.size:
            yield np.flatnonzero(resource == r), offs, slots[offs]


def call_auction_allocate(resource: np.ndarray, bid: np.ndarray, offer_resource: np.ndarray,
                          offer_spare: np.ndarray, offer_ask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A uniform-price call auction (sealed double auction) per resource.

    Units bid ``bid`` (their buyer's willingness to pay for a slot today); offers ask
    ``offer_ask`` per slot for up to ``offer_spare`` slots. Each resource's market is cleared
    by :func:`market.mechanisms.double_auction.call_market_clear`: the most slots that can
    trade, the highest bids meeting the lowest asks (ties keep the units' and the offers'
    order), all at one price, the middle of the prices that clear that volume. The units that
    trade take the traded slots in order, highest bid on the cheapest offer.

    Returns (offer index or -1, clearing price or nan) per unit.
    """
    resource = np.asarray(resource, dtype=np.int64)
    bid = np.asarray(bid, dtype=np.float64)
    n = resource.size
    offer_of = np.full(n, -1, dtype=np.int64)
    price = np.full(n, np.nan)
    if n == 0 or offer_resource.size == 0:
        return offer_of, price
    for units, offs, slots in _double_auction_sides(resource, offer_resource, offer_spare):
        cleared = call_market_clear(bid[units], np.ones(units.size), offer_ask[offs], slots.astype(float))
        if cleared.volume <= 0:
            continue
        traded = units[np.lexsort((units, -bid[units]))]
        traded = traded[cleared.bid_fill[np.searchsorted(units, traded)] > 0.5]
        o = np.lexsort((offs, offer_ask[offs]))
        sold = np.rint(cleared.ask_fill[o]).astype(np.int64)
        offer_of[traded] = np.repeat(offs[o], sold)[: traded.size]
        price[traded] = cleared.price
    return offer_of, price


def zi_auction_allocate(resource: np.ndarray, bid: np.ndarray, offer_resource: np.ndarray,
                        offer_spare: np.ndarray, offer_ask: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A continuous double auction per resource with zero-intelligence traders (Gode & Sunder
    1993): :func:`market.mechanisms.double_auction.zi_continuous_double_auction`, budget
    constrained (a unit never bids above ``bid``, an offer never asks below ``offer_ask``).
    Every spare slot is a trader selling one unit, so sellers take part as often as buyers;
    each trade is a unit buying a slot at its own price.

    Returns (offer index or -1, trade price or nan) per unit.
    """
    resource = np.asarray(resource, dtype=np.int64)
    bid = np.asarray(bid, dtype=np.float64)
    n = resource.size
    offer_of = np.full(n, -1, dtype=np.int64)
    price = np.full(n, np.nan)
    if n == 0 or offer_resource.size == 0:
        return offer_of, price
    for units, offs, slots in _double_auction_sides(resource, offer_resource, offer_spare):
        # every slot is a seller of one unit (an offer's spare space, sold slot by slot)
        slots = np.minimum(slots, units.size)          # no offer can sell more slots than units want
        slot_offer = np.repeat(offs, slots)
        res = zi_continuous_double_auction(bid[units], offer_ask[slot_offer], rng, budget_constrained=True)
        offer_of[units[res.buyer]] = slot_offer[res.seller]
        price[units[res.buyer]] = res.price
    return offer_of, price


def _fill_sorted(keys_sorted: np.ndarray, slot_keys: np.ndarray, slot_cap: np.ndarray) -> np.ndarray:
    """Like :func:`_fill` for keys already in priority order (no re-sorting)."""
    n = keys_sorted.size
    if n == 0 or slot_keys.size == 0:
        return np.full(n, -1, dtype=np.int64)
    rank = _rank_within(keys_sorted)
    cum = np.cumsum(slot_cap)
    lo = np.searchsorted(slot_keys, keys_sorted, side="left")
    hi = np.searchsorted(slot_keys, keys_sorted, side="right")
    base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0)
    top = np.where(hi > 0, cum[np.maximum(hi - 1, 0)], 0)
    ok = (hi > lo) & (rank < top - base)
    pos = np.searchsorted(cum, base + rank, side="right")
    return np.where(ok, pos, -1)
