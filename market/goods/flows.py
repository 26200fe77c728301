"""The daily parcel engine: stages start under capacity, take their time, end; money moves.

Each day, parcels whose current stage ends are finished (lost, damaged, late penalties,
delivered), and parcels waiting for a stage get capacity (contract first, then spot) and
start it. Both repeat until nothing changes, so zero-day stages (a same-day hand-over) chain
within the day. Everything is vectorized over parcels; money is posted to the ledger in
arrays and consolidated per day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.goods.allocation import allocate_capacity, call_auction_allocate
from market.world.customs import triangular, whole_days
from market.money.claims import DAMAGE, INSURANCE, LOSS
from market.money.ledger import to_cents
from market.goods.parcels import DELIVERED, IN_STAGE, LOST, WAITING
from market.world import EXPORT, HANDLING, IMPORT, REGIMES, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

PAY_KIND = {TRANSPORT: "freight", HANDLING: "handling", EXPORT: "brokerage", IMPORT: "brokerage"}


class ParcelFlow:
    """Moves the parcel table through its stages, one day at a time."""

    def __init__(self, model: Marketplace):
        self.m = model
        net = model.net
        self.route_res = net.route_res
        self.route_regime = net.route_regime
        self.route_handoff = net.route_handoff
        self.res_kind = net.res_kind
        self.res_territory = net.res_territory
        self.res_tri = net.res_tri
        self.res_delay = net.res_delay
        self.res_delay_tri = net.res_delay_tri
        self.res_loss = net.res_loss
        self.res_damage = net.res_damage
        self.res_mode = net.res_mode
        self.ct = model.clearance
        # today's counters (read by the metrics)
        self.reset_counters()

    def reset_counters(self):
        n_modes = len(self.m.net.modes)
        self.legs_started = 0
        self.spot_legs = 0
        self.contract_rate_sum = np.zeros(n_modes)
        self.contract_rate_n = np.zeros(n_modes)
        self.spot_rate_sum = np.zeros(n_modes)
        self.spot_rate_n = np.zeros(n_modes)
        self.penalties_cents = 0
        self.claims_cents = 0
        self.service_credits_cents = 0
        self.inspections = 0
        self.holds = 0
        self.subcontracted_cents = 0
        self.auction_trades = 0

    # ------------------------------------------------------------------------------------
    def advance(self, day: int):
        """Finish and start stages until the day settles."""
        P = self.m.parcels
        for _ in range(4 * P.max_stages + 4):
            n = P.n
            status = P["status"]
            ending = np.flatnonzero((status == IN_STAGE) & (P["end_day"] <= day))
            if ending.size:
                self._finish(ending, day)
            waiting = np.flatnonzero((P["status"][:n] == WAITING) & (P["ready_day"][:n] <= day))
            started = self._start(waiting, day) if waiting.size else 0
            if ending.size == 0 and started == 0:
                break
        # parcels still queued at the end of the day waited a day for capacity
        queued = (P["status"] == WAITING) & (P["ready_day"] <= day)
        P["wait_days"][queued] += 1
        # the queue at each resource: demand its providers did not meet today
        q = np.flatnonzero(queued)
        self.queue_today = np.bincount(self.route_res[P["route"][q], P["stage"][q]],
                                       minlength=len(self.res_kind))

    # ------------------------------------------------------------------------------------
    def _start(self, rows: np.ndarray, day: int) -> int:
        m, P, offers, book = self.m, self.m.parcels, self.m.offers, self.m.contracts
        rows = rows[np.argsort(P["ready_day"][rows], kind="stable")]   # first come, first served
        route, stage = P["route"][rows], P["stage"][rows]
        res = self.route_res[route, stage]
        buyer = P["buyer_acct"][rows]

        active = m.active_contracts
        held = np.bincount(book.offer[active], weights=book.remaining_today[active], minlength=offers.n)
        spare = np.where(offers.active, offers.capacity - offers.used_today - held, 0.0)
        auction = m.config.market.spot == "double_auction"
        sp_parcel, sp_kg, _ = offers.spot_rates(np.arange(offers.n))
        c_local, o_idx = allocate_capacity(
            res, buyer, book.resource[active], book.buyer_acct[active],
            book.remaining_today[active], book.offer[active],
            offers.resource, np.zeros(offers.n) if auction else spare, sp_parcel + sp_kg * m.reference_weight)
        clearing = np.full(rows.size, np.nan)
        if auction:
            o_idx, clearing = self._spot_auction(rows, res, c_local, o_idx, spare)
        got = o_idx >= 0
        if not got.any():
            return 0
        rows, res, o, stage, route = rows[got], res[got], o_idx[got], stage[got], route[got]
        clearing = clearing[got]
        c = (np.where(c_local[got] >= 0, active[np.maximum(c_local[got], 0)], -1) if active.size
             else np.full(rows.size, -1, dtype=np.int64))
        has_c = c >= 0
        cc = np.maximum(c, 0)

        def of_contract(col: np.ndarray, default) -> np.ndarray:
            """A contract column for legs under contract, ``default`` for spot legs."""
            out = np.array(np.broadcast_to(default, c.shape), dtype=col.dtype)
            out[has_c] = col[c[has_c]]
            return out
        n = rows.size
        np.subtract.at(book.remaining_today, c[has_c], 1.0)
        offers.used_today += np.bincount(o, minlength=offers.n)
        book.cols["executed"][: book.n] += np.bincount(c[has_c], minlength=book.n)

        # ---- how long the stage takes, and what goes wrong ----
        w = P["weight"][rows].astype(np.float64)
        kind = self.res_kind[res]
        terr = self.res_territory[res]
        regime = self.route_regime[route, stage]
        u = m.rng.random((n, 6))
        tri = self.res_tri[res]
        base = triangular(tri[:, 0], tri[:, 1], tri[:, 2], u[:, 0])
        dur = np.zeros(n)
        is_t = kind == TRANSPORT
        delayed = is_t & (u[:, 1] < self.res_delay[res] * offers.delay_mult[o])
        dtri = self.res_delay_tri[res]
        dur += np.where(is_t, base * offers.speed[o], 0.0)
        dur += np.where(delayed, triangular(dtri[:, 0], dtri[:, 1], dtri[:, 2], u[:, 2]), 0.0)
        dur += np.where(kind == HANDLING, base, 0.0)
        is_e, is_i = kind == EXPORT, kind == IMPORT
        ctri = np.where(is_e[:, None], self.ct.export_clearance[terr], self.ct.clearance[terr, regime])
        customs = is_e | is_i
        dur += np.where(customs, triangular(ctri[:, 0], ctri[:, 1], ctri[:, 2], u[:, 0]), 0.0)
        cat = P["category"][rows]
        inspected = is_i & (u[:, 3] < self.ct.inspection[terr, regime] * self.ct.inspection_multiplier[cat])
        itri = self.ct.inspection_days[terr]
        dur += np.where(inspected, triangular(itri[:, 0], itri[:, 1], itri[:, 2], u[:, 2]), 0.0)
        held_ = customs & (u[:, 4] > offers.accuracy[o])
        htri = self.ct.hold_days[terr]
        dur += np.where(held_, triangular(htri[:, 0], htri[:, 1], htri[:, 2], u[:, 5]), 0.0)
        days = whole_days(dur, m.rng)
        lose = is_t & (u[:, 5] < self.res_loss[res] * offers.loss_mult[o])
        damage = is_t & ~lose & (m.rng.random(n) < self.res_damage[res] * offers.loss_mult[o])

        # ---- money: the buyer pays the provider; the provider pays its variable cost ----
        unit_cost = offers.cost_parcel[o] + offers.cost_kg[o] * w
        if auction:   # spot at the resource's clearing price per reference parcel, scaled to this one
            ref_cost = offers.cost_parcel[o] + offers.cost_kg[o] * m.reference_weight
            spot = clearing * unit_cost / np.maximum(ref_cost, 1e-9)
        else:
            spot = unit_cost * (1.0 + offers.markup[o]) * offers.spot_factor[o]
        rate = np.where(has_c, of_contract(book.rate_parcel, 0.0) + of_contract(book.rate_kg, 0.0) * w, spot)
        factor = of_contract(book.cost_factor, 1.0)
        var_cost = unit_cost * factor * (1.0 - m.config.carriers.fixed_cost_share)
        rate_c, cost_c = to_cents(rate), to_cents(var_cost)
        # the buyer pays its contract party (a lead provider may have subcontracted the leg)
        payee = np.where(has_c, of_contract(book.provider_acct, -1), offers.acct[o])
        for k in (TRANSPORT, HANDLING, EXPORT, IMPORT):
            sel = kind == k
            if sel.any():
                m.ledger.post(P["buyer_acct"][rows[sel]], payee[sel], rate_c[sel], PAY_KIND[k])
        sub = has_c & (of_contract(book.sub_acct, -1) >= 0)
        if sub.any():
            sc = cc[sub]
            sub_c = to_cents(book.sub_rate_parcel[sc] + book.sub_rate_kg[sc] * w[sub])
            m.ledger.post(book.provider_acct[sc], book.sub_acct[sc], sub_c, "freight")
            self.subcontracted_cents += int(sub_c.sum())
        m.ledger.post(offers.acct[o], m.acct_inputs, cost_c, "operating_cost")
        P["cost_cents"][rows] += rate_c
        diy = P["integrator"][rows] < 0
        P["price_cents"][rows[diy]] += rate_c[diy]

        # ---- import duty and VAT, under the rule in force today ----
        if is_i.any():
            self._assess_duties(rows[is_i], terr[is_i], regime[is_i])

        # ---- record ----
        P["status"][rows] = IN_STAGE
        P["end_day"][rows] = day + days
        P["will_lose"][rows] = lose
        P["damaged"][rows] |= damage.astype(np.int8)
        P["inspected"][rows] |= inspected.astype(np.int8)
        P["held"][rows] |= held_.astype(np.int8)
        P["spot_legs"][rows] += (~has_c).astype(np.int8)
        P["leg_provider"][rows, stage] = offers.provider[o]
        P["leg_contract"][rows, stage] = c
        P["leg_start"][rows, stage] = day
        P["damage_leg"][rows] = np.where(damage, stage, P["damage_leg"][rows])

        # ---- counters ----
        mode = self.res_mode[res]
        is_mode = mode >= 0
        self.legs_started += n
        self.spot_legs += int((~has_c).sum())
        self.inspections += int(inspected.sum())
        self.holds += int(held_.sum())
        # price of the leg for a reference (1 kg) parcel, by mode, contract vs spot (sums and
        # counts; averaged in the metrics) - comparable whatever the parcels weighed
        ref_w = m.reference_weight
        ref_cost = offers.cost_parcel[o] + offers.cost_kg[o] * ref_w
        ref_spot = clearing if auction else ref_cost * (1.0 + offers.markup[o]) * offers.spot_factor[o]
        ref_price = np.where(has_c, of_contract(book.rate_parcel, 0.0) + of_contract(book.rate_kg, 0.0) * ref_w, ref_spot)
        nm = len(self.contract_rate_sum)
        sel_c, sel_s = is_mode & has_c, is_mode & ~has_c
        self.contract_rate_sum += np.bincount(mode[sel_c], ref_price[sel_c], nm)
        self.contract_rate_n += np.bincount(mode[sel_c], minlength=nm)
        self.spot_rate_sum += np.bincount(mode[sel_s], ref_price[sel_s], nm)
        self.spot_rate_n += np.bincount(mode[sel_s], minlength=nm)
        return n

    def _spot_auction(self, rows, res, c_local, o_idx, spare):
        """Units without contract capacity bid in today's call auction of their resource."""
        m, P, offers, cfg = self.m, self.m.parcels, self.m.offers, self.m.config.market
        free = np.flatnonzero(c_local < 0)
        clearing = np.full(rows.size, np.nan)
        if free.size == 0:
            return o_idx, clearing
        m.quoter._refresh()
        list_ref = m.quoter.list_ref[res[free]]
        waited = P["wait_days"][rows[free]].astype(np.float64)
        # a buyer pays up to the posted price at full utilisation, more the longer it has waited
        bid = list_ref * (1.0 + cfg.spot_slope) * (1.0 + cfg.spot_urgency * waited)
        ask = (offers.cost_parcel + offers.cost_kg * m.reference_weight) * (1.0 + offers.markup)
        ask = np.where(offers.active, ask, np.inf)
        off, price = call_auction_allocate(res[free], bid, offers.resource, spare, ask)
        o_idx = o_idx.copy()
        o_idx[free] = off
        clearing[free] = price
        self.auction_trades += int((off >= 0).sum())
        return o_idx, clearing

    def _assess_duties(self, rows, terr, regime):
        m, P = self.m, self.m.parcels
        duty_c = np.zeros(rows.size, dtype=np.int64)
        key = terr.astype(np.int64) * len(REGIMES) + regime
        for k in np.unique(key):
            sel = key == k
            t, g = divmod(int(k), len(REGIMES))
            r = rows[sel]
            duty, vat = m.duties.assess(m.net.territories[t], m.date, REGIMES[g],
                                        P["value"][r], P["weight"][r], P["category"][r],
                                        P["origin_territory"][r])
            duty_c[sel] = to_cents(duty + vat)
            m.ledger.post(P["merchant_acct"][r], m.acct_authority[t], duty_c[sel], "duty")
        P["duty_cents"][rows] += duty_c

    # ------------------------------------------------------------------------------------
    def _finish(self, rows: np.ndarray, day: int):
        m, P, book, cfg = self.m, self.m.parcels, self.m.contracts, self.m.config
        stage = P["stage"][rows].astype(np.int64)
        route = P["route"][rows]
        end = P["end_day"][rows]
        P["leg_end"][rows, stage] = end
        w = P["weight"][rows].astype(np.float64)
        value = P["value"][rows].astype(np.float64)

        # late legs under contract: the provider pays the buyer a penalty
        c = P["leg_contract"][rows, stage]
        has_c = c >= 0
        if has_c.any():
            cc = c[has_c]
            took = end[has_c] - P["leg_start"][rows[has_c], stage[has_c]]
            late = took > book.sla_days[cc]
            if late.any():
                lc = cc[late]
                r = rows[has_c][late]
                pen = to_cents(cfg.market.late_penalty_share * (book.rate_parcel[lc] + book.rate_kg[lc] * w[has_c][late]))
                m.ledger.post(book.provider_acct[lc], P["buyer_acct"][r], pen, "penalty")
                np.add.at(book.cols["late"], lc, 1)
                np.add.at(book.cols["penalties_cents"], lc, pen)
                self.penalties_cents += int(pen.sum())

        # the leg's provider builds (or loses) its reputation: on time for the stage, intact
        lost = P["will_lose"][rows].astype(bool)
        damaged_now = (P["damage_leg"][rows] == stage) & ~lost
        hit = lost | damaged_now
        serving = P["leg_provider"][rows, stage]
        took_all = end - P["leg_start"][rows, stage]
        on_time = took_all <= m.stage_sla[self.route_res[route, stage]]
        m.reputation.record_deliveries(serving, on_time, lost=hit)

        # losses and damage: the consumer is refunded at once; a 4PL makes its merchant whole
        # at once; the leg's buyer claims the carrier's liability and, if insured, the rest
        # from the insurer - both settle later (see market/money/claims.py)
        if hit.any():
            r = rows[hit]
            ch = c[hit]
            contract = ch >= 0
            resp_uid = serving[hit].astype(np.int64)
            resp_acct = m.provider_acct_by_uid(resp_uid)
            resp_uid[contract] = book.provider[ch[contract]]     # the contract party answers for it
            resp_acct[contract] = book.provider_acct[ch[contract]]
            val = value[hit]
            liability = np.minimum(val, cfg.carriers.liability_per_kg * w[hit])
            full = to_cents(val)
            m.ledger.post(P["merchant_acct"][r], m.acct_consumers, full, "refund")
            via_4pl = P["integrator"][r] >= 0
            if via_4pl.any():
                m.ledger.post(P["buyer_acct"][r[via_4pl]], P["merchant_acct"][r[via_4pl]], full[via_4pl], "claim")
            kind = np.where(lost[hit], LOSS, DAMAGE)
            carrier_claim = to_cents(liability)
            m.claims.file(day, kind, P["buyer_acct"][r], resp_acct, resp_uid, carrier_claim, P["parcel_id"][r], via_4pl)
            insured = P["insured"][r] > 0
            rest = to_cents(np.maximum(val - liability - cfg.insurance.deductible, 0.0)) * insured
            m.claims.file(day, INSURANCE, P["buyer_acct"][r], m.acct_insurer, -1, rest, P["parcel_id"][r], via_4pl)
            P["claim_cents"][r] += carrier_claim + rest
            self.claims_cents += int(carrier_claim.sum() + rest.sum())
        if lost.any():
            r = rows[lost]
            P["status"][r] = LOST
            P["finished_day"][r] = day
            P["will_lose"][r] = 0

        ok = ~lost
        r = rows[ok]
        nxt = stage[ok] + 1
        P["stage"][r] = nxt
        done = nxt >= P["n_stages"][r]
        if done.any():
            d = r[done]
            P["status"][d] = DELIVERED
            P["finished_day"][d] = day
            # a 4PL refunds part of its price when it misses its promise
            late = (P["integrator"][d] >= 0) & (day - P["created_day"][d] > P["promised_days"][d])
            if late.any():
                dl = d[late]
                credit = np.rint(cfg.integrators.service_credit * P["price_cents"][dl]).astype(np.int64)
                m.ledger.post(P["buyer_acct"][dl], P["merchant_acct"][dl], credit, "service_credit")
                self.service_credits_cents += int(credit.sum())
        go = r[~done]
        if go.size:
            P["status"][go] = WAITING
            delay = np.zeros(go.size, dtype=np.int64)
            diy = P["integrator"][go] < 0
            handoff = self.route_handoff[P["route"][go], P["stage"][go]] & diy
            if handoff.any() and cfg.merchants.diy_handoff_delay > 0:
                delay[handoff] = m.rng.poisson(cfg.merchants.diy_handoff_delay, int(handoff.sum()))
            P["ready_day"][go] = day + delay
            P["handoff_days"][go] += delay.astype(np.int16)
