from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market.money.ledger import Ledger, to_cents


def test_double_entry_balances_to_zero():
    L = Ledger()
    a, b, c = L.open("a"), L.open("b"), L.open("c")
    L.transfer(a, b, 1000, "capital")
    L.post(np.array([b, b, c]), np.array([c, a, a]), np.array([1, 2, 3]), "freight")
    L.close_day(0)
    assert L.imbalance() == 0
    assert L.balance(a) == -1000 + 2 + 3 and L.balance(b) == 1000 - 3 and L.balance(c) == 1 - 3
    j = L.journal()
    assert j["amount_cents"].sum() == 1006 and set(j["kind"]) == {"capital", "freight"}


def test_negative_amount_refused():
    L = Ledger()
    a, b = L.open("a"), L.open("b")
    with pytest.raises(ValueError):
        L.post([a], [b], [-5], "freight")


def test_to_cents_rounds():
    assert to_cents(1.005).item() in (100, 101) and to_cents([0.1, 0.2]).tolist() == [10, 20]


# ---- against a brute-force ledger and hand figures ------------------------------------------
def test_random_postings_match_a_brute_force_ledger():
    """Balances, money received, totals by kind and the consolidated journal, against a plain
    dictionary ledger fed the same transfers one by one."""
    from market.money.ledger import KINDS

    CREDIT_MOVES = {"trade_credit", "receivable", "invoice_payment", "receivable_settled", "bad_debt",
                    "in_settlement", "settlement"}          # credit, and sales held in settlement
    rng = np.random.default_rng(3)
    L = Ledger()
    names = [f"acct-{i}" for i in range(90)]           # more than the 64 first allocated
    accts = [L.open(n) for n in names]
    balance = dict.fromkeys(accts, 0)
    received = dict.fromkeys(accts, 0)
    by_kind = dict.fromkeys(KINDS, 0)
    lines: dict[tuple[int, int, int, str], list[int]] = {}
    for day in range(4):
        for _ in range(30):
            kind = KINDS[int(rng.integers(len(KINDS)))]
            n = int(rng.integers(1, 6))
            payer = rng.choice(accts, n).tolist()
            payee = rng.choice(accts, n).tolist()
            cents = rng.integers(0, 10_000, n).tolist()
            single = n == 1 and rng.random() < 0.5
            side = rng.random()                 # one account on a side, given as a scalar
            if side < 0.25:
                payer = [payer[0]] * n
            elif side < 0.5:
                payee = [payee[0]] * n
            if single:
                L.transfer(payer[0], payee[0], cents[0], kind)
            else:
                arrays = [np.array(payer), np.array(payee), np.array(cents)]
                L.post(payer[0] if side < 0.25 else arrays[0], payee[0] if 0.25 <= side < 0.5 else arrays[1],
                       arrays[2], kind)
                for a in arrays:                # the caller reusing its arrays changes nothing posted
                    a[:] = 0
            for p, q, c in zip(payer, payee, cents):
                balance[p] -= c
                balance[q] += c
                if kind not in CREDIT_MOVES:        # moving credit is not income
                    received[q] += c
                by_kind[kind] += c
                if c > 0 or not single:             # a single transfer of 0 posts nothing
                    lines.setdefault((day, p, q, kind), []).append(c)
        L.close_day(day)
    assert L.balances.tolist() == [balance[a] for a in accts]
    assert L.received.tolist() == [received[a] for a in accts]
    assert L.imbalance() == 0 and sum(balance.values()) == 0
    assert L.total_by_kind.tolist() == [by_kind[k] for k in KINDS]
    j = L.journal()
    got = {(int(r.day), int(r.payer), int(r.payee), r.kind): (int(r.amount_cents), int(r.count))
           for r in j.itertuples()}
    assert got == {k: (sum(v), len(v)) for k, v in lines.items()}
    assert (j["amount_usd"] * 100).round().astype(np.int64).tolist() == j["amount_cents"].tolist()
    assert j["payer_name"].tolist() == [names[p] for p in j["payer"]]
    assert j["payee_name"].tolist() == [names[p] for p in j["payee"]]


def test_consolidated_journal_hand_example():
    L = Ledger()
    a, b, c = L.open("a", "merchant", 7), L.open("b"), L.open("c")
    assert L.open("a") == a and L.account("b") == b and L.n_accounts == 3
    # day 0: a pays b freight 100 + 250 + 50 (two postings), b pays c duty 30, a pays c 0
    L.post(a, np.array([b, b]), np.array([100, 250]), "freight")
    L.post([a], [b], [50], "freight")
    L.transfer(b, c, 30, "duty")
    L.transfer(a, c, 0, "duty")
    L.close_day(0)
    L.close_day(1)                                   # a day with nothing: no lines
    # day 2: c refunds a 5
    L.transfer(c, a, 5, "refund")
    L.close_day(2)
    j = L.journal()
    assert j[["day", "payer_name", "payee_name", "kind", "amount_cents", "count"]].values.tolist() == [
        [0, "a", "b", "freight", 400, 3],
        [0, "b", "c", "duty", 30, 1],
        [2, "c", "a", "refund", 5, 1],
    ]
    assert j["amount_usd"].tolist() == [4.0, 0.3, 0.05]
    assert [L.balance(x) for x in (a, b, c)] == [-400 + 5, 400 - 30, 30 - 5]
    assert L.received.tolist() == [5, 400, 30]
    blocks, n = L.lines_since(1)
    assert n == 2 and len(blocks) == 1 and blocks[0][0].tolist() == [2]
    assert L.lines_since(0)[0][0][4].tolist() == [400, 30]


def test_transfers_refuse_negative_amounts_and_unknown_kinds():
    L = Ledger()
    a, b = L.open("a"), L.open("b")
    with pytest.raises(ValueError):
        L.transfer(a, b, -1, "freight")
    with pytest.raises(KeyError):
        L.transfer(a, b, 1, "gift")
    L.post([a], [b], [], "freight")                  # nothing to post
    assert L.balances.tolist() == [0, 0]
    empty = Ledger().journal()
    assert len(empty) == 0 and list(empty.columns) == ["day", "payer", "payee", "kind", "amount_usd",
                                                       "count", "amount_cents"]


def test_to_cents_rounds_half_to_even_and_refuses_non_finite():
    # 0.125 USD = 12.5 cents -> 12; 0.375 -> 37.5 -> 38; -0.125 -> -12; 2.5 -> 250
    assert to_cents([0.125, 0.375, -0.125, 2.5]).tolist() == [12, 38, -12, 250]
    assert to_cents(0.125) == 12 and to_cents(0.375) == 38 and to_cents(19.99) == 1999
    assert isinstance(to_cents(0.125), np.int64)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            to_cents(bad)
        with pytest.raises(ValueError):
            to_cents([1.0, bad])


def test_money_is_kept_in_integer_cents():
    L = Ledger()
    a, b = L.open("a"), L.open("b")
    L.transfer(a, b, 7, "freight")
    L.post([a, b], [b, a], [3, 1], "duty")
    L.close_day(0)
    for arr in (L.balances, L.received, L.total_by_kind):
        assert arr.dtype == np.int64
    j = L.journal()
    assert j["amount_cents"].dtype == np.int64 and j["count"].dtype == np.int64
    assert j["day"].dtype == np.int32 and j["payer"].dtype == np.int64
    assert sorted(j["kind"]) == ["duty", "duty", "freight"]
    empty = Ledger().journal()
    assert empty["amount_cents"].dtype == np.int64 and empty["day"].dtype == np.int32
    assert to_cents([1.5]).dtype == np.int64


def test_the_65th_account_gets_room():
    # 64 accounts fit the first arrays; the 65th (index 64) must make them grow
    L = Ledger()
    accts = [L.open(f"a{i}") for i in range(65)]
    L.transfer(accts[0], accts[64], 123, "capital")
    assert L.balance(accts[64]) == 123 and L.received[64] == 123 and L.imbalance() == 0


def _busy_ledger(days: int = 9, seed: int = 4, path=None, group_rows: int = 0, held: list | None = None) -> Ledger:
    """Random postings over ``days`` days; with ``path``, the journal goes to that file (row
    groups of ``group_rows``) and ``held`` gets the lines still held after each day."""
    rng = np.random.default_rng(seed)
    L = Ledger()
    if path is not None:
        L.journal_to_file(path, group_rows=group_rows)
    accts = [L.open(f"account {i}") for i in range(12)]
    for day in range(days):
        n = int(rng.integers(0, 30))
        payer = rng.choice(accts, n)
        payee = rng.choice(accts, n)
        L.post(payer, payee, rng.integers(1, 10_000, n), ["freight", "sale", "duty"][day % 3])
        L.close_day(day)
        if held is not None:
            held.append(L.journal_lines())
    return L


def test_journal_lines_start_to_stop_are_those_of_the_whole_journal():
    L = _busy_ledger()
    whole = L.journal()
    assert L.journal_lines() == len(whole) > 30
    for start, stop in [(0, 1), (0, len(whole)), (3, 17), (5, 5), (len(whole) - 2, len(whole)), (11, 12)]:
        part = L.journal(start, stop)
        expected = whole.iloc[start:stop].reset_index(drop=True)
        assert len(part) == stop - start
        if len(part):
            pd.testing.assert_frame_equal(part, expected)


def test_the_journals_arrow_table_is_the_frames_table():
    """The journal written to ledger.parquet is built as Arrow columns, not through a frame of
    Python strings; it must be the table the frame gives, schema and pandas metadata included
    (so the file's bytes stay those of the frame written whole), for any run of lines."""
    import pyarrow as pa

    L = _busy_ledger()
    n = L.journal_lines()
    for start, stop in [(0, None), (0, 1), (3, 17), (n - 2, n), (11, None), (5, 5)]:
        expected = pa.Table.from_pandas(L.journal(start, stop), preserve_index=False)
        got = L.journal_table(start, stop)
        assert got.equals(expected, check_metadata=True), (start, stop)
    assert L.journal_table().column("payee_name").to_pylist() == list(L.journal()["payee_name"])
    assert Ledger().journal_table().equals(pa.Table.from_pandas(Ledger().journal(), preserve_index=False),
                                           check_metadata=True)


def test_the_journal_written_a_row_group_at_a_time_is_the_file_written_whole(tmp_path):
    """ledger.parquet of a market-scale run is written a row group at a time; the bytes are
    those of the whole frame written with the same row groups (and so those of every run
    before the change)."""
    from experiments.run import write_parquet_by_row_group

    L = _busy_ledger()
    rows = L.journal_lines()
    for group in (7, rows, rows + 5):
        whole, grouped = tmp_path / f"whole-{group}.parquet", tmp_path / f"grouped-{group}.parquet"
        L.journal().to_parquet(whole, index=False, row_group_size=group)
        write_parquet_by_row_group(L.journal, rows, grouped, group_rows=group)
        assert grouped.read_bytes() == whole.read_bytes()
    assert pq.ParquetFile(tmp_path / "grouped-7.parquet").num_row_groups == -(-rows // 7)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "grouped-7.parquet"), L.journal())


@pytest.mark.parametrize("group", [7, 1000])
def test_the_journal_written_as_days_close_is_the_journal_written_whole(tmp_path, group):
    """A market-scale run writes its journal as days close, holding less than a row group; the
    file is the in-memory journal's, written whole with the same row groups, byte for byte (a
    journal smaller than a row group is written when the file closes)."""
    whole = tmp_path / "whole.parquet"
    reference = _busy_ledger()
    reference.journal().to_parquet(whole, index=False, row_group_size=group)
    held = []
    spilled = _busy_ledger(path=tmp_path / "ledger.parquet", group_rows=group, held=held)
    assert max(held) < group
    with pytest.raises(RuntimeError, match="written to"):
        spilled.journal()
    assert not (tmp_path / "ledger.parquet").exists() or group < reference.journal_lines()
    spilled.close_journal_file()
    spilled.close_journal_file()            # closed once: a second close leaves the file as it is
    assert (tmp_path / "ledger.parquet").read_bytes() == whole.read_bytes()
    assert spilled.journal_file == tmp_path / "ledger.parquet" and spilled.journal_lines() == 0
    np.testing.assert_array_equal(spilled.balances, reference.balances)


def test_paid_and_received_by_kind_are_the_journal_summed():
    """The running sums the summary's margins read, against the journal summed by account and kind."""
    from market.money.ledger import KINDS

    L = _busy_ledger()
    j = L.journal()
    for side, got in (("payer", L.paid_by_kind()), ("payee", L.received_by_kind())):
        expected = np.zeros((L.n_accounts, len(KINDS)), dtype=np.int64)
        for (acct, kind), cents in j.groupby([side, "kind"])["amount_cents"].sum().items():
            expected[acct, KINDS.index(kind)] = cents
        np.testing.assert_array_equal(got, expected)
    assert L.paid_by_kind().sum() == L.received_by_kind().sum() == j["amount_cents"].sum() > 0
