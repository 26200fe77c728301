"""Daily capacity allocation: contract capacity first, then spot, cheapest first.

A plain function over arrays, vectorized over every resource and buyer at once (no Python
loop over resources, buyers or contracts), so it can be tested without a model.
"""

from __future__ import annotations

import numpy as np


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
    order = np.argsort(keys, kind="stable")      # stable: keeps priority order within a key
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
        corder = np.argsort(ckey, kind="stable")
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


def call_auction_allocate(resource: np.ndarray, bid: np.ndarray, offer_resource: np.ndarray,
                          offer_spare: np.ndarray, offer_ask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A uniform-price call auction (sealed double auction) per resource, all resources at once.

    Units bid ``bid`` (their buyer's willingness to pay for a slot today); offers ask
    ``offer_ask`` per slot for up to ``offer_spare`` slots. In each resource the highest bids
    meet the lowest asks while bid >= ask; every trade there clears at one price, the midpoint
    of the last accepted bid and the last accepted ask. Ties in bids keep the units' order.

    Returns (offer index or -1, clearing price or nan) per unit.
    """
    resource = np.asarray(resource, dtype=np.int64)
    n = resource.size
    offer_of = np.full(n, -1, dtype=np.int64)
    price = np.full(n, np.nan)
    if n == 0 or offer_resource.size == 0:
        return offer_of, price
    # units by resource, highest bid first (stable: earlier units first among equal bids)
    order = np.lexsort((-np.asarray(bid, dtype=np.float64), resource))
    oorder = np.lexsort((offer_ask, offer_resource))
    spare = np.floor(np.maximum(offer_spare[oorder], 0) + 1e-9).astype(np.int64)
    slot = np.full(n, -1, dtype=np.int64)
    slot[order] = _fill_sorted(resource[order], offer_resource[oorder].astype(np.int64), spare)
    has = slot >= 0
    ask = np.full(n, np.inf)
    ask[has] = offer_ask[oorder][slot[has]]
    trade = has & (np.asarray(bid) >= ask)
    # trades form a prefix of each resource's ranking; keep only that prefix
    rs = resource[order]
    t_sorted = trade[order]
    first = np.ones(n, dtype=bool)
    first[1:] = rs[1:] != rs[:-1]
    broken = np.cumsum(~t_sorted) - np.maximum.accumulate(np.where(first, np.cumsum(~t_sorted) - (~t_sorted), 0))
    prefix = t_sorted & (broken == 0)
    trade[order] = prefix
    if trade.any():
        # the marginal (last) accepted bid and ask of each resource set its price
        tr = order[prefix]
        r_tr = resource[tr]
        last = np.ones(tr.size, dtype=bool)
        last[:-1] = r_tr[1:] != r_tr[:-1]
        p_res = dict(zip(r_tr[last].tolist(), ((np.asarray(bid)[tr[last]] + ask[tr[last]]) / 2).tolist()))
        price[trade] = [p_res[r] for r in resource[trade].tolist()]
        offer_of[trade] = oorder[slot[trade]]
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
