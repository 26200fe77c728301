"""A demand slump against the same market without it (paired seeds): do thinly funded merchants
pay late more often and pay more for logistics (late interest), while well funded ones barely
change?

The invoices due in the 30 days after the slump starts were issued before it, so both runs of a
pair owe exactly the same; only the cash to pay them differs. Today the answer is mixed, so the
test is a strict xfail: merchants pay their goods and duties per order, so a slump also cuts
what they spend, and warehouse merchants stop buying stock; in about half the seeds the weakest
third ends up with more cash, not less (seeds 1-6, share of the amount due in the window paid
late, no slump -> slump: 0.19->0.55, 0.02->0.76, 0.37->0.25, 0.19->0.05, 0.06->0.00,
0.25->0.82). Making the slump bite needs costs that do not fall with orders (stock bought ahead,
fixed costs, contracts' minimum volumes), which belongs to the merchant's economics.
"""

from __future__ import annotations

import numpy as np
import pytest

from market import Marketplace

SMALL = {"merchants.exporters": 8, "merchants.importers": 3, "credit.cash_buffer_days": 10.0}
START, WINDOW, DAYS = 30, 30, 90
SLUMP = [{"name": "slump", "kind": "demand", "day": START, "factor": 0.3}]
SEEDS = (1, 2, 3, 4, 5)


def late_share(seed: int, slump: bool) -> tuple[float, float]:
    """Share of the amount due in the window that went late: weakest third, strongest third."""
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
    return late[weak].sum() / max(due[weak].sum(), 1), late[strong].sum() / max(due[strong].sum(), 1)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="a slump also cuts merchants' per-order outlays; see the module docstring")
def test_slump_makes_weak_merchants_pay_late():
    diffs = np.array([np.subtract(late_share(s, True), late_share(s, False)) for s in SEEDS])
    weak, strong = diffs[:, 0], diffs[:, 1]
    assert (weak > 0).all() and weak.mean() > 2 * weak.std(ddof=1) / np.sqrt(len(SEEDS))
    assert abs(strong.mean()) < weak.mean() / 2
