"""The on-disk archive of finished rows (market/archive.py) and the books that use it: columns
read back equal the batches written, in order; the invoice book and the settlements give the
same tables whether closed rows were archived or kept in memory; a run's live rows stay few."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from market import Marketplace
from market.archive import ColumnArchive
from market.money.credit import DEFAULTED, OPEN, PAID, InvoiceBook
from market.money.ledger import KIND

SMALL = {"merchants.exporters": 8, "merchants.importers": 3}


def test_columns_read_back_the_batches_in_order():
    rng = np.random.default_rng(3)
    archive = ColumnArchive({"id": np.int64, "x": np.float64, "flag": np.bool_})
    assert archive.column("x").dtype == np.float64 and archive.column("x").size == 0 and not archive
    batches = [{"id": rng.integers(0, 10**12, k), "x": rng.normal(size=k), "flag": rng.random(k) < 0.5}
               for k in (5, 0, 1, 1000)]
    for b in batches:
        archive.append(b)
    assert len(archive) == 1006 and archive.nbytes == 1006 * 17
    for name in ("id", "x", "flag"):
        np.testing.assert_array_equal(archive.column(name), np.concatenate([b[name] for b in batches]))
    archive.append({"id": [7], "x": [1], "flag": [1]})         # converted to each column's dtype
    assert archive.column("x")[-1] == 1.0 and archive.column("flag").dtype == np.bool_
    with pytest.raises(ValueError, match="differ in length"):
        archive.append({"id": [1, 2], "x": [1.0], "flag": [True, False]})
    folder = Path(archive._dir.name)
    assert folder.is_dir()
    archive.close()
    assert not folder.exists() and len(archive) == 0


def _random_book(rng, compact_every: int | None, days: int = 60) -> InvoiceBook:
    """A book driven through random issues, partial payments, late flags and closes; the same
    draws whether or not it compacts."""
    book = InvoiceBook(capacity=4)
    for day in range(days):
        k = int(rng.integers(0, 40))
        if k:
            book.add(rng.integers(0, 9, k), rng.integers(9, 14, k), rng.integers(1, 10_000, k), day, day + 5)
        status = book.live("status")
        is_open = np.flatnonzero(status == OPEN)
        pay = is_open[rng.random(is_open.size) < 0.3]
        book.live("paid")[pay] = np.minimum(book.live("paid")[pay] + 2_000, book.live("amount")[pay])
        full = pay[book.live("paid")[pay] == book.live("amount")[pay]]
        status[full] = PAID
        book.live("closed")[full] = day
        gone = np.flatnonzero((status == OPEN) & (book.live("due") + 3 < day))
        status[gone] = DEFAULTED
        book.live("late")[np.flatnonzero((status == OPEN) & (book.live("due") < day))] = True
        if compact_every and day % compact_every == 0:
            book.compact(min_rows=16)
    return book


def test_an_archived_invoice_book_reads_as_one_kept_in_memory():
    kept = _random_book(np.random.default_rng(11), compact_every=None)
    archived = _random_book(np.random.default_rng(11), compact_every=3)
    assert len(archived.archive) > 500 and archived.n_live < archived.n / 3, "the test must archive most rows"
    assert kept.n == archived.n and not len(kept.archive)
    for name, _ in InvoiceBook.COLUMNS:
        np.testing.assert_array_equal(archived[name], kept[name], err_msg=name)
    np.testing.assert_array_equal(archived.outstanding(14), kept.outstanding(14))
    np.testing.assert_array_equal(archived.outstanding(14, by="creditor"), kept.outstanding(14, by="creditor"))
    assert archived.live_remaining().sum() == kept.remaining.sum() > 0
    pd.testing.assert_frame_equal(archived.frame(), kept.frame())
    # only open invoices and those closed since the last compaction are live, in id order
    ids = archived.live("invoice_id")
    assert (np.diff(ids) > 0).all() and set(ids) >= set(np.flatnonzero(kept["status"] == OPEN))


def _run(tmp_path: Path, days: int, seed: int, **sets) -> Marketplace:
    model = Marketplace("baseline", rng=seed, **(sets | SMALL))
    for _ in range(days):
        model.step()
    return model


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_runs_write_the_same_invoices_and_settlements_with_or_without_the_archive(tmp_path, monkeypatch, seed):
    archived = _run(tmp_path, 150, seed)
    book = archived.credit.book
    assert len(book.archive) > 0 and len(archived.payments.settled) > 0 and len(archived.returns.table.archive) > 0
    # the live book holds open invoices and at most one batch of closed ones (not the year's)
    assert book.n_live <= 2 * int((book["status"] == OPEN).sum()) + 1024 < book.n
    inv, settlements = archived.credit.book.frame(), archived.payments.frame()
    # settled batches first, by settlement day, then those still in settlement; what was paid
    # out is what the ledger moved out of settlement
    day = settlements["settle_day"].to_numpy()
    n_settled = int((day >= 0).sum())
    assert 0 < n_settled < day.size and (day[n_settled:] == -1).all() and (np.diff(day[:n_settled]) >= 0).all()
    assert settlements["booked_cents"][:n_settled].sum() == archived.ledger.total_by_kind[KIND["settlement"]]
    monkeypatch.setattr(InvoiceBook, "compact", lambda self, min_rows=1024: None)
    kept = _run(tmp_path, 150, seed)
    assert not len(kept.credit.book.archive)
    pd.testing.assert_frame_equal(inv, kept.credit.book.frame())
    pd.testing.assert_frame_equal(settlements, kept.payments.frame())
