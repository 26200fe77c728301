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

from market.goods.allocation import allocate_capacity, call_auction_allocate, stable_order, zi_auction_allocate
from market.mechanisms.insurance import settle_claims
from market.world.customs import triangular, whole_days
from market.money.claims import DAMAGE, INSURANCE, LOSS
from market.money.ledger import to_cents
from market.goods.parcels import DELIVERED, IN_STAGE, LOST, WAITING
from market.world import EXPORT, HANDLING, IMPORT, REGIMES, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

PAY_KIND = {TRANSPORT: "freight", HANDLING: "handling", EXPORT: "brokerage", IMPORT: "brokerage"}


class ParcelFlow:
    """Moves the parcel table through its stages, one day at a time.

    Takes the model because a day's flow touches most of the market: it reads and writes the
    parcel table, takes capacity from the offer book and the active contracts (contract
    first, then spot, or a spot double auction), posts freight, handling, brokerage, duty,
    penalty, refund and service-credit payments to the ledger, files loss and damage claims,
    records providers' deliveries in their reputations, and draws durations and mishaps from
    the run's random stream. The network and clearance tables it reads are the model's own
    arrays, which shocks change in place.
    """

    def __init__(self, model: Marketplace):
        self.model = model
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
        self.clearance = model.clearance
        # today's counters (read by the metrics)
        self.reset_counters()

    def reset_counters(self):
        """Zero today's counters (legs started, spot legs, prices by mode, penalties, claims,
        service credits, inspections, holds, subcontracting, auction trades); money in cents."""
        n_modes = len(self.model.net.modes)
        self.legs_started = 0
        self.spot_legs = 0
        self.contract_rate_sum = np.zeros(n_modes)
        self.contract_rate_n = np.zeros(n_modes)
        self.spot_rate_sum = np.zeros(n_modes)
        self.spot_rate_n = np.zeros(n_modes)
        # ... and per resource (for spot over contract on the same lane): [contract sum, contract
        # legs, spot sum, spot legs] x resource
        self.lane_price = np.zeros((4, len(self.res_mode)))
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
        parcels = self.model.parcels
        for _ in range(4 * parcels.max_stages + 4):
            n = parcels.n
            status = parcels["status"]
            ending = np.flatnonzero((status == IN_STAGE) & (parcels["end_day"] <= day))
            if ending.size:
                self._finish(ending, day)
            waiting = np.flatnonzero((parcels["status"][:n] == WAITING) & (parcels["ready_day"][:n] <= day))
            started = self._start(waiting, day) if waiting.size else 0
            if ending.size == 0 and started == 0:
                break
        # parcels still queued at the end of the day waited a day for capacity
        queued = (parcels["status"] == WAITING) & (parcels["ready_day"] <= day)
        parcels["wait_days"][queued] += 1
        # the queue at each resource: demand its providers did not meet today
        q = np.flatnonzero(queued)
        self.queue_today = np.bincount(self.route_res[parcels["route"][q], parcels["stage"][q]],
                                       minlength=len(self.res_kind))

    # ------------------------------------------------------------------------------------
    def _start(self, rows: np.ndarray, day: int) -> int:
        """Start the next stage of these waiting parcels where capacity allows: capacity, then
        duration and mishaps, then payment, duty and the parcel's record; returns how many
        started."""
        model, parcels, offers, book = self.model, self.model.parcels, self.model.offers, self.model.contracts
        rows = rows[stable_order(parcels["ready_day"][rows])]   # first come, first served
        route, stage = parcels["route"][rows], parcels["stage"][rows]
        res = self.route_res[route, stage]
        buyer = parcels["buyer_acct"][rows]

        active = model.active_contracts
        # contract capacity its holders do not claim is sold spot (an allotment released), so
        # contracts take what is physically free, pro rata where they promised more
        room = np.where(offers.active, np.maximum(offers.capacity - offers.used_today, 0.0), 0.0)
        promised = np.bincount(book.offer[active], weights=book.remaining_today[active], minlength=offers.n)
        share = np.minimum(np.divide(room, promised, out=np.ones(offers.n), where=promised > 0), 1.0)
        remaining = book.remaining_today[active] * share[book.offer[active]]
        auction = model.config.market.spot in ("double_auction", "zi_double_auction")
        sp_parcel, sp_kg, _ = offers.spot_rates(np.arange(offers.n))
        c_local, o_idx = allocate_capacity(
            res, buyer, book.resource[active], book.buyer_acct[active], remaining, book.offer[active],
            offers.resource, np.zeros(offers.n) if auction else room, sp_parcel + sp_kg * model.reference_weight,
            contracts_use_spare=True)
        clearing = np.full(rows.size, np.nan)
        if auction:
            spare = room - np.bincount(o_idx[c_local >= 0], minlength=offers.n)
            o_idx, clearing = self._spot_auction(rows, res, c_local, o_idx, spare)
        got = o_idx >= 0
        if not got.any():
            return 0
        rows, res, offer, stage, route = rows[got], res[got], o_idx[got], stage[got], route[got]
        clearing = clearing[got]
        contract = (np.where(c_local[got] >= 0, active[np.maximum(c_local[got], 0)], -1) if active.size
                    else np.full(rows.size, -1, dtype=np.int64))
        has_contract = contract >= 0
        contract_or_0 = np.maximum(contract, 0)

        any_contract = bool(has_contract.any())

        def of_contract(col: np.ndarray, default) -> np.ndarray:
            """A contract column for legs under contract, ``default`` for spot legs."""
            if not any_contract:
                return np.full(contract.shape, default, dtype=col.dtype)
            return np.where(has_contract, col[contract_or_0], default).astype(col.dtype, copy=False)
        n = rows.size
        np.subtract.at(book.remaining_today, contract[has_contract], 1.0)
        offers.used_today += np.bincount(offer, minlength=offers.n)
        book.cols["executed"][: book.n] += np.bincount(contract[has_contract], minlength=book.n)

        # ---- how long the stage takes, and what goes wrong ----
        weight = parcels["weight"][rows].astype(np.float64)
        kind = self.res_kind[res]
        terr = self.res_territory[res]
        regime = self.route_regime[route, stage]
        u = model.rng.random((n, 6))
        # each part of the duration is drawn only for the legs it applies to, and added in the
        # same order for every leg (transit, delay, handling, clearance, inspection, hold)
        clearance = self.clearance

        def add_drawn(where: np.ndarray, tri: np.ndarray, draw: np.ndarray, scale=None, also=None):
            """Add a triangular draw (rows of ``tri``: low, mode, high) to the legs in ``where``
            (and to ``also``, when given)."""
            if where.any():
                x = triangular(tri[:, 0], tri[:, 1], tri[:, 2], draw[where])
                if scale is not None:
                    x = x * scale[where]
                dur[where] += x
                if also is not None:
                    also[where] += x
        dur = np.zeros(n)
        is_t = kind == TRANSPORT
        is_h = kind == HANDLING
        delayed = is_t & (u[:, 1] < self.res_delay[res] * offers.delay_mult[offer])
        # the part of a leg that is delay (a carrier's delay, an inspection, a hold): what tracking may catch
        extra = np.zeros(n)
        add_drawn(is_t, self.res_tri[res[is_t]], u[:, 0], offers.speed[offer])
        add_drawn(delayed, self.res_delay_tri[res[delayed]], u[:, 2], also=extra)
        add_drawn(is_h, self.res_tri[res[is_h]], u[:, 0])
        is_e, is_i = kind == EXPORT, kind == IMPORT
        customs = is_e | is_i
        ctri = np.where(is_e[customs, None], clearance.export_clearance[terr[customs]],
                        clearance.clearance[terr[customs], regime[customs]])
        add_drawn(customs, ctri, u[:, 0])
        category = parcels["category"][rows]
        inspected = is_i & (u[:, 3] < clearance.inspection[terr, regime] * clearance.inspection_multiplier[category])
        add_drawn(inspected, clearance.inspection_days[terr[inspected]], u[:, 2], also=extra)
        customs_hold = customs & (u[:, 4] > offers.accuracy[offer])
        add_drawn(customs_hold, clearance.hold_days[terr[customs_hold]], u[:, 5], also=extra)
        days = whole_days(dur, model.rng)
        lose = is_t & (u[:, 5] < self.res_loss[res] * offers.loss_mult[offer])
        damage = is_t & ~lose & (model.rng.random(n) < self.res_damage[res] * offers.loss_mult[offer])

        # ---- money: the buyer pays the provider; the provider pays its variable cost ----
        unit_cost = offers.cost_parcel[offer] + offers.cost_kg[offer] * weight
        if auction:   # spot at the resource's clearing price per reference parcel, scaled to this one
            ref_cost = offers.cost_parcel[offer] + offers.cost_kg[offer] * model.reference_weight
            spot = clearing * unit_cost / np.maximum(ref_cost, 1e-9)
        else:
            spot = unit_cost * (1.0 + offers.markup[offer]) * offers.spot_factor[offer]
        rate_parcel, rate_kg = of_contract(book.rate_parcel, 0.0), of_contract(book.rate_kg, 0.0)
        rate = np.where(has_contract, rate_parcel + rate_kg * weight, spot)
        factor = of_contract(book.cost_factor, 1.0)
        var_cost = unit_cost * factor * (1.0 - model.config.carriers.fixed_cost_share)
        rate_c, cost_c = to_cents(rate), to_cents(var_cost)
        # the buyer pays its contract party (a lead provider may have subcontracted the leg)
        payee = np.where(has_contract, of_contract(book.provider_acct, -1), offers.acct[offer])
        for k in (TRANSPORT, HANDLING, EXPORT, IMPORT):
            sel = kind == k
            if sel.any():
                model.ledger.post(parcels["buyer_acct"][rows[sel]], payee[sel], rate_c[sel], PAY_KIND[k])
        sub = has_contract & (of_contract(book.sub_acct, -1) >= 0)
        if sub.any():
            sc = contract_or_0[sub]
            sub_c = to_cents(book.sub_rate_parcel[sc] + book.sub_rate_kg[sc] * weight[sub])
            model.ledger.post(book.provider_acct[sc], book.sub_acct[sc], sub_c, "freight")
            self.subcontracted_cents += int(sub_c.sum())
        model.ledger.post(offers.acct[offer], model.acct_inputs, cost_c, "operating_cost")
        parcels["cost_cents"][rows] += rate_c
        diy = parcels["integrator"][rows] < 0
        parcels["price_cents"][rows[diy]] += rate_c[diy]

        # ---- import duty and VAT, under the rule in force today ----
        if is_i.any():
            self._assess_duties(rows[is_i], terr[is_i], regime[is_i])

        # ---- tracking: events seen, delays detected and (by a 4PL) expedited ----
        days = model.tracking.on_start(rows, stage, offers.provider[offer], payee, day, days, extra)

        # ---- record ----
        parcels["status"][rows] = IN_STAGE
        parcels["end_day"][rows] = day + days
        parcels["will_lose"][rows] = lose
        parcels["damaged"][rows] |= damage.astype(np.int8)
        parcels["inspected"][rows] |= inspected.astype(np.int8)
        parcels["held"][rows] |= customs_hold.astype(np.int8)
        parcels["spot_legs"][rows] += (~has_contract).astype(np.int8)
        parcels["leg_provider"][rows, stage] = offers.provider[offer]
        parcels["leg_contract"][rows, stage] = contract
        parcels["leg_start"][rows, stage] = day
        parcels["damage_leg"][rows] = np.where(damage, stage, parcels["damage_leg"][rows])

        # ---- counters ----
        mode = self.res_mode[res]
        is_mode = mode >= 0
        self.legs_started += n
        self.spot_legs += int((~has_contract).sum())
        self.inspections += int(inspected.sum())
        self.holds += int(customs_hold.sum())
        # price of the leg for a reference (1 kg) parcel, by mode, contract vs spot (sums and
        # counts; averaged in the metrics) - comparable whatever the parcels weighed
        ref_w = model.reference_weight
        ref_cost = offers.cost_parcel[offer] + offers.cost_kg[offer] * ref_w
        ref_spot = clearing if auction else ref_cost * (1.0 + offers.markup[offer]) * offers.spot_factor[offer]
        ref_price = np.where(has_contract, rate_parcel + rate_kg * ref_w, ref_spot)
        nm = len(self.contract_rate_sum)
        sel_c, sel_s = is_mode & has_contract, is_mode & ~has_contract
        self.contract_rate_sum += np.bincount(mode[sel_c], ref_price[sel_c], nm)
        self.contract_rate_n += np.bincount(mode[sel_c], minlength=nm)
        self.spot_rate_sum += np.bincount(mode[sel_s], ref_price[sel_s], nm)
        self.spot_rate_n += np.bincount(mode[sel_s], minlength=nm)
        nr = self.lane_price.shape[1]
        self.lane_price[0] += np.bincount(res[sel_c], ref_price[sel_c], nr)
        self.lane_price[1] += np.bincount(res[sel_c], minlength=nr)
        self.lane_price[2] += np.bincount(res[sel_s], ref_price[sel_s], nr)
        self.lane_price[3] += np.bincount(res[sel_s], minlength=nr)
        return n

    def _spot_auction(self, rows, res, c_local, o_idx, spare):
        """Units without contract capacity bid in today's double auction of their resource: a
        call market (``double_auction``) or a continuous double auction with zero-intelligence
        traders (``zi_double_auction``)."""
        model, parcels, offers, rules = self.model, self.model.parcels, self.model.offers, self.model.config.market
        free = np.flatnonzero(c_local < 0)
        clearing = np.full(rows.size, np.nan)
        if free.size == 0:
            return o_idx, clearing
        model.quoter._refresh()
        list_ref = model.quoter.list_ref[res[free]]
        waited = parcels["wait_days"][rows[free]].astype(np.float64)
        # a buyer pays up to the posted price at full utilisation, more the longer it has waited
        bid = list_ref * (1.0 + rules.spot_slope) * (1.0 + rules.spot_urgency * waited)
        ask = (offers.cost_parcel + offers.cost_kg * model.reference_weight) * (1.0 + offers.markup)
        ask = np.where(offers.active, ask, np.inf)
        if rules.spot == "zi_double_auction":
            off, price = zi_auction_allocate(res[free], bid, offers.resource, spare, ask, model.rng)
        else:
            off, price = call_auction_allocate(res[free], bid, offers.resource, spare, ask)
        o_idx = o_idx.copy()
        o_idx[free] = off
        clearing[free] = price
        self.auction_trades += int((off >= 0).sum())
        return o_idx, clearing

    def _assess_duties(self, rows, terr, regime):
        """Import duty and VAT (under the rule in force today) on parcels entering a territory;
        the merchant pays the territory's authority."""
        model, parcels = self.model, self.model.parcels
        duty_c = np.zeros(rows.size, dtype=np.int64)
        key = terr.astype(np.int64) * len(REGIMES) + regime
        for k in np.unique(key):
            sel = key == k
            t, g = divmod(int(k), len(REGIMES))
            of_key = rows[sel]
            duty, vat = model.duties.assess(model.net.territories[t], model.date, REGIMES[g],
                                            parcels["value"][of_key], parcels["weight"][of_key],
                                            parcels["category"][of_key], parcels["origin_territory"][of_key])
            duty_c[sel] = to_cents(duty + vat)
            model.ledger.post(parcels["merchant_acct"][of_key], model.acct_authority[t], duty_c[sel], "duty")
        parcels["duty_cents"][rows] += duty_c

    # ------------------------------------------------------------------------------------
    def _finish(self, rows: np.ndarray, day: int):
        """End these parcels' current stage: late penalties, reputations, losses and damage
        (refunds and claims), then delivered, or waiting for the next stage."""
        model, parcels, book, cfg = self.model, self.model.parcels, self.model.contracts, self.model.config
        stage = parcels["stage"][rows].astype(np.int64)
        route = parcels["route"][rows]
        end = parcels["end_day"][rows]
        parcels["leg_end"][rows, stage] = end
        weight = parcels["weight"][rows].astype(np.float64)
        value = parcels["value"][rows].astype(np.float64)

        # late legs under contract: the provider pays the buyer a penalty
        contract = parcels["leg_contract"][rows, stage]
        has_contract = contract >= 0
        if has_contract.any():
            contracted = contract[has_contract]
            took = end[has_contract] - parcels["leg_start"][rows[has_contract], stage[has_contract]]
            late = took > book.sla_days[contracted]
            if late.any():
                late_contracts = contracted[late]
                late_rows = rows[has_contract][late]
                pen = to_cents(cfg.market.late_penalty_share * (book.rate_parcel[late_contracts]
                                                                + book.rate_kg[late_contracts] * weight[has_contract][late]))
                model.ledger.post(book.provider_acct[late_contracts], parcels["buyer_acct"][late_rows], pen, "penalty")
                np.add.at(book.cols["late"], late_contracts, 1)
                np.add.at(book.cols["penalties_cents"], late_contracts, pen)
                self.penalties_cents += int(pen.sum())

        # the leg's provider builds (or loses) its reputation: on time for the stage, intact
        lost = parcels["will_lose"][rows].astype(bool)
        damaged_now = (parcels["damage_leg"][rows] == stage) & ~lost
        hit = lost | damaged_now
        serving = parcels["leg_provider"][rows, stage]
        took_all = end - parcels["leg_start"][rows, stage]
        on_time = took_all <= model.stage_sla[self.route_res[route, stage]]
        model.reputation.record_deliveries(serving, on_time, lost=hit)

        # losses and damage: the consumer is refunded at once; a 4PL makes its merchant whole
        # at once; the leg's buyer claims the carrier's liability and, if insured, the rest
        # from the insurer - both settle later (see market/money/claims.py)
        if hit.any():
            hit_rows = rows[hit]
            hit_contract = contract[hit]
            under_contract = hit_contract >= 0
            resp_uid = serving[hit].astype(np.int64)
            resp_acct = model.provider_acct_by_uid(resp_uid)
            resp_uid[under_contract] = book.provider[hit_contract[under_contract]]     # the contract party answers for it
            resp_acct[under_contract] = book.provider_acct[hit_contract[under_contract]]
            val = value[hit]
            # the carrier answers up to its liability; the insurer, for insured parcels, the rest
            insured = parcels["insured"][hit_rows] > 0
            shares = settle_claims(val, cfg.carriers.liability_per_kg * weight[hit], insured,
                                   cfg.insurance.deductible)
            full = to_cents(val)
            model.ledger.post(parcels["merchant_acct"][hit_rows], model.acct_consumers, full, "refund")
            via_4pl = parcels["integrator"][hit_rows] >= 0
            if via_4pl.any():
                model.ledger.post(parcels["buyer_acct"][hit_rows[via_4pl]], parcels["merchant_acct"][hit_rows[via_4pl]],
                                  full[via_4pl], "claim")
            kind = np.where(lost[hit], LOSS, DAMAGE)
            carrier_claim = to_cents(shares.carrier)
            # tracking proof: the hand-over to this leg was seen (or it is the first leg)
            hit_stage = stage[hit]
            prev_seen = parcels["leg_seen"][hit_rows, np.maximum(hit_stage - 1, 0)]
            proof = (hit_stage == 0) | ((prev_seen >= 0) & (prev_seen <= day))
            model.claims.file(day, kind, parcels["buyer_acct"][hit_rows], resp_acct, resp_uid, carrier_claim,
                              parcels["parcel_id"][hit_rows], via_4pl, proof)
            rest = to_cents(shares.insurer)
            model.claims.file(day, INSURANCE, parcels["buyer_acct"][hit_rows], model.acct_insurer, -1, rest,
                              parcels["parcel_id"][hit_rows], via_4pl, proof)
            parcels["claim_cents"][hit_rows] += carrier_claim + rest
            self.claims_cents += int(carrier_claim.sum() + rest.sum())
        if lost.any():
            lost_rows = rows[lost]
            parcels["status"][lost_rows] = LOST
            parcels["finished_day"][lost_rows] = day
            parcels["will_lose"][lost_rows] = 0

        ok = ~lost
        moved_on = rows[ok]
        nxt = stage[ok] + 1
        parcels["stage"][moved_on] = nxt
        done = nxt >= parcels["n_stages"][moved_on]
        if done.any():
            delivered = moved_on[done]
            parcels["status"][delivered] = DELIVERED
            parcels["finished_day"][delivered] = day
            # a 4PL refunds part of its price when it misses its promise
            late = (parcels["integrator"][delivered] >= 0) \
                & (day - parcels["created_day"][delivered] > parcels["promised_days"][delivered])
            if late.any():
                late_delivered = delivered[late]
                credit = np.rint(cfg.integrators.service_credit
                                 * parcels["price_cents"][late_delivered]).astype(np.int64)
                model.ledger.post(parcels["buyer_acct"][late_delivered], parcels["merchant_acct"][late_delivered],
                                  credit, "service_credit")
                self.service_credits_cents += int(credit.sum())
        go = moved_on[~done]
        if go.size:
            parcels["status"][go] = WAITING
            delay = np.zeros(go.size, dtype=np.int64)
            diy = parcels["integrator"][go] < 0
            handoff = self.route_handoff[parcels["route"][go], parcels["stage"][go]] & diy
            if handoff.any() and cfg.merchants.diy_handoff_delay > 0:
                delay[handoff] = model.rng.poisson(cfg.merchants.diy_handoff_delay, int(handoff.sum()))
            parcels["ready_day"][go] = day + delay
            parcels["handoff_days"][go] += delay.astype(np.int16)
