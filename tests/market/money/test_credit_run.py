"""Trade credit in whole runs: scores that differ across buyers, and every credit posting in
ledger.parquet recounted from invoices.parquet (receivables, payments, interest, bad debt)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SMALL = {"merchants.exporters": 8, "merchants.importers": 3}
THIN = {"credit.cash_buffer_days": 10.0}       # thinly funded merchants, so some pay late in 120 days


@pytest.fixture(scope="module", params=[1, 2, 3])
def credit_run(request, simulate):
    return simulate("baseline", days=120, seed=request.param, **SMALL, **THIN)


def test_invoices_recount_the_credit_postings(credit_run):
    inv = pd.read_parquet(credit_run.out / "invoices.parquet")
    j = pd.read_parquet(credit_run.out / "ledger.parquet")
    by_kind = j.groupby("kind")["amount_cents"].sum()
    assert len(inv) > 0
    # every invoice handed its amount back to the buyer and booked the claim
    assert by_kind["trade_credit"] == inv["amount"].sum() == by_kind["receivable"]
    assert by_kind.get("invoice_payment", 0) == inv["paid"].sum() == by_kind.get("receivable_settled", 0)
    assert by_kind.get("late_interest", 0) == inv["interest"].sum()
    status = inv["status"].astype(str)
    left = inv["amount"] - inv["paid"]
    assert by_kind.get("bad_debt", 0) == left[status == "defaulted"].sum()
    assert (left[status == "paid"] == 0).all() and (inv["due"] - inv["issued"] == 30).all()
    # each receivables account holds exactly what its seller's open invoices still owe
    names = j[["payee", "payee_name"]].drop_duplicates().set_index("payee")["payee_name"]
    inflow = j.groupby("payee")["amount_cents"].sum()
    outflow = j.groupby("payer")["amount_cents"].sum()
    balance = inflow.sub(outflow, fill_value=0)
    open_by_creditor = left[status == "open"].groupby(inv["creditor_name"][status == "open"]).sum()
    recv = {n.removesuffix(":receivables"): balance[a] for a, n in names.items() if n.endswith(":receivables")}
    for creditor, owed in recv.items():
        assert owed == open_by_creditor.get(creditor, 0), creditor
    # the summary reports the same
    import json
    s = json.loads((credit_run.out / "summary.json").read_text())["credit"]
    assert s["invoices_issued"] == len(inv)
    assert s["receivables_outstanding_usd"] == pytest.approx(left[status == "open"].sum() / 100)
    assert s["invoices_gone_late"] == int(inv["late"].sum())


def test_scores_differ_across_buyers(credit_run):
    """Merchants that left invoices past due have lower payment scores than those that never did."""
    m = credit_run.model
    inv = pd.read_parquet(credit_run.out / "invoices.parquet")
    accts = m.merchant_accts
    scores = m.credit.scores(accts)
    # a payment record fails on a day that starts with an invoice past due: an invoice paid the
    # day after its due date is marked late but never was past due at a day's record (issue 13's
    # market had such a merchant, scored as one that never paid late), so "late" here is an
    # invoice still open a day after its due date (closed two or more days after it, or open
    # or defaulted past it)
    closed = inv["closed"].where(inv["status"].astype(str) == "paid", m.day + 1)
    late = (inv["late"] & (closed - inv["due"] >= 2)).groupby(inv["debtor"]).sum().reindex(accts, fill_value=0).to_numpy()
    assert (late > 0).any() and (late == 0).any()
    assert scores[late > 0].max() < scores[late == 0].min()
    assert scores.max() - scores.min() > 0.1
