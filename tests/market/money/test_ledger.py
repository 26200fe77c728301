from __future__ import annotations

import numpy as np
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
