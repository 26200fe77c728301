"""Tracking: events per leg, who sees them and when, and what seeing a delay early allows.

Every leg a parcel takes ends in a tracking event (a carrier's hand-off scan, a warehouse's
outbound scan, a customs release, the delivery scan), and a leg that runs late raises an
exception (a carrier delay, a customs inspection or hold) on the day the leg should have
ended. Whether an event is *recorded* depends on the provider serving the leg (its
``tracking_coverage``: postal small packets often go untracked abroad, express carriers scan
at every hand-off); whether and when the buyer of the legs (a merchant doing it itself, or
its 4PL) *sees* it depends on its systems: a merchant reading portals sees a share
``tracking.portal_capture`` of what is recorded, a 4PL's transport management system
``tracking.fourpl_capture``, both after a Poisson latency; a 4PL's control tower sees every
recorded event the same day, at a cost a day and a cost per provider it
integrates with.

What seeing does:

* a delay seen before the leg ends is *detected*: a 4PL expedites it (re-books, prioritises,
  has the broker correct the filing), recovering ``tracking.expedite_share`` of the days left
  of the delay, and pays the leg's provider ``tracking.expedite_cost``; a delay seen late or
  never is *missed*. Only a detected delay can be acted on.
* an integrator re-routes a parcel off a closed lane only when it knows where the parcel is
  (:meth:`Tracking.position_known`: the last hand-off was seen).
* after-sales contacts fall with the share of legs consumers can follow
  (:mod:`market.goods.aftersales`); claims with proof of the hand-over settle faster
  (:mod:`market.money.claims`); replenishment counts stock on its way only when the
  consignment is seen (:mod:`market.goods.inventory`).
* consumers answer the spread of delivery days they see for a channel and provider
  (:class:`DeliverySpread`), which detection and expediting narrow.

Per parcel and leg, two numpy columns (``leg_seen``: the day the leg's end event was seen,
``leg_detect``: the day a delay on it was detected, -1 for neither) and a few per parcel
(``delays``, ``delays_detected``, ``expedited_days``) reach ``parcels.parquet``. Everything is
vectorised over the parcels starting a leg; draws come from the run's stream in a fixed
order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.money.ledger import to_cents

if TYPE_CHECKING:
    from market.model import Marketplace

POSTAL, EXPRESS, FREIGHT, WAREHOUSE, CUSTOMS = range(5)
PROVIDER_CLASSES = ("postal", "express", "freight", "warehouse", "customs")
EXPRESS_GROUPS = ("express", "dedicated")
# standard deviation of delivery days consumers expect of a channel and provider nobody has used
# yet, as a share of its expected days (assumption: a quarter of the transit time)
SPREAD_PRIOR = 0.25


def provider_class(provider) -> int:
    """The tracking class of a provider: postal, express (and dedicated lines), other freight,
    warehouse or customs."""
    if provider.role == "warehouse_operator":
        return WAREHOUSE
    if provider.role == "customs_agent":
        return CUSTOMS
    group = str(provider.group)
    if "post" in group:
        return POSTAL
    if group in EXPRESS_GROUPS:
        return EXPRESS
    return FREIGHT


class DeliverySpread:
    """The spread of delivery days consumers see per (channel, buyer slot): slot 0 is merchants
    doing it themselves, slot ``i + 1`` integrator ``i``. Exponentially smoothed first and
    second moments of the delivery days of parcels delivered each day."""

    PRIOR_N = 30.0       # parcels' worth of weight the prior keeps against what is observed
    ALPHA = 0.05         # smoothing per day with deliveries

    def __init__(self, n_channels: int, n_slots: int):
        self.mean = np.zeros((n_channels, n_slots))
        self.sq = np.zeros((n_channels, n_slots))
        self.n = np.zeros((n_channels, n_slots))

    def observe(self, channel: np.ndarray, slot: np.ndarray, lead: np.ndarray):
        """Today's delivered parcels (channel, slot, delivery days)."""
        if channel.size == 0:
            return
        shape = self.mean.shape
        key = channel.astype(np.int64) * shape[1] + slot.astype(np.int64)
        size = shape[0] * shape[1]
        cnt = np.bincount(key, minlength=size).reshape(shape)
        s1 = np.bincount(key, weights=lead, minlength=size).reshape(shape)
        s2 = np.bincount(key, weights=lead * lead, minlength=size).reshape(shape)
        has = cnt > 0
        first = has & (self.n == 0)
        m1, m2 = s1[has] / cnt[has], s2[has] / cnt[has]
        a = np.where(first[has], 1.0, self.ALPHA)
        self.mean[has] += a * (m1 - self.mean[has])
        self.sq[has] += a * (m2 - self.sq[has])
        self.n[has] += cnt[has]

    def sd(self, channel: int, slot: int, prior_sd: float) -> float:
        """The standard deviation of delivery days seen for (channel, slot); the prior weighs
        ``PRIOR_N`` parcels against what has been delivered."""
        n = self.n[channel, slot]
        seen = float(np.sqrt(max(self.sq[channel, slot] - self.mean[channel, slot] ** 2, 0.0))) if n else 0.0
        w = n / (n + self.PRIOR_N)
        return w * seen + (1.0 - w) * prior_sd


class Tracking:
    """Providers' coverage, buyers' sight of events, detection and expediting, control towers.

    Takes the model because tracking touches the parcel table (per-leg columns), the ledger
    (expediting, control towers), the integrators (their towers and contracts) and the run's
    random stream.
    """

    def __init__(self, model: Marketplace):
        self.model = model
        self.cfg = model.config.tracking
        n_uid = max(a.unique_id for a in model.agents) + 1
        self.coverage = np.zeros(n_uid)     # per provider uid: chance it records an event
        self.latency = np.zeros(n_uid)      # per provider uid: mean days until a portal shows it
        self.klass = np.full(n_uid, -1, dtype=np.int64)
        for p in model.carriers + model.operators + model.brokers:
            self.add_provider(p)
        n_int = len(model.integrators)
        self.tower = np.zeros(max(n_int, 1), dtype=bool)
        self.rule = [self.cfg.tower_by_integrator[i] if i < len(self.cfg.tower_by_integrator)
                     else self.cfg.control_tower for i in range(n_int)]
        for i, rule in enumerate(self.rule):
            self.tower[i] = rule == "always"
        for it in model.integrators:
            it.control_tower = bool(self.tower[it.index])
        self.n_slots = n_int + 1
        n_ch = len(model.world.channels)
        self.spread = DeliverySpread(n_ch, self.n_slots)
        # run totals: legs started and legs whose end event was seen, by channel x slot and by provider
        self.legs = np.zeros((n_ch, self.n_slots), dtype=np.int64)
        self.legs_seen = np.zeros((n_ch, self.n_slots), dtype=np.int64)
        self.recorded_by_uid = np.zeros(n_uid, dtype=np.int64)
        self.legs_by_uid = np.zeros(n_uid, dtype=np.int64)
        self.delays = np.zeros(self.n_slots, dtype=np.int64)
        self.detected = np.zeros(self.n_slots, dtype=np.int64)
        self.expedited_days = np.zeros(self.n_slots, dtype=np.int64)
        self.parcels_slot = np.zeros(self.n_slots, dtype=np.int64)   # parcels that started their first leg
        self.expedite_cents = 0
        self.systems_cents = np.zeros(max(n_int, 1), dtype=np.int64)
        self.parcels_by_int = np.zeros(max(n_int, 1))     # parcels started since the last tower review
        self.reset_day()

    # ---- providers ----
    def add_provider(self, provider):
        """Give a provider its tracking coverage: its class's, times ``tracking.coverage_scale``,
        spread by one draw of its own (providers that enter mid-run too)."""
        cfg, uid = self.cfg, provider.unique_id
        if uid >= self.coverage.size:
            grow = uid + 1 - self.coverage.size
            self.coverage = np.concatenate([self.coverage, np.zeros(grow)])
            self.latency = np.concatenate([self.latency, np.zeros(grow)])
            self.klass = np.concatenate([self.klass, np.full(grow, -1, dtype=np.int64)])
            self.recorded_by_uid = np.concatenate([self.recorded_by_uid, np.zeros(grow, dtype=np.int64)])
            self.legs_by_uid = np.concatenate([self.legs_by_uid, np.zeros(grow, dtype=np.int64)])
        k = provider_class(provider)
        base = (cfg.coverage_postal, cfg.coverage_express, cfg.coverage_freight, cfg.coverage_warehouse,
                cfg.coverage_customs)[k]
        u = float(self.model.rng.uniform(-1.0, 1.0))
        cov = float(np.clip(base * (1.0 + cfg.provider_spread * u), 0.0, 1.0)) * cfg.coverage_scale
        self.coverage[uid] = cov
        self.latency[uid] = cfg.latency_postal if k == POSTAL else cfg.latency_other
        self.klass[uid] = k
        provider.tracking_coverage = cov        # for the app's agent inspector
        provider.tracking_class = PROVIDER_CLASSES[k]

    def reset_day(self):
        """Zero today's counters."""
        self.t_legs = 0
        self.t_seen = 0
        self.t_delays = 0
        self.t_detected = 0
        self.t_expedited_days = 0
        self.t_expedite_cents = 0
        self.t_systems_cents = 0

    # ---- the legs ----
    def capture(self, integrator_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(share of recorded events seen, whether latency applies) for parcels of these buyers
        (integrator index, -1 for merchants doing it themselves)."""
        tower = np.zeros(integrator_idx.size, dtype=bool)
        has = integrator_idx >= 0
        tower[has] = self.tower[integrator_idx[has]]
        share = np.where(has, self.cfg.fourpl_capture, self.cfg.portal_capture)
        return np.where(tower, 1.0, share), ~tower

    def on_start(self, rows: np.ndarray, stage: np.ndarray, uid: np.ndarray, payee: np.ndarray, day: int,
                 days: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """Parcels ``rows`` start leg ``stage`` today with provider ``uid`` (paid at ``payee``),
        taking ``days`` whole days of which ``extra`` (float days) is delay (a carrier's delay,
        an inspection, a hold). Draws whether the delay's exception and the leg's end event are
        seen and when; a 4PL expedites a delay it detects. Returns the leg's days after
        expediting; writes the per-leg and per-parcel tracking columns."""
        model, parcels, cfg = self.model, self.model.parcels, self.cfg
        n = rows.size
        if n == 0:
            return days
        integ = parcels["integrator_idx"][rows].astype(np.int64)
        capture, lagged = self.capture(integ)
        p_seen = self.coverage[uid] * capture
        lam = np.where(lagged, self.latency[uid], 0.0)
        u = model.rng.random((n, 2))
        lat = model.rng.poisson(lam, (2, n))
        days = np.asarray(days, dtype=np.int64)
        delayed = extra > 0
        # the exception shows on the day the leg should have ended (it is overdue, or held)
        delay_days = np.minimum(np.ceil(extra).astype(np.int64), days)
        expected_end = day + days - delay_days
        end = day + days
        detect = expected_end + lat[0]
        detected = delayed & (u[:, 0] < p_seen) & (detect < end)
        act = detected & (integ >= 0)
        saved = np.zeros(n, dtype=np.int64)
        if act.any() and cfg.expedite_share > 0:
            saved[act] = np.floor((end[act] - detect[act]) * cfg.expedite_share).astype(np.int64)
            paid = saved > 0
            if paid.any() and cfg.expedite_cost > 0:
                cents = np.full(int(paid.sum()), int(to_cents(float(cfg.expedite_cost))), dtype=np.int64)
                model.ledger.post(parcels["buyer_acct"][rows[paid]], payee[paid], cents, "expedite")
                self.t_expedite_cents += int(cents.sum())
                self.expedite_cents += int(cents.sum())
        days = days - saved
        # the leg's end event (hand-off, release, delivery) is seen after it happens, or never
        seen = u[:, 1] < p_seen
        parcels["leg_seen"][rows, stage] = np.where(seen, day + days + lat[1], -1)
        parcels["leg_detect"][rows, stage] = np.where(detected, detect, -1)
        parcels["delays"][rows] += delayed.astype(np.int8)
        parcels["delays_detected"][rows] += detected.astype(np.int8)
        parcels["expedited_days"][rows] += saved.astype(np.int16)
        parcels["expedited_legs"][rows] += (saved > 0).astype(np.int8)
        # counters
        slot = integ + 1
        ch = parcels["channel"][rows].astype(np.int64)
        key = ch * self.n_slots + slot
        size = self.legs.size
        self.legs += np.bincount(key, minlength=size).reshape(self.legs.shape)
        self.legs_seen += np.bincount(key[seen], minlength=size).reshape(self.legs.shape)
        self.legs_by_uid += np.bincount(uid, minlength=self.legs_by_uid.size)[: self.legs_by_uid.size]
        recorded = uid[u[:, 1] < self.coverage[uid]]
        self.recorded_by_uid += np.bincount(recorded, minlength=self.recorded_by_uid.size)[: self.recorded_by_uid.size]
        self.delays += np.bincount(slot, weights=delayed, minlength=self.n_slots).astype(np.int64)
        self.detected += np.bincount(slot, weights=detected, minlength=self.n_slots).astype(np.int64)
        self.expedited_days += np.bincount(slot, weights=saved, minlength=self.n_slots).astype(np.int64)
        first = stage == 0
        self.parcels_slot += np.bincount(slot[first], minlength=self.n_slots)
        has = (integ >= 0) & first
        if has.any():
            self.parcels_by_int += np.bincount(integ[has], minlength=self.parcels_by_int.size)
        self.t_legs += n
        self.t_seen += int(seen.sum())
        self.t_delays += int(delayed.sum())
        self.t_detected += int(detected.sum())
        self.t_expedited_days += int(saved.sum())
        return days

    def bulk_coverage(self) -> float:
        """Chance a bulk consignment's progress is recorded: the freight carriers' coverage."""
        return float(self.cfg.coverage_freight * self.cfg.coverage_scale)

    def spread_faced(self, channel: int, slot: int, prior_sd: float) -> float:
        """The delivery-time spread consumers face for a channel and buyer slot: the spread
        delivered parcels showed, less ``tracking.eta_relief`` times the share of legs whose
        event was seen there (a consumer who can follow the parcel learns of a delay as it
        happens)."""
        legs = self.legs[channel, slot]
        seen = self.legs_seen[channel, slot] / legs if legs else 0.0
        return self.spread.sd(channel, slot, prior_sd) * (1.0 - self.cfg.eta_relief * seen)

    def position_known(self, rows: np.ndarray, day: int) -> np.ndarray:
        """Whether the buyer knows where these parcels are today: at their first leg, or the
        last leg they finished was seen by today."""
        parcels = self.model.parcels
        stage = parcels["stage"][rows].astype(np.int64)
        prev = np.maximum(stage - 1, 0)
        seen = parcels["leg_seen"][rows, prev]
        return (stage == 0) | ((seen >= 0) & (seen <= day))

    # ---- control towers ----
    def integrator_day(self, it):
        """An integrator's day: review its control tower when due (``decide``), and pay for it."""
        model, cfg = self.model, self.cfg
        if model.day % cfg.tower_review_days == 0:
            if self.rule[it.index] == "decide":
                self.tower[it.index] = self.tower_pays(it)
            # the tower's cost per parcel, which its prices carry until the next review
            it.systems_per_parcel = self.tower_cost_per_day(it) / max(self.parcels_per_day(it), 1.0) \
                if self.tower[it.index] else 0.0
            self.parcels_by_int[it.index] = 0.0
        it.control_tower = bool(self.tower[it.index])
        if it.control_tower:
            cents = int(to_cents(float(self.tower_cost_per_day(it))))
            if cents:
                model.ledger.post(np.array([it.acct]), np.array([model.acct_inputs]), np.array([cents]),
                                  "visibility_systems")
                self.systems_cents[it.index] += cents
                self.t_systems_cents += cents

    def contracted_providers(self, it) -> int:
        """Providers the integrator holds active contracts with (each one an integration)."""
        book = self.model.contracts
        mine = (book.status == 1) & (book.buyer_acct == it.acct) & (book.offer >= 0)
        return int(np.unique(book.provider[mine]).size) if mine.any() else 0

    def tower_cost_per_day(self, it) -> float:
        """A control tower's cost a day: the platform plus an integration per contracted provider."""
        return self.cfg.tower_cost + self.cfg.integration_cost * self.contracted_providers(it)

    def parcels_per_day(self, it) -> float:
        """Parcels a day it sent on their way since its last review (before the first day: its
        planning volume)."""
        model, cfg = self.model, self.cfg
        if model.day == 0:
            return float(model.config.integrators.planning_volume)
        days = min(model.day, cfg.tower_review_days)
        return float(self.parcels_by_int[it.index]) / days

    def tower_pays(self, it) -> bool:
        """Whether a control tower is worth its cost: the after-sales contacts it avoids (the
        events it adds, ``1 - fourpl_capture`` of what providers record, each sparing its share of
        the on-time WISMO contacts) and the delays it lets the integrator expedite (each day saved
        sparing the lateness contacts and the service credit's share of its price), on the
        parcels it handled since its last review, against the tower's cost over the same days."""
        model, cfg, ac = self.model, self.cfg, self.model.config.aftersales
        parcels_day = self.parcels_per_day(it)
        slot = it.index + 1
        recorded = float(self.recorded_by_uid.sum()) / max(float(self.legs_by_uid.sum()), 1.0) \
            if self.legs_by_uid.sum() else float(np.mean(self.coverage[self.klass >= 0]))
        gain = recorded * (1.0 - cfg.fourpl_capture)          # extra share of events seen
        contacts = ac.wismo_rate * ac.tracking_reduction * gain * ac.contact_cost
        delay_rate = float(self.delays[slot]) / max(float(self.parcels_slot[slot]), 1.0)   # delays per parcel
        # days recovered per delay it detects: what it has recovered so far (before any, 2 days assumed)
        per_delay = float(self.expedited_days[slot]) / float(self.detected[slot]) if self.detected[slot] else \
            2.0 * cfg.expedite_share
        late = delay_rate * gain * per_delay * ac.wismo_per_late_day * ac.contact_cost
        saving = parcels_day * (contacts + late)
        return saving > self.tower_cost_per_day(it)

    # ---- reporting ----
    def coverage_of(self, slot: int | None = None, channel: int | None = None) -> float | None:
        """Share of legs whose end event the buyer saw, for a buyer slot and/or channel (None:
        none yet)."""
        legs, seen = self.legs, self.legs_seen
        if slot is not None:
            legs, seen = legs[:, slot], seen[:, slot]
        if channel is not None:
            legs, seen = legs[channel], seen[channel]
        total = int(np.sum(legs))
        return int(np.sum(seen)) / total if total else None

    def integrator_figures(self, it) -> dict:
        """An integrator's visibility figures (summary.json and the app's agent inspector)."""
        slot = it.index + 1
        d = int(self.delays[slot])
        return {"control_tower": bool(self.tower[it.index]), "tracking_coverage": self.coverage_of(slot),
                "delays": d, "delays_detected": int(self.detected[slot]), "delays_missed": d - int(self.detected[slot]),
                "expedited_days": int(self.expedited_days[slot]),
                "systems_cost_usd": int(self.systems_cents[it.index]) / 100.0}

    def summary(self) -> dict:
        """Run totals: coverage by channel, buyer and provider class; delays detected and missed."""
        model = self.model
        d, det = int(self.delays.sum()), int(self.detected.sum())
        by_class = {}
        for k, name in enumerate(PROVIDER_CLASSES):
            sel = self.klass == k
            legs = int(self.legs_by_uid[sel].sum())
            by_class[name] = {"providers": int(sel.sum()), "mean_coverage": float(self.coverage[sel].mean()) if sel.any() else None,
                              "legs": legs, "recorded_share": int(self.recorded_by_uid[sel].sum()) / legs if legs else None}
        return {
            "coverage_seen": self.coverage_of(),
            "coverage_seen_diy": self.coverage_of(0),
            "by_channel": {ch: self.coverage_of(channel=i) for i, ch in enumerate(model.world.channels)},
            "by_provider_class": by_class,
            "delays": d, "delays_detected": det, "delays_missed": d - det,
            "expedited_days": int(self.expedited_days.sum()), "expedite_usd": self.expedite_cents / 100.0,
            "systems_cost_usd": int(self.systems_cents.sum()) / 100.0,
            "control_towers": int(self.tower[: len(model.integrators)].sum()),
        }
