"""Trade credit: invoices on payment terms, receivables, late payment, bad debt and the terms a
buyer's payment record earns it.

Providers (and integrators towards merchants) invoice their buyers on terms instead of being
paid at the moment of service. The day's purchases are posted to the ledger as they happen
(freight, handling, storage, brokerage, service fees, shortfall fees); at the end of the day
:meth:`TradeCredit.day` turns each buyer's purchases from each seller into one invoice, unless
the buyer's terms say prepayment (its payment score is below ``credit.prepay_below``) or the
invoice would take its exposure past its credit limit (the excess is prepaid).

Money stays in the ledger, in cents, balanced. Each seller has a receivables account and each
buyer a payables account (opened the first time they are needed). An invoice of X posts:

* ``trade_credit``: seller's cash -> buyer's cash, X (the seller has not been paid yet; the buyer
  keeps its cash until the due date);
* ``receivable``: buyer's payables -> seller's receivables, X (the claim: receivables +X,
  payables -X).

Paying it (oldest invoice first, from the buyer's cash on hand; partly if cash is short):

* ``invoice_payment``: buyer's cash -> seller's cash, the amount paid;
* ``receivable_settled``: seller's receivables -> buyer's payables, the same amount;
* ``late_interest``: buyer's cash -> seller's cash, statutory interest on an amount paid after
  its due date (``credit.late_interest`` a year, per day late).

An invoice still unpaid ``credit.grace_days`` after its due date defaults: ``bad_debt`` moves
what is left from the seller's receivables to the buyer's payables (the claim is written off;
the seller never gets that cash). So a seller's cash counts only what it was paid, and its cash
plus receivables what it is owed.

Payment history feeds the buyer's payment reputation (``ReputationBook``, dimension
``payment``): each day is one observation per buyer, a failure while it has an invoice past its
due date (until it pays or the invoice defaults), a success otherwise. The score sets the terms: credit up to a limit that
grows with the score, prepayment below one threshold, refusal of tender bids below another
(:meth:`TradeCredit.refuses`), and the tender surcharge ``market.credit_premium * (1 - score)``
(:class:`agents.provider.TenderBidding`).

Everything is numpy over invoices: no Python loop per invoice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.archive import ColumnArchive
from market.arrays import unique_inverse
from market.money.ledger import Ledger

OPEN, PAID, DEFAULTED = 0, 1, 2
STATUS = ("open", "paid", "defaulted")

# purchases of logistics that a seller invoices on terms (the rest is paid at once)
INVOICED_KINDS = ("freight", "handling", "storage", "brokerage", "service_fee", "shortfall_fee")


def pay_oldest_first(debtor: np.ndarray, owed: np.ndarray, available: np.ndarray) -> np.ndarray:
    """How much of each amount owed is paid, each debtor paying its rows in the order given
    (oldest first) until its cash runs out; the row it runs out on is paid in part.

    ``debtor`` (rows grouped by debtor, in paying order within each group), ``owed`` (cents,
    >= 0) and ``available`` (cents each debtor can pay, indexed by the debtor values).
    """
    debtor = np.asarray(debtor, dtype=np.int64)
    owed = np.asarray(owed, dtype=np.int64)
    if owed.size == 0:
        return np.zeros(0, dtype=np.int64)
    if (np.diff(debtor) != 0).sum() + 1 != np.unique(debtor).size:
        raise ValueError("rows must be grouped by debtor")
    cum = np.cumsum(owed)
    first = np.r_[True, debtor[1:] != debtor[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(owed.size), 0))
    before = cum - owed - (cum[group_start] - owed[group_start])     # owed by earlier rows of the group
    cash = np.maximum(np.asarray(available, dtype=np.int64)[debtor], 0)
    return np.clip(cash - before, 0, owed)


class InvoiceBook:
    """Invoices as numpy columns: debtor and creditor (ledger accounts), amount and amount paid
    (cents), issue and due days, status (open, paid, defaulted), whether it passed its due date
    unpaid, the day it closed (paid in full or defaulted; -1 while open), interest charged.

    An invoice's id is its place in issue order. Open invoices (and those closed since the last
    :meth:`compact`) are the live rows, which the day's collection works on (:meth:`live`);
    closed ones move to an archive on disk in batches, so a long run's memory and daily scans do
    not grow with the invoices it has closed. ``book[name]`` reads a column over every invoice,
    in id order."""

    COLUMNS = (("debtor", np.int64), ("creditor", np.int64), ("amount", np.int64), ("paid", np.int64),
               ("issued", np.int32), ("due", np.int32), ("status", np.int8), ("late", np.bool_),
               ("closed", np.int32), ("interest", np.int64))
    _STORED = COLUMNS + (("invoice_id", np.int64),)     # ... and each row's id, once rows move

    def __init__(self, capacity: int = 1024):
        self.n = 0              # invoices issued: the next one's id
        self.n_live = 0
        self._cols = {name: np.zeros(capacity, dtype=t) for name, t in self._STORED}
        self.archive = ColumnArchive(dict(self._STORED))

    def live(self, name: str) -> np.ndarray:
        """A column of the live invoices (a view: writing to it changes the book)."""
        return self._cols[name][: self.n_live]

    def __getitem__(self, name: str) -> np.ndarray:
        if not len(self.archive):
            return self.live(name)           # nothing archived: live rows are every invoice, in id order
        ids = np.concatenate([self.archive.column("invoice_id"), self.live("invoice_id")])
        return np.concatenate([self.archive.column(name), self.live(name)])[np.argsort(ids, kind="stable")]

    def add(self, debtor, creditor, amount, day: int, due) -> np.ndarray:
        """Issue invoices (arrays broadcast); returns their ids."""
        amount = np.asarray(amount, dtype=np.int64).reshape(-1)
        k = amount.size
        if (amount <= 0).any():
            raise ValueError("an invoice's amount must be positive")
        while self.n_live + k > self._cols["amount"].size:
            for name in self._cols:
                self._cols[name] = np.concatenate([self._cols[name], np.zeros_like(self._cols[name])])
        ids = np.arange(self.n, self.n + k)
        rows = slice(self.n_live, self.n_live + k)
        c = self._cols
        c["invoice_id"][rows] = ids
        c["debtor"][rows] = debtor
        c["creditor"][rows] = creditor
        c["amount"][rows] = amount
        c["paid"][rows] = 0
        c["issued"][rows] = day
        c["due"][rows] = due
        c["status"][rows] = OPEN
        c["late"][rows] = False
        c["closed"][rows] = -1
        c["interest"][rows] = 0
        self.n += k
        self.n_live += k
        return ids

    def compact(self, min_rows: int = 1024):
        """Move closed invoices (paid or defaulted) to the archive once they are at least half
        the live rows (and ``min_rows``); the open ones keep their order."""
        closed = self.live("status") != OPEN
        n_closed = int(closed.sum())
        if n_closed < max(min_rows, self.n_live // 2):
            return
        self.archive.append({name: self.live(name)[closed] for name in self._cols})
        keep = np.flatnonzero(~closed)
        for name, col in self._cols.items():
            col[: keep.size] = col[: self.n_live].take(keep)
        self.n_live = keep.size

    @property
    def remaining(self) -> np.ndarray:
        """Cents still owed on each invoice (0 once paid or defaulted)."""
        return np.where(self["status"] == OPEN, self["amount"] - self["paid"], 0)

    def live_remaining(self) -> np.ndarray:
        """Cents still owed on each live invoice (closed ones owe nothing)."""
        return np.where(self.live("status") == OPEN, self.live("amount") - self.live("paid"), 0)

    def outstanding(self, n_accounts: int, by: str = "debtor") -> np.ndarray:
        """Cents still owed, summed per debtor (or creditor) account."""
        return np.bincount(self.live(by), weights=self.live_remaining(), minlength=n_accounts).astype(np.int64)

    def frame(self, names: list[str] | None = None) -> pd.DataFrame:
        """The book as a table (for invoices.parquet)."""
        df = pd.DataFrame({"invoice_id": np.arange(self.n, dtype=np.int64)}
                          | {name: self[name].copy() for name, _ in self.COLUMNS})
        df["status"] = pd.Categorical.from_codes(df["status"].astype(np.int64), categories=list(STATUS))
        df["amount_usd"] = df["amount"] / 100.0
        df["paid_usd"] = df["paid"] / 100.0
        if names is not None:
            arr = np.array(names, dtype=object)
            df["debtor_name"] = arr[df["debtor"]] if self.n else pd.Series(dtype=object)
            df["creditor_name"] = arr[df["creditor"]] if self.n else pd.Series(dtype=object)
        return df


class TradeCredit:
    """The market's trade credit: turns the day's purchases into invoices on each buyer's terms,
    collects what falls due, writes off what defaults and keeps the buyers' payment records.

    Args:
        cfg: the scenario's ``credit`` section.
        ledger: the market's ledger.
        reputation: the market's reputation book (its ``payment`` dimension is the credit score).
        debtor_uid: buyers' ledger accounts -> their agent ids (merchants and integrators).
        creditor_accts: the accounts of those that sell on terms (providers and integrators);
            grow it with :meth:`add_creditor` when a provider enters.
    """

    def __init__(self, cfg, ledger: Ledger, reputation, debtor_uid: dict[int, int], creditor_accts):
        from market.mechanisms.reputation import DIMENSIONS
        self.cfg = cfg
        self.ledger = ledger
        self.reputation = reputation
        self.payment_dim = DIMENSIONS.index("payment")
        self.book = InvoiceBook()
        self._uid = np.full(ledger.n_accounts + 64, -1, dtype=np.int64)        # account -> debtor uid
        for acct, uid in debtor_uid.items():
            self._uid[acct] = uid
        self._creditor = np.zeros(self._uid.size, dtype=bool)
        self._creditor[np.asarray(list(creditor_accts), dtype=np.int64)] = True
        self._side = np.full(self._uid.size, -1, dtype=np.int64)   # account -> its receivables/payables
        self.counters = dict.fromkeys(("issued", "issued_cents", "prepaid_cents", "paid_cents", "paid_on_time",
                                       "paid_late", "went_late", "defaulted", "bad_debt_cents",
                                       "interest_cents"), 0)
        self.today = dict(self.counters)

    # ---- who is who ----
    def _grow(self, n: int):
        if n > self._uid.size:
            extra = n - self._uid.size + 64
            self._uid = np.r_[self._uid, np.full(extra, -1, dtype=np.int64)]
            self._creditor = np.r_[self._creditor, np.zeros(extra, dtype=bool)]
            self._side = np.r_[self._side, np.full(extra, -1, dtype=np.int64)]

    def add_creditor(self, acct: int):
        """A seller that entered mid-run sells on terms too."""
        self._grow(acct + 1)
        self._creditor[acct] = True

    def _side_accounts(self, accts: np.ndarray, suffix: str) -> np.ndarray:
        """Each account's receivables (sellers) or payables (buyers) account, opened if new."""
        accts = np.asarray(accts, dtype=np.int64)
        for a in np.unique(accts[self._side[accts] < 0]):
            a = int(a)
            side = self.ledger.open(f"{self.ledger.names[a]}:{suffix}", suffix, self.ledger.owner_id[a])
            self._grow(side + 1)
            self._side[a] = side
        return self._side[accts]

    def on_terms(self, balances: np.ndarray) -> np.ndarray:
        """Per account, the balance of its receivables (sellers, >= 0) or payables (buyers,
        <= 0) account: what it is owed or owes on terms, in cents (0 where it has none)."""
        out = np.zeros(balances.size, dtype=balances.dtype)
        side = self._side[: balances.size]
        has = np.flatnonzero(side >= 0)
        out[has] = balances[side[has]]
        return out

    # ---- terms ----
    def scores(self, debtor_accts: np.ndarray) -> np.ndarray:
        """Buyers' credit scores: the payment dimension of their reputations, in [0, 1]."""
        uids = self._uid[np.asarray(debtor_accts, dtype=np.int64)]
        return self.reputation.dimension_scores(uids)[:, self.payment_dim]

    def score_of_uid(self, uid: int) -> float:
        return float(self.reputation.dimension_scores(np.array([uid]))[0, self.payment_dim])

    def refuses(self, uid: int) -> bool:
        """Sellers refuse to bid for a buyer whose score is below ``credit.refuse_below``."""
        return self.cfg.enabled and self.score_of_uid(uid) < self.cfg.refuse_below

    def credit_limit(self, scores: np.ndarray) -> np.ndarray:
        """Cents a buyer may owe in all: ``credit.limit`` times its score, nothing below the
        prepayment threshold."""
        limit = np.rint(self.cfg.limit * 100.0 * scores).astype(np.int64)
        return np.where(scores < self.cfg.prepay_below, 0, limit)

    # ---- the day ----
    def day(self, day: int):
        """Invoice today's purchases, collect what is due, write off what defaulted, record
        payment behaviour. Call after every payment of the day and before the ledger closes it."""
        self.today = dict.fromkeys(self.counters, 0)
        if not self.cfg.enabled:
            return
        self._grow(self.ledger.n_accounts)
        self._issue(day)
        self._collect(day)
        self._default(day)
        self.book.compact()
        for k, v in self.today.items():
            self.counters[k] += v

    def _issue(self, day: int):
        payer, payee, cents = self.ledger.pending(INVOICED_KINDS)
        if cents.size == 0:
            return
        ok = (self._uid[payer] >= 0) & self._creditor[payee] & (payer != payee) & (cents > 0)
        if not ok.any():
            return
        payer, payee, cents = payer[ok], payee[ok], cents[ok]
        n = self.ledger.n_accounts
        key, inv = unique_inverse(payer * n + payee)    # one invoice per buyer and seller
        amount = np.bincount(inv, weights=cents).astype(np.int64)        # exact below 2**53 cents
        debtor, creditor = key // n, key % n
        # terms: credit up to the limit (exposure on open invoices included), the rest prepaid
        owed = self.book.outstanding(n)
        headroom = np.maximum(self.credit_limit(self.scores(debtor)) - owed[debtor], 0)
        on_terms = pay_oldest_first(debtor, amount, _spread(debtor, headroom, n))
        self.today["prepaid_cents"] += int((amount - on_terms).sum())
        keep = on_terms > 0
        if not keep.any():
            return
        debtor, creditor, on_terms = debtor[keep], creditor[keep], on_terms[keep]
        self.book.add(debtor, creditor, on_terms, day, day + self.cfg.terms_days)
        self.ledger.post(creditor, debtor, on_terms, "trade_credit")
        self.ledger.post(self._side_accounts(debtor, "payables"), self._side_accounts(creditor, "receivables"),
                         on_terms, "receivable")
        self.today["issued"] += int(on_terms.size)
        self.today["issued_cents"] += int(on_terms.sum())

    def _collect(self, day: int):
        b = self.book
        due = np.flatnonzero((b.live("status") == OPEN) & (b.live("due") <= day))
        if due.size:
            order = np.lexsort((due, b.live("due")[due], b.live("debtor")[due]))   # by debtor, oldest first
            rows = due[order]
            debtor, creditor = b.live("debtor")[rows], b.live("creditor")[rows]
            owed = b.live("amount")[rows] - b.live("paid")[rows]
            cash = self.ledger.balances.copy()
            pay = pay_oldest_first(debtor, owed, cash)
            paying = pay > 0
            if paying.any():
                r, d, c, p = rows[paying], debtor[paying], creditor[paying], pay[paying]
                self.ledger.post(d, c, p, "invoice_payment")
                self.ledger.post(self._side_accounts(c, "receivables"), self._side_accounts(d, "payables"), p,
                                 "receivable_settled")
                b.live("paid")[r] += p
                days_late = np.maximum(day - b.live("due")[r], 0)
                interest = np.rint(p * self.cfg.late_interest * days_late / 365.0).astype(np.int64)
                if interest.any():
                    self.ledger.post(d, c, interest, "late_interest")
                    b.live("interest")[r] += interest
                self.today["paid_cents"] += int(p.sum())
                self.today["interest_cents"] += int(interest.sum())
            full = rows[b.live("paid")[rows] == b.live("amount")[rows]]
            if full.size:
                b.live("status")[full] = PAID
                b.live("closed")[full] = day
                on_time = ~b.live("late")[full]
                self.today["paid_on_time"] += int(on_time.sum())
                self.today["paid_late"] += int((~on_time).sum())
            missed = rows[(b.live("status")[rows] == OPEN) & ~b.live("late")[rows]]
            if missed.size:
                b.live("late")[missed] = True
                self.today["went_late"] += int(missed.size)
        # the day on every buyer's payment record: a failure while it has an invoice past due
        overdue = np.zeros(self._uid.size, dtype=bool)
        overdue[b.live("debtor")[(b.live("status") == OPEN) & (b.live("due") < day)]] = True
        debtors = np.flatnonzero(self._uid >= 0)
        self.reputation.record_payments(self._uid[debtors], ~overdue[debtors])

    def _default(self, day: int):
        b = self.book
        gone = np.flatnonzero((b.live("status") == OPEN) & (b.live("due") + self.cfg.grace_days < day))
        if gone.size == 0:
            return
        left = b.live("amount")[gone] - b.live("paid")[gone]
        debtor, creditor = b.live("debtor")[gone], b.live("creditor")[gone]
        self.ledger.post(self._side_accounts(creditor, "receivables"), self._side_accounts(debtor, "payables"),
                         left, "bad_debt")
        b.live("status")[gone] = DEFAULTED
        b.live("closed")[gone] = day
        self.today["defaulted"] += int(gone.size)
        self.today["bad_debt_cents"] += int(left.sum())

    # ---- reports ----
    def receivables_cents(self) -> int:
        """Cents owed on open invoices."""
        return int(self.book.live_remaining().sum())


def _spread(debtor: np.ndarray, headroom: np.ndarray, n: int) -> np.ndarray:
    """Per-account headroom from per-row values (each debtor's rows carry the same value)."""
    out = np.zeros(n, dtype=np.int64)
    out[debtor] = headroom
    return out


class MerchantCash:
    """Merchants keep a cash buffer and pay their owners what they earn above it, as small
    businesses do: the JPMorgan Chase Institute (2016) found their daily inflows and outflows
    move together, with no accumulation of cash. Each merchant's buffer is the cash it started
    with (its drawn buffer days, ``credit.cash_buffer_days`` around the median, times its
    expected daily sales); at the end of each day the cash above it goes to the owners
    (``owner_draw``). When sales fall, the buffer is what pays the invoices for what was bought
    before: a merchant with few days of cash runs short first.
    """

    def __init__(self, ledger: Ledger, merchant_accts: np.ndarray, owners_acct: int, buffer_cents: np.ndarray):
        self.ledger = ledger
        self.accts = np.asarray(merchant_accts, dtype=np.int64)
        self.owners = int(owners_acct)
        self.buffer = np.asarray(buffer_cents, dtype=np.int64)

    def day(self):
        """Pay out the cash above each merchant's buffer."""
        excess = self.ledger.balances[self.accts] - self.buffer
        paying = excess > 0
        self.ledger.post(self.accts[paying], self.owners, excess[paying], "owner_draw")
