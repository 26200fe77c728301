"""Claims and disputes: a lost or damaged parcel raises claims that settle later.

The party that bought the leg (a merchant, or the 4PL acting for it) claims the carrier's
liability; an insured party claims the rest of the value from the insurer. Each claim takes
a processing delay to settle; a carrier may dispute it, which takes longer, costs both sides
handling fees and ends with part of the claim paid. Disputes still open when the run ends are
reported as unresolved. A claimant with tracking proof of the hand-over (the event before the
loss or damage was seen, :mod:`market.goods.tracking`) settles faster
(``claims.proof_speedup``) and is disputed less often (``claims.proof_dispute_factor``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.arrays import broadcast
from market.world.customs import triangular, whole_days

OPEN, PAID = 0, 1
STATUS_NAMES = ("open", "paid")
KIND_NAMES = ("loss", "damage", "insurance")
LOSS, DAMAGE, INSURANCE = 0, 1, 2

_COLS = {"parcel_id": np.int64, "kind": np.int64, "claimant": np.int64, "respondent": np.int64,
         "respondent_uid": np.int64, "amount_cents": np.int64, "filed_day": np.int64, "due_day": np.int64,
         "disputed": bool, "recovery": np.float64, "via_4pl": bool, "status": np.int64,
         "paid_cents": np.int64, "paid_day": np.int64, "dispute_cost_cents": np.int64, "with_proof": bool}


class ClaimBook:
    """Growable columns of claims; settles those that fall due each day."""

    def __init__(self, rules, ledger, reputation, rng: np.random.Generator, handling_acct: int):
        """``rules``: the scenario's ``claims`` section; ``reputation``: carriers' records, which
        make disputes likelier and which disputes worsen; ``handling_acct``: where dispute
        handling fees go; ``rng``: the run's random stream."""
        self.rules = rules
        self.ledger = ledger
        self.reputation = reputation
        self.rng = rng
        self.handling_acct = handling_acct
        self.n = 0
        self._cap = 1024
        self.cols = {k: np.zeros(self._cap, dtype=t) for k, t in _COLS.items()}
        self.reset_day()

    def reset_day(self):
        """Zero the day's counters."""
        self.filed_today = 0
        self.paid_today_cents = 0
        self.dispute_cost_today_cents = 0
        self.insurance_paid_today_cents = 0

    def __getitem__(self, k):
        return self.cols[k][: self.n]

    def file(self, day: int, kind: np.ndarray, claimant, respondent, respondent_uid, amount_cents,
             parcel_id, via_4pl, proof=False):
        """File claims (arrays). Carriers may dispute; insurers pay without dispute. ``proof``:
        the claimant has tracking proof of the hand-over (faster, less often disputed)."""
        amount_cents = np.asarray(amount_cents, dtype=np.int64)
        keep = amount_cents > 0
        k = int(keep.sum())
        if k == 0:
            return
        cfg = self.rules
        take = lambda a: broadcast(a, amount_cents.shape)[keep]   # noqa: E731
        kind, via = take(kind).astype(np.int64), take(via_4pl).astype(bool)
        proof = take(proof).astype(bool)
        ruid = take(respondent_uid).astype(np.int64)
        rng = self.rng
        u = rng.random((k, 4))
        # a carrier with a poor record and a merchant filing alone both make disputes likelier
        rep = np.where(ruid >= 0, self.reputation.score(np.maximum(ruid, 0)), 1.0)
        p = cfg.dispute_rate * np.where(via, 1.0, cfg.diy_dispute_multiplier) * (2.0 - rep) \
            * np.where(proof, cfg.proof_dispute_factor, 1.0)
        disputed = (kind != INSURANCE) & (u[:, 0] < np.minimum(p, 1.0))
        lo, mode, hi = cfg.processing_days
        delay = triangular(lo, mode, hi, u[:, 1]) * np.where(proof, 1.0 - cfg.proof_speedup, 1.0)
        dlo, dmode, dhi = cfg.dispute_days
        delay = delay + np.where(disputed, triangular(dlo, dmode, dhi, u[:, 2]), 0.0)
        r_lo, r_hi = cfg.dispute_recovery
        recovery = np.where(disputed, r_lo + (r_hi - r_lo) * u[:, 3], 1.0)
        self._grow(self.n + k)
        new = slice(self.n, self.n + k)
        cols = self.cols
        cols["parcel_id"][new] = take(parcel_id)
        cols["kind"][new] = kind
        cols["claimant"][new] = take(claimant)
        cols["respondent"][new] = take(respondent)
        cols["respondent_uid"][new] = ruid
        cols["amount_cents"][new] = amount_cents[keep]
        cols["filed_day"][new] = day
        cols["due_day"][new] = day + np.maximum(whole_days(delay, rng), 1)
        cols["disputed"][new] = disputed
        cols["recovery"][new] = recovery
        cols["via_4pl"][new] = via
        cols["status"][new] = OPEN
        cols["paid_cents"][new] = 0
        cols["paid_day"][new] = -1
        cols["dispute_cost_cents"][new] = 0
        cols["with_proof"][new] = proof
        self.n += k
        self.filed_today += k

    def _grow(self, need: int):
        if need <= self._cap:
            return
        while self._cap < need:
            self._cap *= 2
        for key, a in self.cols.items():
            b = np.zeros(self._cap, dtype=a.dtype)
            b[: self.n] = a[: self.n]
            self.cols[key] = b

    def settle(self, day: int):
        """Pay the claims that fall due today (disputed ones at their recovery share)."""
        cfg, ledger, reputation = self.rules, self.ledger, self.reputation
        due = np.flatnonzero((self["status"] == OPEN) & (self["due_day"] <= day))
        if due.size == 0:
            return
        cols = self.cols
        pay = np.rint(cols["amount_cents"][due] * cols["recovery"][due]).astype(np.int64)
        # a carrier's liability is a "claim"; what the insurer pays is an "insurance_payout"
        ins = cols["kind"][due] == INSURANCE
        if (~ins).any():
            ledger.post(cols["respondent"][due[~ins]], cols["claimant"][due[~ins]], pay[~ins], "claim")
        if ins.any():
            ledger.post(cols["respondent"][due[ins]], cols["claimant"][due[ins]], pay[ins], "insurance_payout")
        self.insurance_paid_today_cents += int(pay[ins].sum())
        disputed = due[cols["disputed"][due]]
        if disputed.size:
            cost = int(round(cfg.dispute_cost * 100))
            both = np.concatenate([cols["claimant"][disputed], cols["respondent"][disputed]])
            ledger.post(both, self.handling_acct, np.full(both.size, cost, dtype=np.int64), "dispute_cost")
            cols["dispute_cost_cents"][disputed] = 2 * cost
            self.dispute_cost_today_cents += 2 * cost * disputed.size
            uid = cols["respondent_uid"][disputed]
            reputation.record_disputes(uid[uid >= 0], np.ones(int((uid >= 0).sum()), dtype=bool))
        clean = due[~cols["disputed"][due] & (cols["respondent_uid"][due] >= 0)]
        reputation.record_disputes(cols["respondent_uid"][clean], np.zeros(clean.size, dtype=bool))
        cols["paid_cents"][due] = pay
        cols["paid_day"][due] = day
        cols["status"][due] = PAID
        self.paid_today_cents += int(pay.sum())

    # ---- reporting ----
    def open_disputes(self) -> tuple[int, int]:
        """(number, total amount in cents) of disputed claims still open."""
        sel = (self["status"] == OPEN) & self["disputed"]
        return int(sel.sum()), int(self["amount_cents"][sel].sum())

    def frame(self, names: dict[int, str] | None = None) -> pd.DataFrame:
        """The claims as a table (``claims.parquet``); with ``names``, account names added."""
        df = pd.DataFrame({k: v[: self.n].copy() for k, v in self.cols.items()})
        df.insert(0, "claim_id", np.arange(self.n))
        df["kind"] = pd.Categorical.from_codes(df["kind"], KIND_NAMES)
        df["status"] = pd.Categorical.from_codes(df["status"], STATUS_NAMES)
        for k in ("amount", "paid", "dispute_cost"):
            df[f"{k}_usd"] = df.pop(f"{k}_cents") / 100.0
        if names:
            acct_names = self.ledger.names
            df["claimant_name"] = [acct_names[a] for a in df["claimant"]]
            df["respondent_name"] = [acct_names[a] for a in df["respondent"]]
        return df
