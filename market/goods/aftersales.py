"""After-sales contacts and consumer payment disputes, and what they cost.

When a parcel finishes (delivered or lost), its consumer may contact the seller:

* "where is my order" (WISMO): ``aftersales.wismo_rate`` contacts per on-time parcel with no
  tracking seen, less ``tracking_reduction`` times the share of its legs whose event was seen
  (consumers follow the parcel instead of asking), plus ``wismo_per_late_day`` per day late,
  of which ``warn_reduction`` is avoided when the buyer detected a delay and warned;
* damage (and loss): ``damage_contacts`` per lost or damaged parcel;
* a payment dispute (chargeback): with chance ``dispute_rate_late`` for a late parcel (less
  ``tracking_reduction`` times the share of legs seen, and ``warn_reduction`` when warned) and
  ``dispute_rate_hit`` for a lost or damaged one. The merchant pays ``dispute_fee``; a late
  parcel's dispute is lost when there is no proof of delivery (the last leg's event unseen):
  the merchant refunds the sale. Lost and damaged parcels were refunded already.

Contacts are Poisson counts drawn from the run's stream; each costs ``contact_cost`` to the
parcel's logistics buyer (the 4PL that handles its merchants' after-sales, or the merchant
doing it itself), paid to an after-sales account (contact centres, card schemes). Per parcel
``wismo``, ``damage_contacts``, ``consumer_dispute`` and ``contact_cents`` reach
``parcels.parquet``; counts and cost by kind reach the daily series and ``summary.json``.

:meth:`AfterSales.charge` books contacts of any kind (returns' contacts may call it with
``kind="returns"``); :meth:`AfterSales.expected_cost` is the learned after-sales cost per
parcel of a channel and buyer, which integrators price in and merchants weigh when doing it
themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from market.goods.parcels import DELIVERED, LOST
from market.money.ledger import to_cents

if TYPE_CHECKING:
    from market.model import Marketplace

KINDS = ("wismo", "damage", "dispute")


class AfterSales:
    """Contacts and disputes of finished parcels, their cost, and the learned cost per parcel."""

    ALPHA = 0.05          # smoothing per day of the cost per parcel by channel and buyer

    def __init__(self, model: Marketplace):
        self.model = model
        self.cfg = model.config.aftersales
        self.acct = model.ledger.open("after-sales (contact centres, card schemes)")
        n_ch = len(model.world.channels)
        n_slots = len(model.integrators) + 1
        self.cost_ema = np.full((n_ch, n_slots), 0.0)       # USD per finished parcel, by channel x slot
        self.cost_ema[:] = self.prior(model.tracking)[None, :]
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.cents: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.dispute_refund_cents = 0
        self.disputes_lost = 0
        self.by_slot = np.zeros((n_slots, 2), dtype=np.int64)   # contacts, cents
        self.reset_day()

    def prior(self, tracking) -> np.ndarray:
        """The contact cost per parcel each buyer slot expects before it has seen any: the
        on-time WISMO rate at the share of events it would see (providers' mean coverage times
        its capture) plus the loss and damage contacts at the world's mean loss and damage
        risk, times the contact cost."""
        cfg, model = self.cfg, self.model
        slots = np.arange(len(model.integrators) + 1) - 1
        capture, _ = tracking.capture(slots)
        cov = float(np.mean(tracking.coverage[tracking.klass >= 0])) if (tracking.klass >= 0).any() else 0.0
        hit = float(np.mean(model.net.route_loss)) + float(np.mean(model.net.res_damage))
        return (cfg.wismo_rate * (1.0 - cfg.tracking_reduction * cov * capture) + cfg.damage_contacts * hit) \
            * cfg.contact_cost

    def reset_day(self):
        """Zero today's counters."""
        self.t_counts: dict[str, int] = dict.fromkeys(self.counts, 0)
        self.t_cents: dict[str, int] = dict.fromkeys(self.counts, 0)
        self.t_refund_cents = 0

    def charge(self, kind: str, payer_acct: np.ndarray, n_contacts: np.ndarray, unit_cost: float | None = None) -> np.ndarray:
        """Book ``n_contacts`` contacts of ``kind`` per payer (arrays) at ``unit_cost`` USD each
        (default ``aftersales.contact_cost``); returns the cents charged per payer."""
        n_contacts = np.asarray(n_contacts, dtype=np.int64)
        unit = int(to_cents(float(self.cfg.contact_cost if unit_cost is None else unit_cost)))
        cents = n_contacts * unit
        paying = cents > 0
        if paying.any():
            self.model.ledger.post(np.asarray(payer_acct)[paying], self.acct, cents[paying], "contact")
        self.counts[kind] = self.counts.get(kind, 0) + int(n_contacts.sum())
        self.cents[kind] = self.cents.get(kind, 0) + int(cents.sum())
        self.t_counts[kind] = self.t_counts.get(kind, 0) + int(n_contacts.sum())
        self.t_cents[kind] = self.t_cents.get(kind, 0) + int(cents.sum())
        return cents

    def on_finished(self, finished: dict, day: int):
        """Contacts and disputes of the parcels finished today (columns of the parcel table;
        their after-sales columns are filled in, for ``parcels.parquet``)."""
        model, cfg = self.model, self.cfg
        n = finished["parcel_id"].size
        if n == 0:
            return
        status = finished["status"]
        lost = status == LOST
        delivered = status == DELIVERED
        hit = lost | (finished["damaged"] > 0)
        lead = finished["finished_day"] - finished["created_day"]
        late_days = np.where(delivered, np.maximum(lead - finished["promised_days"], 0), 0).astype(np.float64)
        n_st = finished["n_stages"].astype(np.int64)
        seen = finished["leg_seen"]
        stages = np.arange(seen.shape[1])[None, :]
        on_route = stages < n_st[:, None]
        seen_share = ((seen >= 0) & on_route).sum(axis=1) / np.maximum(n_st, 1)
        warned = finished["delays_detected"] > 0
        lam = cfg.wismo_rate * (1.0 - cfg.tracking_reduction * seen_share) \
            + cfg.wismo_per_late_day * late_days * np.where(warned, 1.0 - cfg.warn_reduction, 1.0)
        lam = np.where(lost, 0.0, lam)          # a lost parcel's consumer asks about the loss (below)
        rng = model.rng
        wismo = rng.poisson(lam)
        damage = rng.poisson(np.where(hit, cfg.damage_contacts, 0.0))
        # a consumer who can follow the parcel, or was warned of its delay, disputes less (as for WISMO)
        p_dispute = np.where(late_days > 0, cfg.dispute_rate_late, 0.0) \
            * (1.0 - cfg.tracking_reduction * seen_share) * np.where(warned, 1.0 - cfg.warn_reduction, 1.0) \
            + np.where(hit, cfg.dispute_rate_hit, 0.0)
        dispute = rng.random(n) < np.minimum(p_dispute, 1.0)
        last = np.clip(n_st - 1, 0, seen.shape[1] - 1)
        proof = seen[np.arange(n), last] >= 0
        payer = finished["buyer_acct"]
        c1 = self.charge("wismo", payer, wismo)
        c2 = self.charge("damage", payer, damage)
        fee = int(to_cents(float(cfg.dispute_fee)))
        dispute_cents = np.where(dispute, fee, 0).astype(np.int64)
        if dispute.any():
            if fee:
                model.ledger.post(finished["merchant_acct"][dispute], self.acct, dispute_cents[dispute], "dispute_fee")
            refund = dispute & delivered & ~hit & ~proof
            if refund.any():
                model.ledger.post(finished["merchant_acct"][refund], model.acct_consumers,
                                  finished["sale_cents"][refund], "dispute_refund")
                r = int(finished["sale_cents"][refund].sum())
                self.dispute_refund_cents += r
                self.t_refund_cents += r
                self.disputes_lost += int(refund.sum())
        k = int(dispute.sum())
        self.counts["dispute"] += k
        self.cents["dispute"] += int(dispute_cents.sum())
        self.t_counts["dispute"] += k
        self.t_cents["dispute"] += int(dispute_cents.sum())
        finished["wismo"] = wismo.astype(np.int8)
        finished["damage_contacts"] = damage.astype(np.int8)
        finished["consumer_dispute"] = dispute.astype(np.int8)
        finished["contact_cents"] = c1 + c2
        # learned cost per parcel (contacts, to the logistics buyer) by channel and buyer slot
        slot = finished["integrator_idx"].astype(np.int64) + 1
        ch = finished["channel"].astype(np.int64)
        shape = self.cost_ema.shape
        key = ch * shape[1] + slot
        size = shape[0] * shape[1]
        cnt = np.bincount(key, minlength=size).reshape(shape)
        tot = np.bincount(key, weights=(c1 + c2) / 100.0, minlength=size).reshape(shape)
        has = cnt > 0
        self.cost_ema[has] += self.ALPHA * (tot[has] / cnt[has] - self.cost_ema[has])
        np.add.at(self.by_slot, (slot, 0), wismo + damage)
        np.add.at(self.by_slot, (slot, 1), c1 + c2)

    def expected_cost(self, channel: int, integrator_idx: int) -> float:
        """The after-sales contact cost per parcel, USD, seen on a channel by a buyer (integrator
        index, -1 for merchants doing it themselves)."""
        return float(self.cost_ema[channel, integrator_idx + 1])

    # ---- reporting ----
    def daily(self) -> dict:
        """Today's figures for the time series."""
        row = {}
        for k in self.t_counts:
            row[f"contacts_{k}"] = self.t_counts[k]
            row[f"contact_cost_{k}_usd"] = self.t_cents[k] / 100.0
        row["dispute_refunds_usd"] = self.t_refund_cents / 100.0
        return row

    def summary(self) -> dict:
        """Run totals by kind (``summary.json``)."""
        return {"contacts": dict(self.counts), "cost_usd": {k: v / 100.0 for k, v in self.cents.items()},
                "consumer_disputes": self.counts["dispute"], "disputes_lost": self.disputes_lost,
                "dispute_refunds_usd": self.dispute_refund_cents / 100.0}

    def slot_figures(self, slot: int) -> dict:
        """Contacts and their cost for one buyer slot (0: merchants themselves; i + 1: integrator i)."""
        return {"contacts": int(self.by_slot[slot, 0]), "contact_cost_usd": int(self.by_slot[slot, 1]) / 100.0}
