"""Daily figures and the run summary, from running totals (no parcel is kept for them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.goods.parcels import DELIVERED, LOST, WAITING_STOCK
from market.world import MODES

if TYPE_CHECKING:
    from market.model import Marketplace

MAX_LEAD = 730   # lead-time histogram bins (days); longer ones land in the last bin


def _p95(hist: np.ndarray) -> float:
    total = hist.sum()
    if total == 0:
        return float("nan")
    return float(np.searchsorted(np.cumsum(hist), 0.95 * total))


def _mean_from_hist(hist: np.ndarray) -> float:
    total = hist.sum()
    return float((hist * np.arange(hist.size)).sum() / total) if total else float("nan")


class Metrics:
    """Running totals per channel, and today's figures.

    Built from the world's channels and the numbers of warehouses and integrators; the engines
    report events to it (parcels created and finished, space shortfalls, stock-outs). Its
    reports, :meth:`daily` and :meth:`summary`, take the model because a day's row and the run
    summary read every part of it: the flow's and the inventory's counters, the offer book,
    the ledger, claims, contracts, shocks, evolution, integrators and providers.
    """

    def __init__(self, channels: list[str], n_warehouses: int, n_integrators: int):
        C = len(channels)
        self.channels = channels
        self.created = np.zeros(C, dtype=np.int64)
        self.created_4pl = np.zeros(C, dtype=np.int64)
        self.fallback = np.zeros(C, dtype=np.int64)
        self.delivered = np.zeros(C, dtype=np.int64)
        self.lost = np.zeros(C, dtype=np.int64)
        self.on_time = np.zeros(C, dtype=np.int64)
        self.damaged = np.zeros(C, dtype=np.int64)
        self.lead_hist = np.zeros((C, MAX_LEAD + 1), dtype=np.int64)
        self.logistics_cents = np.zeros(C, dtype=np.int64)
        self.duty_cents = np.zeros(C, dtype=np.int64)
        self.stockouts = 0
        self.consignments_lost = 0
        W = n_warehouses
        self.space_short = np.zeros(W, dtype=np.int64)   # units not ordered for want of space
        self.space_peak = np.zeros(W)                    # highest share of space used (stock + on its way)
        self.space_used_sum = np.zeros(W)                # for the mean share of space holding stock
        self.space_days = 0
        n_modes = len(MODES)
        self.price_modes = MODES
        self.price_sums = np.zeros((2, n_modes))     # [contract, spot] reference-parcel prices by mode
        self.price_kg = np.zeros((2, n_modes))       # ... and legs priced
        self.lane_price = None                       # ... per resource, over the run (ParcelFlow.lane_price)
        # market structure (summary.json): daily utilisation per mode, parcels and capacity per lane
        self.util_modes = [mode for mode in MODES if mode not in ("sea", "rail")]
        self.util_sum = np.zeros(len(self.util_modes))
        self.util_days = np.zeros(len(self.util_modes), dtype=np.int64)
        self.res_used = self.res_capacity = self.parcel_lanes = None
        self._money_prev = None
        self.insured_parcels = 0
        self.n_integrators = n_integrators
        self.created_by_integrator = np.zeros(max(self.n_integrators, 1), dtype=np.int64)
        self.providers_per_service = [0, 0]      # sum of distinct providers per 4PL parcel, parcels
        # provider segments for concentration: carriers by mode, warehouses, customs brokers
        self.segments = [f"carriers_{mode}" for mode in MODES] + ["warehouses", "customs"]
        self.start_day()

    def start_day(self):
        """Zero today's figures (parcels created, delivered, lost, lead times, cost in cents,
        stock-outs, space shortfalls, parcels by integrator)."""
        C = len(self.channels)
        self.t_created = np.zeros(C, dtype=np.int64)
        self.t_4pl = 0
        self.t_delivered = np.zeros(C, dtype=np.int64)
        self.t_lost = 0
        self.t_on_time = 0
        self.t_lead = np.zeros(MAX_LEAD + 1, dtype=np.int64)
        self.t_cost = 0
        self.stockouts_today = 0
        self.space_short_today = 0
        self.t_by_integrator = np.zeros(max(getattr(self, "n_integrators", 0), 1), dtype=np.int64)
        self.t_pps = [0, 0]

    # ---- events ----
    def on_space_shortfall(self, wh: int, units: int):
        """A replenishment order was cut by ``units`` for want of space at warehouse ``wh``."""
        self.space_short[wh] += units
        self.space_short_today += units

    def on_created(self, channel: np.ndarray, integrator: np.ndarray, fallback):
        """Count new parcels by channel and integrator (-1: bought by the merchant itself);
        ``fallback``: whether this batch ships direct while its warehouse fills (then all of
        it counts as fallback, per channel)."""
        C = len(self.channels)
        c = np.bincount(channel, minlength=C)
        self.created += c
        self.t_created += c
        via = integrator >= 0
        self.created_4pl += np.bincount(channel[via], minlength=C)
        self.t_4pl += int(via.sum())
        if via.any():
            k = np.bincount(integrator[via], minlength=self.t_by_integrator.size)
            self.t_by_integrator += k
            self.created_by_integrator += k
        if np.any(fallback):
            self.fallback += c

    def on_finished(self, finished: dict):
        """Count parcels that finished today (columns of the parcel table): delivered, on time,
        lost, damaged, lead times, logistics cost and duty (cents) by channel, and how many
        providers each 4PL parcel passed through."""
        C = len(self.channels)
        channel = finished["channel"].astype(np.int64)
        status = finished["status"]
        is_delivered = status == DELIVERED
        lead = np.clip(finished["finished_day"] - finished["created_day"], 0, MAX_LEAD).astype(np.int64)
        on_time = is_delivered & (lead <= finished["promised_days"])
        self.delivered += np.bincount(channel[is_delivered], minlength=C)
        self.lost += np.bincount(channel[status == LOST], minlength=C)
        self.on_time += np.bincount(channel[on_time], minlength=C)
        self.damaged += np.bincount(channel[is_delivered & (finished["damaged"] > 0)], minlength=C)
        np.add.at(self.lead_hist, (channel[is_delivered], lead[is_delivered]), 1)
        cost = finished["price_cents"] + finished["upstream_cents"]
        self.logistics_cents += np.bincount(channel[is_delivered], weights=cost[is_delivered],
                                            minlength=C).astype(np.int64)
        duty = finished["duty_cents"] + finished["upstream_duty_cents"]
        self.duty_cents += np.bincount(channel[is_delivered], weights=duty[is_delivered],
                                       minlength=C).astype(np.int64)
        self.t_delivered += np.bincount(channel[is_delivered], minlength=C)
        self.t_lost += int((status == LOST).sum())
        self.t_on_time += int(on_time.sum())
        self.t_lead += np.bincount(lead[is_delivered], minlength=MAX_LEAD + 1)
        self.t_cost += int(cost[is_delivered].sum())
        # integration: how many distinct providers a 4PL parcel passed through
        via = is_delivered & (finished["integrator"] >= 0)
        if via.any():
            legs = np.sort(finished["leg_provider"][via], axis=1)
            distinct = ((legs[:, 1:] != legs[:, :-1]) & (legs[:, 1:] >= 0)).sum(axis=1) + (legs[:, 0] >= 0)
            self.t_pps[0] += int(distinct.sum())
            self.t_pps[1] += int(via.sum())
            self.providers_per_service[0] += int(distinct.sum())
            self.providers_per_service[1] += int(via.sum())

    # ---- reports ----
    def daily(self, model: Marketplace) -> dict:
        """Today's figures: one row of timeseries.parquet."""
        flow, offers = model.flow, model.offers
        delivered = int(self.t_delivered.sum())
        finished = delivered + self.t_lost
        created = int(self.t_created.sum())
        row = {
            "day": model.day,
            "date": model.date.isoformat(),
            "parcels_created": created,
            "parcels_delivered": delivered,
            "parcels_lost": self.t_lost,
            "parcels_in_transit": int(self.created.sum() - self.delivered.sum() - self.lost.sum()),
            "on_time_rate": self.t_on_time / finished if finished else float("nan"),
            "mean_lead_time_days": _mean_from_hist(self.t_lead),
            "p95_lead_time_days": _p95(self.t_lead),
            "mean_logistics_cost": self.t_cost / 100.0 / delivered if delivered else float("nan"),
            "fourpl_share": self.t_4pl / created if created else float("nan"),
            "spot_share_of_legs": flow.spot_legs / flow.legs_started if flow.legs_started else float("nan"),
            "stockouts": self.stockouts_today,
            "waiting_for_stock": int((model.parcels["status"] == WAITING_STOCK).sum()),
            "consignments_in_transit": len(model.inventory.consignments),
            "units_in_stock": int(model.inventory.stock.sum()),
            "space_shortfall_units": self.space_short_today,
            "inspections": flow.inspections,
            "customs_holds": flow.holds,
            "penalties_usd": flow.penalties_cents / 100.0,
            "claims_usd": flow.claims_cents / 100.0,
            "service_credits_usd": flow.service_credits_cents / 100.0,
            "storage_usd": model.inventory.storage_cents_today / 100.0,
            "tenders": model.tenders_today,
            "active_contracts": int(model.active_contracts.size),
            "ledger_imbalance_cents": model.ledger.imbalance(),
            # trade credit: the day's invoices, payments, late payment and bad debt (market/money/credit.py)
            "receivables_usd": model.credit.receivables_cents() / 100.0,
            "invoices_issued": model.credit.today["issued"],
            "invoices_gone_late": model.credit.today["went_late"],
            "invoices_defaulted": model.credit.today["defaulted"],
            "bad_debt_usd": model.credit.today["bad_debt_cents"] / 100.0,
            "late_interest_usd": model.credit.today["interest_cents"] / 100.0,
            "prepaid_usd": model.credit.today["prepaid_cents"] / 100.0,
            "shocks_in_force": model.shockboard.names_in_force(),
        }
        for i, ch in enumerate(self.channels):
            row[f"created_{ch}"] = int(self.t_created[i])
        cap_by_mode = np.zeros(len(MODES))
        used_by_mode = np.zeros(len(MODES))
        lane_offers = np.flatnonzero(model.net.res_mode[offers.resource] >= 0)
        modes = model.net.res_mode[offers.resource[lane_offers]]
        parcel = ~model.net.res_bulk[offers.resource[lane_offers]]
        np.add.at(cap_by_mode, modes[parcel], offers.capacity[lane_offers[parcel]])
        np.add.at(used_by_mode, modes[parcel], offers.used_today[lane_offers[parcel]])
        self.price_sums += np.vstack([flow.contract_rate_sum, flow.spot_rate_sum])
        self.price_kg += np.vstack([flow.contract_rate_n, flow.spot_rate_n])
        self.lane_price = flow.lane_price.copy() if self.lane_price is None else self.lane_price + flow.lane_price
        # money moved today, by kind
        from market.money.ledger import KIND
        totals = model.ledger.total_by_kind.copy()
        today = totals - (self._money_prev if self._money_prev is not None else 0)
        self._money_prev = totals
        row["premiums_usd"] = today[KIND["premium"]] / 100.0
        row["claims_filed"] = model.claims.filed_today
        row["claims_paid_usd"] = model.claims.paid_today_cents / 100.0
        row["insurance_payouts_usd"] = model.claims.insurance_paid_today_cents / 100.0
        row["dispute_costs_usd"] = model.claims.dispute_cost_today_cents / 100.0
        row["disputes_open"] = model.claims.open_disputes()[0]
        row["contract_breaches"] = model.breaches_today
        row["shortfall_fees_usd"] = today[KIND["shortfall_fee"]] / 100.0
        row["spot_auction_trades"] = flow.auction_trades
        row["subcontracted_usd"] = flow.subcontracted_cents / 100.0
        for i, mode in enumerate(MODES):
            if mode in ("sea", "rail"):
                continue
            row[f"utilisation_{mode}"] = float(used_by_mode[i] / cap_by_mode[i]) if cap_by_mode[i] else float("nan")
            if model.steps and cap_by_mode[i]:
                j = self.util_modes.index(mode)
                self.util_sum[j] += row[f"utilisation_{mode}"]
                self.util_days[j] += 1
            n_c, n_s = flow.contract_rate_n[i], flow.spot_rate_n[i]
            row[f"contract_price_{mode}"] = flow.contract_rate_sum[i] / n_c if n_c else float("nan")
            row[f"spot_price_{mode}"] = flow.spot_rate_sum[i] / n_s if n_s else float("nan")
        row["providers_per_4pl_parcel"] = self.t_pps[0] / self.t_pps[1] if self.t_pps[1] else float("nan")
        # visibility and after-sales (market/goods/tracking.py, market/goods/aftersales.py)
        tr = model.tracking
        row["tracking_legs"] = tr.t_legs
        row["tracking_coverage"] = tr.t_seen / tr.t_legs if tr.t_legs else float("nan")
        row["delays"] = tr.t_delays
        row["delays_detected"] = tr.t_detected
        row["delays_missed"] = tr.t_delays - tr.t_detected
        row["expedited_days"] = tr.t_expedited_days
        row["expedite_usd"] = tr.t_expedite_cents / 100.0
        row["visibility_systems_usd"] = tr.t_systems_cents / 100.0
        row.update(model.aftersales.daily())
        for it in model.integrators:
            row[f"cash_{it.name}"] = it.cash
            row[f"markup_{it.name}"] = it.markup
            row[f"share_{it.name}"] = self.t_by_integrator[it.index] / created if created else float("nan")
            eff = model.efficiency.get(it.index, {})
            row[f"efficiency_{it.name}"] = eff.get("efficiency", float("nan"))
            row[f"rerouted_{it.name}"] = it.rerouted
            cov = it.tracking_coverage
            row[f"tracking_coverage_{it.name}"] = cov if cov is not None else float("nan")
            row[f"control_tower_{it.name}"] = int(it.control_tower)
        # market structure: providers in the market, entry and exit, concentration by segment
        for role, group in (("carriers", model.carriers), ("warehouse_operators", model.operators),
                            ("customs_agents", model.brokers)):
            row[f"active_{role}"] = sum(p.in_market for p in group)
        # warehouse space: the share holding stock, and the share held by stock and stock on its way
        inv = model.inventory
        space = inv.space()
        in_stock, held = inv.stock.sum(axis=0), inv.held()
        with np.errstate(invalid="ignore", divide="ignore"):
            used = np.where(space > 0, in_stock / space, np.nan)
            committed = np.where(space > 0, held / space, np.nan)
        for w, node in enumerate(model.warehouse_nodes):
            row[f"space_used_{node}"] = float(used[w])
        if model.steps:       # the state at construction is not a day of the run
            self.space_peak = np.fmax(self.space_peak, committed)
            self.space_used_sum += np.nan_to_num(used)
            self.space_days += 1
        if model.steps:
            self._count_lanes(model)
        row["entries"] = model.evolution.entries_today
        row["exits"] = model.evolution.exits_today
        row.update(model.orders.daily_figures())      # orders and sales by market, merchants' markets
        row.update(model.returns.daily_figures())     # returns opened, on their way back, resold, scrapped
        row.update(model.payments.daily_figures())    # payment fees, FX gains and losses, settlement, rates
        for name, h in zip(self.segments, self.segment_hhi(model)):
            row[f"hhi_{name}"] = h
        return row

    def _count_lanes(self, model: Marketplace):
        """Add today's parcels carried and open capacity of every parcel lane to the run's totals."""
        offers, net = model.offers, model.net
        R = net.res_kind.size
        if self.res_used is None:
            self.res_used, self.res_capacity = np.zeros(R), np.zeros(R)
            self.parcel_lanes = np.flatnonzero((net.res_mode >= 0) & ~net.res_bulk)
        self.res_used += np.bincount(offers.resource, weights=offers.used_today, minlength=R)
        self.res_capacity += np.bincount(offers.resource, weights=np.where(offers.active, offers.capacity, 0.0),
                                         minlength=R)

    def segment_hhi(self, model: Marketplace) -> np.ndarray:
        """HHI (0-10,000) of today's volume among the providers of each segment."""
        from market.metrics.concentration import hhi_by_segment
        from market.world import EXPORT, HANDLING, IMPORT
        offers, net = model.offers, model.net
        kind = net.res_kind[offers.resource]
        mode = net.res_mode[offers.resource]
        seg = np.where(mode >= 0, mode, np.where(kind == HANDLING, len(MODES), len(MODES) + 1))
        seg = np.where((kind == EXPORT) | (kind == IMPORT), len(MODES) + 1, seg)
        return hhi_by_segment(seg, offers.provider, offers.used_today, n_segments=len(self.segments),
                              n_firms=int(offers.provider.max()) + 1)

    def _figures(self, idx) -> dict:
        created = int(self.created[idx].sum())
        delivered = int(self.delivered[idx].sum())
        lost = int(self.lost[idx].sum())
        hist = self.lead_hist[idx].sum(axis=0) if np.ndim(idx) else self.lead_hist[idx]
        finished = delivered + lost
        return {
            "parcels_created": created,
            "parcels_delivered": delivered,
            "parcels_in_transit": created - delivered - lost,
            "parcels_lost": lost,
            "on_time_rate": int(self.on_time[idx].sum()) / finished if finished else None,
            "mean_lead_time_days": _mean_from_hist(hist) if delivered else None,
            "p95_lead_time_days": _p95(hist) if delivered else None,
            "mean_logistics_cost": int(self.logistics_cents[idx].sum()) / 100.0 / delivered if delivered else None,
            "mean_duty": int(self.duty_cents[idx].sum()) / 100.0 / delivered if delivered else None,
            "fourpl_share": int(self.created_4pl[idx].sum()) / created if created else None,
            "parcels_damaged": int(self.damaged[idx].sum()),
        }

    def spot_over_contract(self, lanes: np.ndarray) -> float | None:
        """Spot over contract price of a 1 kg parcel on the same lanes: over the ``lanes`` (a mask
        of resources) that carried legs both ways, what their spot legs paid over what the same
        number of legs would have paid at each lane's mean contract price (None where no lane
        carried both). Lanes differ several-fold in price (a feeder truck and a border
        crossing), so the ratio of a mode's mean prices would measure which lanes go spot, not
        how spot prices compare with contract ones."""
        if self.lane_price is None:
            return None
        c_sum, c_n, s_sum, s_n = self.lane_price
        both = lanes & (c_n > 0) & (s_n > 0)
        if not both.any():
            return None
        return float(s_sum[both].sum() / (s_n[both] * c_sum[both] / c_n[both]).sum())

    def summary(self, model: Marketplace) -> dict:
        """The run's totals (``summary.json``): parcels by channel, money by kind (USD),
        contracts, prices by mode, claims, insurance, integrators, evolution and agents."""
        out = {"scenario": model.scenario_name, "days": model.day + 1 if model.steps else 0,
               "start_date": model.config.simulation.start_date.isoformat()}
        out.update(self._figures(np.arange(len(self.channels))))
        out["ledger_imbalance"] = model.ledger.imbalance() / 100.0
        out["by_channel"] = {ch: self._figures(i) for i, ch in enumerate(self.channels)}
        out["stockouts"] = int(self.stockouts)
        space = model.inventory.space()
        out["warehouse_space"] = {
            node: {"space_units": float(space[w]),
                   "mean_share_in_stock": float(self.space_used_sum[w] / self.space_days) if self.space_days else None,
                   "peak_share_committed": float(self.space_peak[w]),
                   "shortfall_units": int(self.space_short[w])}
            for w, node in enumerate(model.warehouse_nodes)}
        out["consignments_lost"] = self.consignments_lost
        totals = model.ledger.total_by_kind
        from market.money.ledger import KINDS
        out["money_usd"] = {k: totals[i] / 100.0 for i, k in enumerate(KINDS)}
        c = model.credit.counters
        book = model.credit.book
        scores = model.credit.scores(model.merchant_accts) if model.merchants else np.zeros(0)
        out["credit"] = {
            "invoices_issued": c["issued"], "invoiced_usd": c["issued_cents"] / 100.0,
            "prepaid_usd": c["prepaid_cents"] / 100.0, "paid_usd": c["paid_cents"] / 100.0,
            "invoices_paid_on_time": c["paid_on_time"], "invoices_paid_late": c["paid_late"],
            "invoices_gone_late": c["went_late"], "invoices_defaulted": c["defaulted"],
            "bad_debt_usd": c["bad_debt_cents"] / 100.0, "late_interest_usd": c["interest_cents"] / 100.0,
            "receivables_outstanding_usd": model.credit.receivables_cents() / 100.0,
            "invoices_open": int((book.live("status") == 0).sum()),     # closed ones are never live-open
            "merchant_score_min": float(scores.min()) if scores.size else None,
            "merchant_score_median": float(np.median(scores)) if scores.size else None,
            "merchant_score_max": float(scores.max()) if scores.size else None,
        }
        out["contracts_signed"] = int(model.contracts.n)
        book = model.contracts
        from market.money.contracts import STATUS_NAMES
        out["contracts"] = {
            "by_status": {STATUS_NAMES[k]: int((book.status == k).sum()) for k in range(len(STATUS_NAMES))
                          if (book.status == k).any()},
            "by_mechanism": {mech: int(n) for mech, n in zip(*np.unique(np.array(book.mechanism, dtype=object),
                                                                        return_counts=True))} if book.n else {},
            "penalties_usd": int(book.penalties_cents.sum()) / 100.0,
            "shortfall_fees_usd": int(book.shortfall_cents.sum()) / 100.0,
        }
        prices = {}
        for i, mode in enumerate(MODES):
            c_kg, s_kg = self.price_kg[0, i], self.price_kg[1, i]
            if c_kg or s_kg:
                prices[mode] = {"contract": self.price_sums[0, i] / c_kg if c_kg else None,
                                "spot": self.price_sums[1, i] / s_kg if s_kg else None,
                                "contract_legs": int(c_kg), "spot_legs": int(s_kg),
                                "spot_over_contract_same_lane": self.spot_over_contract(model.net.res_mode == i)}
        out["prices_by_mode"] = prices
        claims = model.claims
        n_open, amt_open = claims.open_disputes()
        from market.money.claims import INSURANCE
        ins = claims["kind"] == INSURANCE
        out["claims"] = {
            "filed": int(claims.n), "paid": int((claims["status"] == 1).sum()),
            "amount_filed_usd": int(claims["amount_cents"].sum()) / 100.0,
            "amount_paid_usd": int(claims["paid_cents"].sum()) / 100.0,
            "disputed": int(claims["disputed"].sum()),
            "disputes_unresolved": n_open, "disputes_unresolved_usd": amt_open / 100.0,
            "dispute_costs_usd": int(claims["dispute_cost_cents"].sum()) / 100.0,
        }
        out["insurance"] = {
            "premiums_usd": totals[KINDS.index("premium")] / 100.0,
            "payouts_usd": int(claims["paid_cents"][ins].sum()) / 100.0,
            "parcels_insured_share": self.insured_parcels / max(int(self.created.sum()), 1),
        }
        out["integrators"] = {}
        for it in model.integrators:
            eff = model.efficiency.get(it.index, {})
            cat = it.catalogue
            out["integrators"][it.name] = {
                "parcel_share": int(self.created_by_integrator[it.index]) / max(int(self.created.sum()), 1),
                "pricing": it.pricing, "markup": it.markup, "cash_usd": it.cash,
                "in_market": it.in_market, "rerouted": it.rerouted,
                "integration_efficiency": eff.get("efficiency"),
                "optimum_cost_per_day": eff.get("optimum"), "realised_cost_per_day": eff.get("realised"),
                "composition_requests": cat.requests if cat else 0,
                "composition_cache_hits": cat.cache.hits if cat else 0,
                "visibility": it.visibility(),
            }
        out["tracking"] = model.tracking.summary()
        out["tracking"]["diy"] = model.aftersales.slot_figures(0)
        out["tracking"]["consignments_untracked"] = model.inventory.unseen_dispatched
        out["aftersales"] = model.aftersales.summary()
        pps = self.providers_per_service
        out["providers_per_4pl_parcel"] = pps[0] / pps[1] if pps[1] else None
        out["evolution"] = {"entries": model.evolution.entries, "exits": model.evolution.exits,
                            "providers_in_market": sum(p.in_market for p in
                                                       model.carriers + model.operators + model.brokers)}
        out.update(model.orders.summary_figures())    # orders and sales by market, merchants' markets
        out["returns"] = model.returns.summary_figures()
        out.update(model.payments.summary_figures())  # payment fees, FX gains and losses, settlement
        out["currency"] = model.rates.summary_figures()
        if self.res_used is None:           # no day has run
            R = model.net.res_kind.size
            self.res_used, self.res_capacity = np.zeros(R), np.zeros(R)
            self.parcel_lanes = np.flatnonzero((model.net.res_mode >= 0) & ~model.net.res_bulk)
        from market.metrics.structure import market_structure
        out["market_structure"] = market_structure(model, self)
        out["agents"] = vars(model.agents_summary)
        out["real_world"] = self.real_world(model, out)
        return out

    def real_world(self, model: Marketplace, out: dict) -> dict:
        """The run's counts as the real market they stand for (``simulation.sample_rate`` real
        parcels and merchants per simulated one): totals, and a year's worth at the run's pace."""
        rate = float(model.config.simulation.sample_rate)
        days = out["days"]
        per_year = 365.0 / days if days else 0.0
        created = int(self.created.sum())
        by_market = {m: f["parcels_created"] for m, f in out.get("by_market", {}).items()
                     if isinstance(f, dict) and "parcels_created" in f}
        return {
            "sample_rate": rate,
            "merchants": len(model.merchants) * rate,
            "parcels_created": created * rate,
            "parcels_delivered": int(self.delivered.sum()) * rate,
            "parcels_per_year": created * rate * per_year,
            "parcels_per_year_by_market": {m: n * rate * per_year for m, n in by_market.items()},
            "parcels_per_year_by_channel": {ch: int(self.created[i]) * rate * per_year
                                            for i, ch in enumerate(self.channels)},
        }
