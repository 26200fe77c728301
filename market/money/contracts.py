"""Contracts as data: who buys what from whom, at what rate, capacity and service level.

A contract binds a buyer (a merchant doing it itself, or a 4PL integrator) to a provider's
offer on one resource: a lane (carrier), a warehouse (operator: handling and storage), or
brokerage at a customs point. End-to-end contracts record a 4PL's service to a merchant.
Parcels flow under a contract while it has capacity left today, otherwise at a spot price.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.money.ledger import to_cents

# signed -> active -> executed (ran its course within its service level) | breached (missed
# it) | expired (ended with nothing shipped) | terminated (the provider left the market)
SIGNED, ACTIVE, EXECUTED, BREACHED, EXPIRED, TERMINATED = 0, 1, 2, 3, 4, 5
STATUS_NAMES = ("signed", "active", "executed", "breached", "expired", "terminated")
ENDED = (EXECUTED, BREACHED, EXPIRED, TERMINATED)
SERVICES = ("lane", "warehouse", "brokerage", "end_to_end")

_FIELDS: dict[str, type] = {
    "buyer": np.int64, "buyer_acct": np.int64, "provider": np.int64, "provider_acct": np.int64,
    "offer": np.int64, "resource": np.int64, "service": np.int64,
    "rate_parcel": np.float64, "rate_kg": np.float64, "rate_shipment": np.float64,
    "rate_storage": np.float64, "cost_factor": np.float64,
    "capacity": np.float64, "volume_commitment": np.float64,
    "sla_days": np.int64, "penalty": np.float64,
    "start": np.int64, "end": np.int64, "status": np.int64,
    "round": np.int64, "n_bids": np.int64, "winning_bid": np.float64, "second_bid": np.float64,
    "score": np.float64,
    "allowance": np.float64,     # bulk contracts: volume left over the contract's life
    "executed": np.float64, "late": np.int64, "penalties_cents": np.int64,
    "shortfall_cents": np.int64,
    # contract net: the lead provider (provider_acct) has the leg served by a subcontractor
    "sub_acct": np.int64, "sub_provider": np.int64, "sub_rate_parcel": np.float64,
    "sub_rate_kg": np.float64, "sub_rate_shipment": np.float64,
}


class ContractBook:
    """Growable columns of contracts; the contract id is the row index."""

    def __init__(self):
        self.n = 0
        self._cap = 256
        self.cols = {k: np.zeros(self._cap, dtype=t) for k, t in _FIELDS.items()}
        self.mechanism: list[str] = []
        self.by_resource: dict[int, np.ndarray] = {}
        self.remaining_today = np.zeros(self._cap)

    def __getattr__(self, name):
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.n]
        raise AttributeError(name)

    def add(self, mechanism: str, **values) -> int:
        """Add a contract signed by ``mechanism`` (e.g. ``first_price``, ``quote/standard``)
        with these column values (the rest 0, and -1 for no subcontractor); returns its id."""
        if self.n == self._cap:
            self._cap *= 2
            for k, a in self.cols.items():
                b = np.zeros(self._cap, dtype=a.dtype)
                b[: self.n] = a[: self.n]
                self.cols[k] = b
            r = np.zeros(self._cap)
            r[: self.n] = self.remaining_today[: self.n]
            self.remaining_today = r
        cid = self.n
        for k, a in self.cols.items():
            a[cid] = values.get(k, -1 if k in ("sub_acct", "sub_provider") else 0)
        self.mechanism.append(mechanism)
        self.n += 1
        return cid

    def start_day(self, day: int) -> np.ndarray:
        """Activate and index contracts for ``day``; refill today's capacity.

        Returns the contracts whose term ended today (still marked active: the model
        settles them and sets their final status).
        """
        st = self.cols["status"][: self.n]
        start, end = self.start, self.end
        st[(st == SIGNED) & (start <= day)] = ACTIVE
        ended = np.flatnonzero((st == ACTIVE) & (end <= day))
        live = (st == ACTIVE) & (end > day) & (self.offer >= 0)     # leg contracts only
        active = np.flatnonzero(live)
        self.remaining_today[: self.n] = 0.0
        self.remaining_today[active] = self.capacity[active]
        res = self.resource[active]
        order = np.argsort(res, kind="stable")
        active, res = active[order], res[order]
        cut = np.flatnonzero(np.diff(res)) + 1
        self.by_resource = {int(g[0]): a for g, a in zip(np.split(res, cut), np.split(active, cut)) if a.size}
        return ended

    def live_legs(self, day: int | None = None) -> np.ndarray:
        """Signed or active contracts for legs (not end-to-end services), still running on ``day``."""
        st = self.status
        sel = ((st == ACTIVE) | (st == SIGNED)) & (self.offer >= 0)
        if day is not None:
            sel &= self.end > day
        return np.flatnonzero(sel)

    def settle_ended(self, ended: np.ndarray, ledger, rules, reference_weight: float) -> int:
        """Contracts whose term ended: the buyer pays a shortfall fee on committed volume it did
        not ship, and each gets its final status; returns how many were breached.

        ``rules``: the scenario's ``market`` section (shortfall fee share, SLA target).
        """
        if ended.size == 0:
            return 0
        status = self.cols["status"]
        short = np.maximum(self.volume_commitment[ended] - self.executed[ended], 0.0)
        reference_rate = self.rate_parcel[ended] + self.rate_kg[ended] * reference_weight
        fee = to_cents(short * reference_rate * rules.shortfall_fee_share)
        pay = fee > 0
        ledger.post(self.buyer_acct[ended[pay]], self.provider_acct[ended[pay]], fee[pay], "shortfall_fee")
        self.cols["shortfall_cents"][ended] = fee
        executed = self.executed[ended]
        on_time = 1.0 - np.divide(self.late[ended], executed, out=np.zeros(ended.size), where=executed > 0)
        status[ended] = np.where(executed <= 0, EXPIRED, np.where(on_time < rules.sla_target, BREACHED, EXECUTED))
        return int((status[ended] == BREACHED).sum())

    def ration_to_capacity(self, active: np.ndarray, offers, resource_is_bulk: np.ndarray):
        """Where a provider's capacity fell below what it promised (a disruption), its daily
        contracts share what is left in proportion to their capacity."""
        if active.size == 0:
            return
        daily = active[~resource_is_bulk[self.resource[active]]]
        promised = np.bincount(self.offer[daily], weights=self.capacity[daily], minlength=offers.n)
        ratio = np.divide(offers.capacity, promised, out=np.ones(offers.n), where=promised > 0)
        ratio = np.where(offers.active, np.minimum(ratio, 1.0), 0.0)
        self.remaining_today[daily] = self.capacity[daily] * ratio[self.offer[daily]]

    def frame(self, names: dict[int, str] | None = None) -> pd.DataFrame:
        """The contracts as a table (``contracts.parquet``), money in USD; with ``names``
        (agent id -> name), the buyers' and providers' names added."""
        data = {k: v.copy() for k, v in ((k, getattr(self, k)) for k in _FIELDS)}
        df = pd.DataFrame(data)
        df.insert(0, "contract_id", np.arange(self.n))
        df["status"] = pd.Categorical.from_codes(df["status"], STATUS_NAMES)
        df["service"] = pd.Categorical.from_codes(df["service"], SERVICES)
        df["mechanism"] = pd.Series(self.mechanism, dtype="string")
        df["penalties_usd"] = df.pop("penalties_cents") / 100.0
        df["shortfall_fee_usd"] = df.pop("shortfall_cents") / 100.0
        if names:
            df.insert(2, "buyer_name", df["buyer"].map(names))
            df.insert(4, "provider_name", df["provider"].map(names))
        return df
