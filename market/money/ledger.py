"""One double-entry ledger for every transfer of money in the market.

Amounts are integer cents (int64), so sums are exact. Every posting moves an amount from a
payer account to a payee account; agents and the outside world (consumers, suppliers, input
markets, customs authorities, the providers of starting capital) all have accounts, so the
balances always sum to zero. High-volume postings (one per parcel and leg) arrive as arrays
and are consolidated into one journal line per (payer, payee, kind) and day.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# What a transfer is for. The order is stable: it is the `kind` code in ledger.parquet.
KINDS = (
    "capital",          # starting cash from the owners
    "sale",             # consumer pays the merchant for an order
    "refund",           # merchant refunds a consumer for a lost or damaged order
    "goods",            # merchant pays its supplier for goods
    "freight",          # buyer pays a carrier for a leg
    "handling",         # buyer pays a warehouse operator for pick and pack
    "storage",          # buyer pays a warehouse operator for stock-days
    "brokerage",        # buyer pays a customs broker for an entry
    "duty",             # import duty and VAT to the customs authority
    "customs_fee",      # inspection and other fees to the customs authority
    "service_fee",      # merchant pays a 4PL integrator for an end-to-end service
    "operating_cost",   # a provider's variable cost of serving (fuel, labour, ...)
    "fixed_cost",       # a provider's daily cost of holding capacity
    "penalty",          # provider pays its buyer for a late leg under contract
    "service_credit",   # integrator refunds a merchant for a late parcel
    "claim",            # liability for a lost or damaged parcel
    "premium",          # cargo insurance premium
    "insurance_payout", # insurer pays an insured loss
    "shortfall_fee",    # buyer pays a provider for volume it committed and did not ship
    "transaction_cost", # a merchant's cost of running its own contracts
    "onboarding",       # one-off cost of switching provider or channel
    "dispute_cost",     # cost of handling a disputed claim
    "market_cost",      # a merchant's fixed cost of serving a market (platform plan, listings, service)
    # trade credit (market/money/credit.py): invoices on terms, their payment and write-off
    "trade_credit",     # seller hands back, until the due date, what a buyer paid for a purchase on terms
    "receivable",       # the invoice's claim: buyer's payables account -> seller's receivables account
    "invoice_payment",  # buyer pays an invoice (or part of one) from its cash
    "receivable_settled",  # the paid part leaves the seller's receivables (back to the buyer's payables)
    "late_interest",    # statutory interest on an invoice paid after its due date
    "bad_debt",         # a defaulted invoice written off: seller's receivables -> buyer's payables
    "owner_draw",       # a merchant pays its owners the cash above its buffer
    # returns (market/goods/returns.py)
    "return_refund",    # merchant refunds a consumer who returned a delivered order
    "return_freight",   # merchant pays for a return's trip back (to the market's return point, across a border)
    "restocking",       # merchant pays for refurbishing and restocking a returned unit
    "resale",           # a returned unit resold (in the market, or at its origin)
    "liquidation",      # a liquidator buys a returned unit
    "scrapping",        # merchant pays for scrapping a returned unit locally
    "drawback",         # customs refund the duty and VAT of a return shipped back out
    # payment and currencies (market/money/payment.py, currency.py)
    "in_settlement",    # a sale's payment held by the platform or PSP until it settles: merchant -> clearing
    "settlement",       # the held payment paid out at the sale day's rate: clearing -> merchant
    "payment_fee",      # payment service provider's fee on a settled sale
    "fx_gain",          # exchange gain on a sale settled at a better rate than it was booked at
    "fx_loss",          # exchange loss on a sale settled at a worse rate than it was booked at
    "hedge_cost",       # cost of a forward selling a day's foreign-currency sales for the settlement date
    # visibility and after-sales (market/goods/tracking.py, market/goods/aftersales.py)
    "expedite",         # a 4PL pays the leg's provider to expedite a delay it detected
    "visibility_systems",  # a 4PL's control tower and its integrations with providers (per day)
    "contact",          # after-sales contacts (where is my order, damage) handled by a contact centre
    "dispute_fee",      # a consumer's payment dispute (chargeback) fee, paid by the merchant
    "dispute_refund",   # a consumer's dispute lost for want of proof of delivery: the sale refunded
)
KIND = {name: i for i, name in enumerate(KINDS)}
# postings that move credit, not income: not counted in an account's ``received`` (revenue)
NOT_INCOME = np.zeros(len(KINDS), dtype=bool)
NOT_INCOME[[KIND[k] for k in ("trade_credit", "receivable", "invoice_payment", "receivable_settled",
                              "bad_debt", "in_settlement", "settlement")]] = True

EXTERNAL = "external"


def to_cents(usd) -> np.ndarray:
    """USD (float or array) to int64 cents, rounded half to even."""
    if isinstance(usd, float):        # one amount (a consignment leg): Python's round is half to even too
        if not math.isfinite(usd):
            raise ValueError("an amount of money is not finite")
        return np.int64(round(usd * 100.0))
    usd = np.asarray(usd, dtype=np.float64)
    if not np.isfinite(usd).all():
        raise ValueError("an amount of money is not finite")
    return np.rint(usd * 100.0).astype(np.int64)


def _side(acct, shape: tuple) -> tuple[np.ndarray, int | None]:
    """One side of a batch of transfers as an array of the batch's shape, and the account
    number when the whole side is one account (else None)."""
    a = np.asarray(acct, dtype=np.int64)
    if a.shape == shape:
        return (a.copy(), int(a[0])) if a.size == 1 else (a, None)
    if a.size == 1:
        one = int(a.reshape(-1)[0])
        return np.full(shape, one, dtype=np.int64), one
    return np.full(shape, a), None


class Ledger:
    """Accounts with int64 balances in cents, and a consolidated daily journal."""

    def __init__(self):
        self.names: list[str] = []
        self.owner_type: list[str] = []
        self.owner_id: list[int] = []
        self._balance = np.zeros(64, dtype=np.int64)
        self._received = np.zeros(64, dtype=np.int64)   # everything ever paid in, per account
        self._by_name: dict[str, int] = {}
        self._journal: list[tuple[np.ndarray, ...]] = []  # (day, payer, payee, kind, amount)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
        self.day = 0
        # running totals by kind, for the daily series (cents)
        self.total_by_kind = np.zeros(len(KINDS), dtype=np.int64)
        # cents each account paid and received, by kind, over the closed days (the summary's
        # margins read these, not the journal, which may have gone to a file)
        self._paid_by_kind = np.zeros((64, len(KINDS)), dtype=np.int64)
        self._received_by_kind = np.zeros((64, len(KINDS)), dtype=np.int64)
        self._spill = None           # JournalFile while the journal goes to a file as the run goes

    # ---- accounts ----
    def open(self, name: str, owner_type: str = EXTERNAL, owner_id: int = -1) -> int:
        """Open (or return) the account called ``name``."""
        if name in self._by_name:
            return self._by_name[name]
        acct = len(self.names)
        if acct >= self._balance.size:
            self._balance = np.concatenate([self._balance, np.zeros_like(self._balance)])
            self._received = np.concatenate([self._received, np.zeros_like(self._received)])
            self._paid_by_kind = np.concatenate([self._paid_by_kind, np.zeros_like(self._paid_by_kind)])
            self._received_by_kind = np.concatenate([self._received_by_kind, np.zeros_like(self._received_by_kind)])
        self.names.append(name)
        self.owner_type.append(owner_type)
        self.owner_id.append(owner_id)
        self._by_name[name] = acct
        return acct

    def account(self, name: str) -> int:
        """The account with this name."""
        return self._by_name[name]

    @property
    def n_accounts(self) -> int:
        """Number of accounts opened."""
        return len(self.names)

    @property
    def balances(self) -> np.ndarray:
        """Balances in cents, one per account (a view; do not modify)."""
        return self._balance[: self.n_accounts]

    @property
    def received(self) -> np.ndarray:
        """Total paid into each account so far, in cents (revenue, for providers); credit movements
        (invoices, their payment and write-off) are not income and not counted."""
        return self._received[: self.n_accounts]

    def balance(self, acct: int) -> int:
        """One account's balance, in cents."""
        return int(self._balance[acct])

    # ---- postings ----
    def transfer(self, payer: int, payee: int, cents: int, kind: str):
        """Post one transfer (amount in cents, >= 0)."""
        cents = int(cents)
        if cents == 0:
            return
        if cents < 0:
            raise ValueError("transfer amounts are non-negative; swap payer and payee")
        # one posting: the same bookkeeping as post(), without its array machinery; the kind
        # is looked up first, so an unknown kind leaves the balances untouched
        k = KIND[kind]
        payer, payee = int(payer), int(payee)
        self._balance[payer] -= cents
        self._balance[payee] += cents
        if not NOT_INCOME[k]:
            self._received[payee] += cents
        self.total_by_kind[k] += cents
        self._pending.append((np.array([payer], dtype=np.int64), np.array([payee], dtype=np.int64),
                              np.array([cents], dtype=np.int64), k))

    def post(self, payer, payee, cents, kind: str):
        """Post many transfers at once: arrays (or scalars broadcast) of payer, payee, cents."""
        cents = np.asarray(cents, dtype=np.int64).reshape(-1)
        if cents.size == 0:
            return
        if cents.min() < 0:
            raise ValueError(f"negative {kind} transfer")
        k = KIND[kind]
        total = int(cents.sum())
        # one account on a side (a scalar, as for the authority or the consumers) moves by the
        # batch's total: integer cents, so the same balance as adding transfer by transfer
        payer, payer_one = _side(payer, cents.shape)
        payee, payee_one = _side(payee, cents.shape)
        if payer_one is None:
            np.subtract.at(self._balance, payer, cents)
        else:
            self._balance[payer_one] -= total
        if payee_one is None:
            np.add.at(self._balance, payee, cents)
            if not NOT_INCOME[k]:
                np.add.at(self._received, payee, cents)
        else:
            self._balance[payee_one] += total
            if not NOT_INCOME[k]:
                self._received[payee_one] += total
        self.total_by_kind[k] += total
        self._pending.append((payer if payer_one is not None else payer.copy(),
                              payee if payee_one is not None else payee.copy(), cents.copy(), k))

    def pending(self, kinds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Today's postings of these kinds so far (payer, payee, cents arrays), before
        :meth:`close_day` consolidates them: what trade credit turns into invoices."""
        codes = {KIND[k] for k in kinds}
        blocks = [p for p in self._pending if p[3] in codes]
        if not blocks:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return (np.concatenate([p[0] for p in blocks]), np.concatenate([p[1] for p in blocks]),
                np.concatenate([p[2] for p in blocks]))

    def close_day(self, day: int):
        """Consolidate the day's postings into journal lines (payer, payee, kind)."""
        if not self._pending:
            return
        payer = np.concatenate([p[0] for p in self._pending])
        payee = np.concatenate([p[1] for p in self._pending])
        cents = np.concatenate([p[2] for p in self._pending])
        kind = np.repeat(np.array([p[3] for p in self._pending], dtype=np.int64),
                         [p[2].size for p in self._pending])
        self._pending.clear()
        n = max(self.n_accounts, 1)
        key = (kind * n + payer) * n + payee
        # a hash grouping (sorted keys, as np.unique gives) without sorting every posting
        inv, uniq = pd.factorize(key, sort=True)
        sums = np.zeros(uniq.size, dtype=np.int64)
        np.add.at(sums, inv, cents)
        counts = np.bincount(inv, minlength=uniq.size).astype(np.int64)
        k = uniq // (n * n)
        rest = uniq % (n * n)
        payer_u, payee_u = rest // n, rest % n
        self._journal.append((np.full(uniq.size, day, dtype=np.int32), payer_u, payee_u, k, sums, counts))
        np.add.at(self._paid_by_kind, (payer_u, k), sums)
        np.add.at(self._received_by_kind, (payee_u, k), sums)
        if self._spill is not None:
            self._spill.take(self)

    def paid_by_kind(self) -> np.ndarray:
        """Cents each account paid over the closed days, by kind (accounts x KINDS)."""
        return self._paid_by_kind[: self.n_accounts]

    def received_by_kind(self) -> np.ndarray:
        """Cents each account was paid over the closed days, by kind (accounts x KINDS)."""
        return self._received_by_kind[: self.n_accounts]

    # ---- the journal in a file ----
    def journal_to_file(self, path, group_rows: int = 1024 * 1024):
        """From now on, write the journal to ``path`` (Parquet, as ``ledger.parquet``) a row
        group of ``group_rows`` lines at a time as days close, keeping only the lines not yet
        written: a market-scale run's journal (tens of millions of lines) then takes no memory
        that grows with the run. :meth:`close_journal_file` writes the rest. The file's bytes are
        those of :meth:`journal` written whole with the same row groups."""
        if self._journal:
            raise ValueError("the journal goes to a file from the first day on, or not at all")
        self._spill = JournalFile(path, group_rows)

    @property
    def journal_file(self):
        """Where the journal is written as the run goes, or None (kept in memory)."""
        return None if self._spill is None else self._spill.path

    def close_journal_file(self):
        """Write the lines not yet written and close the file (see :meth:`journal_to_file`)."""
        if self._spill is not None:
            self._spill.close(self)

    def _drop_first_lines(self, rows: int):
        """Forget the first ``rows`` journal lines (written to the file)."""
        kept, first = [], 0
        for block in self._journal:
            last = first + block[0].size
            if last > rows:
                lo = max(rows - first, 0)
                kept.append(tuple(column[lo:] for column in block) if lo else block)
            first = last
        self._journal = kept

    def lines_since(self, block: int) -> tuple[list[tuple[np.ndarray, ...]], int]:
        """Journal blocks (one a day: day, payer, payee, kind code, cents, count arrays) after
        the first ``block`` ones, and the number of blocks now - for readers following a run."""
        self._refuse_if_in_file()
        return self._journal[block:], len(self._journal)

    def _refuse_if_in_file(self):
        if self._spill is not None:
            raise RuntimeError(f"the journal is written to {self._spill.path} as the run goes: read it there")

    # ---- checks and reports ----
    def imbalance(self) -> int:
        """Sum of all balances in cents: exactly zero in a correct double-entry ledger."""
        return int(self.balances.sum())

    def journal_lines(self) -> int:
        """How many consolidated journal lines there are."""
        return sum(block[0].size for block in self._journal)

    def _blocks(self, start: int = 0, stop: int | None = None) -> list[tuple[np.ndarray, ...]]:
        """The journal's blocks cut to lines ``start`` to ``stop``."""
        if not start and stop is None:
            return self._journal
        stop = self.journal_lines() if stop is None else stop
        blocks, first = [], 0
        for block in self._journal:
            last = first + block[0].size
            if last > start and first < stop:
                lo, hi = max(start - first, 0), min(stop, last) - first
                blocks.append(tuple(column[lo:hi] for column in block))
            first = last
        return blocks

    def journal_table(self, start: int = 0, stop: int | None = None):
        """Lines ``start`` to ``stop`` of the journal as an Arrow table: the table
        ``pyarrow.Table.from_pandas(journal(start, stop), preserve_index=False)`` gives (same
        schema, pandas metadata and values, so the same Parquet bytes), built from the columns
        without a DataFrame of Python strings (0.4 s of the baseline year's 480,000 lines)."""
        import pyarrow as pa

        blocks = self._blocks(start, stop)
        if sum(block[0].size for block in blocks) == 0:    # no lines: the frame's own (typeless) table
            return pa.Table.from_pandas(self.journal(start, stop), preserve_index=False)
        # the schema and its pandas metadata as the DataFrame's first line gives them
        schema = pa.Table.from_pandas(self.journal(start, start + 1), preserve_index=False).schema
        day, payer, payee, kind, sums, counts = (np.concatenate(x) for x in zip(*blocks))
        names = pa.array(self.names, type=schema.field("payer_name").type)
        columns = {"day": pa.array(day), "payer": pa.array(payer), "payee": pa.array(payee),
                   "payer_name": names.take(payer), "payee_name": names.take(payee),
                   "kind": pa.array(KINDS, type=schema.field("kind").type).take(kind),
                   "amount_cents": pa.array(sums), "amount_usd": pa.array(sums / 100.0), "count": pa.array(counts)}
        return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)

    def journal(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """The consolidated journal lines, or lines ``start`` to ``stop`` (a market-scale run's
        journal has tens of millions: its names as Python strings took gigabytes at once)."""
        if self._spill is not None and not self._spill.writing:
            self._refuse_if_in_file()
        blocks = self._blocks(start, stop)
        if not blocks:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                                 [("day", "int32"), ("payer", "int64"), ("payee", "int64"),
                                  ("kind", "object"), ("amount_usd", "float64"), ("count", "int64"),
                                  ("amount_cents", "int64")]})
        day, payer, payee, kind, sums, counts = (np.concatenate(x) for x in zip(*blocks))
        names = np.array(self.names, dtype=object)
        return pd.DataFrame({
            "day": day, "payer": payer, "payee": payee,
            "payer_name": names[payer], "payee_name": names[payee],
            "kind": np.array(KINDS, dtype=object)[kind],
            "amount_cents": sums, "amount_usd": sums / 100.0, "count": counts,
        })


class JournalFile:
    """The ledger's journal written to Parquet as the run goes (:meth:`Ledger.journal_to_file`):
    whole row groups of ``group_rows`` lines as days close, the rest when closed. A journal that
    never fills a row group is written at close in one go, as a whole journal would be."""

    def __init__(self, path, group_rows: int):
        self.path = path
        self.group_rows = int(group_rows)
        self.writer = None
        self.writing = False         # the ledger lets journal() read its lines while this writes
        self.closed = False

    def _write(self, ledger: Ledger, rows: int):
        import pyarrow.parquet as pq

        self.writing = True
        try:
            table = ledger.journal_table(0, rows)
        finally:
            self.writing = False
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table, row_group_size=self.group_rows)
        ledger._drop_first_lines(rows)

    def take(self, ledger: Ledger):
        """Write every whole row group the ledger holds."""
        while ledger.journal_lines() >= self.group_rows:
            self._write(ledger, self.group_rows)

    def close(self, ledger: Ledger):
        import pyarrow.parquet as pq

        if self.closed:              # closed once: the file stands as written
            return
        self.closed = True
        rest = ledger.journal_lines()
        if self.writer is None:
            self.writing = True
            try:
                pq.write_table(ledger.journal_table(), self.path, row_group_size=self.group_rows)
            finally:
                self.writing = False
            ledger._drop_first_lines(rest)
        else:
            while rest > 0:
                self._write(ledger, min(rest, self.group_rows))
                rest = ledger.journal_lines()
            self.writer.close()
            self.writer = None
