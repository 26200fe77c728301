"""Trade credit against hand-computed figures: due dates, oldest-first partial payment, late
interest, default after the grace period, terms from the payment score, and the ledger's
balances (cash, receivables, payables) after each step."""

from __future__ import annotations

import numpy as np
import pytest

from market.mechanisms.reputation import ReputationBook
from market.money.credit import DEFAULTED, OPEN, PAID, InvoiceBook, MerchantCash, TradeCredit, pay_oldest_first
from market.money.ledger import Ledger
from market.scenario import Credit


def test_pay_oldest_first_by_hand():
    # debtor 0 owes 30, 50, 40 (oldest first) and has 60: pays 30, then 30 of the 50, nothing of the 40;
    # debtor 2 owes 10, 10 and has 100: pays both; debtor 1 has negative cash: pays nothing
    debtor = np.array([0, 0, 0, 1, 2, 2])
    owed = np.array([30, 50, 40, 25, 10, 10])
    cash = np.array([60, -5, 100])
    assert pay_oldest_first(debtor, owed, cash).tolist() == [30, 30, 0, 0, 10, 10]
    with pytest.raises(ValueError):
        pay_oldest_first(np.array([0, 1, 0]), np.array([1, 1, 1]), cash)


def test_invoice_book_columns():
    book = InvoiceBook(capacity=2)
    ids = book.add(np.array([3, 4, 3]), np.array([7, 7, 8]), np.array([100, 200, 300]), 5, 35)
    assert ids.tolist() == [0, 1, 2] and book.n == 3           # the table grew past its capacity
    assert book["due"].tolist() == [35, 35, 35] and book["issued"].tolist() == [5, 5, 5]
    assert book.outstanding(10).tolist()[3:5] == [400, 200]
    assert book.outstanding(10, by="creditor")[7:9].tolist() == [300, 300]
    with pytest.raises(ValueError):
        book.add(1, 2, np.array([0]), 0, 30)


class World:
    """A ledger with two buyers (merchants) and two sellers, and the credit desk over them."""

    def __init__(self, **cfg):
        self.ledger = Ledger()
        lg = self.ledger
        self.capital = lg.open("capital")
        self.m1 = lg.open("merchant:a", "merchant", 0)
        self.m2 = lg.open("merchant:b", "merchant", 1)
        self.c1 = lg.open("carrier:x", "carrier", 2)
        self.c2 = lg.open("carrier:y", "carrier", 3)
        self.rep = ReputationBook(4, half_life=None)
        self.cfg = Credit(**({"terms_days": 30, "grace_days": 60, "late_interest": 0.125, "limit": 1e6,
                              "prepay_below": 0.35, "refuse_below": 0.2} | cfg))
        self.credit = TradeCredit(self.cfg, lg, self.rep, {self.m1: 0, self.m2: 1}, [self.c1, self.c2])

    def buy(self, buyer, seller, cents, kind="freight"):
        self.ledger.transfer(buyer, seller, cents, kind)

    def end_day(self, day):
        self.credit.day(day)
        self.ledger.close_day(day)
        assert self.ledger.imbalance() == 0

    def acct(self, name):
        return self.ledger.account(name)


def test_invoice_on_terms_is_paid_on_its_due_day():
    w = World()
    lg = w.ledger
    lg.transfer(w.capital, w.m1, 10_000, "capital")
    w.buy(w.m1, w.c1, 3_000)
    w.buy(w.m1, w.c1, 1_000, "handling")          # one invoice per buyer and seller a day
    w.buy(w.m1, w.c2, 500, "brokerage")
    w.end_day(0)
    b = w.credit.book
    assert b.n == 2 and b["amount"].tolist() == [4_000, 500] and b["due"].tolist() == [30, 30]
    # the buyer keeps its cash, the sellers have not been paid; receivables and payables hold the claims
    assert lg.balance(w.m1) == 10_000 and lg.balance(w.c1) == 0 and lg.balance(w.c2) == 0
    assert lg.balance(w.acct("carrier:x:receivables")) == 4_000
    assert lg.balance(w.acct("merchant:a:payables")) == -4_500
    # revenue counts the service once, not the credit movements
    assert lg.received[w.c1] == 4_000 and lg.received[w.m1] == 10_000
    for day in range(1, 30):
        w.end_day(day)
    assert (b["status"] == OPEN).all()
    w.end_day(30)
    assert (b["status"] == PAID).all() and (b["closed"] == 30).all() and not b["late"].any()
    assert lg.balance(w.m1) == 5_500 and lg.balance(w.c1) == 4_000 and lg.balance(w.c2) == 500
    assert lg.balance(w.acct("carrier:x:receivables")) == 0 and lg.balance(w.acct("merchant:a:payables")) == 0
    assert w.credit.counters["paid_on_time"] == 2 and w.credit.counters["interest_cents"] == 0


def test_short_cash_pays_oldest_first_then_late_with_interest_then_defaults():
    w = World()
    lg = w.ledger
    lg.transfer(w.capital, w.m1, 1_000_000, "capital")
    w.buy(w.m1, w.c1, 800_000)                   # day 0: 8,000 USD due day 30
    w.end_day(0)
    w.buy(w.m1, w.c2, 600_000)                   # day 1: 6,000 USD due day 31
    w.end_day(1)
    lg.transfer(w.m1, w.capital, 900_000, "goods")   # the merchant's cash goes elsewhere: 1,000 USD left
    for day in range(2, 31):
        w.end_day(day)
    b = w.credit.book
    # day 30: 1,000 paid of the 8,000, the rest late
    assert b["paid"].tolist() == [100_000, 0] and b["late"].tolist() == [True, False]
    w.end_day(31)
    assert b["late"].tolist() == [True, True] and lg.balance(w.m1) == 0
    for day in range(32, 40):
        w.end_day(day)
    # day 40: 10,000 USD comes in; the older invoice first: 7,000 at 10 days late, then 3,000 of
    # the 6,000 at 9 days late; statutory interest at 12.5% a year on top
    lg.transfer(w.capital, w.m1, 1_000_000, "sale")
    w.end_day(40)
    assert b["paid"].tolist() == [800_000, 300_000]
    assert b["status"].tolist() == [PAID, OPEN]
    interest = [round(700_000 * 0.125 * 10 / 365), round(300_000 * 0.125 * 9 / 365)]
    assert interest == [2397, 925]
    assert b["interest"].tolist() == interest
    assert lg.balance(w.m1) == -sum(interest)          # interest is charged on top of the cash paid
    # the other 3,000 never comes: it defaults once more than 60 days past its due date (31 + 60 < 92)
    for day in range(41, 92):
        w.end_day(day)
    assert b["status"][1] == OPEN
    w.end_day(92)
    assert b["status"].tolist() == [PAID, DEFAULTED] and b["closed"][1] == 92
    assert w.credit.counters["bad_debt_cents"] == 300_000
    # each seller was paid in cash what it got (plus interest); its receivables are clear
    assert lg.balance(w.c1) == 800_000 + interest[0] and lg.balance(w.c2) == 300_000 + interest[1]
    assert lg.balance(w.acct("carrier:y:receivables")) == 0 and lg.balance(w.acct("merchant:a:payables")) == 0
    j = lg.journal()
    assert j.loc[j["kind"] == "bad_debt", "amount_cents"].sum() == 300_000


def test_scores_follow_payment_history_and_set_terms():
    w = World(limit=100.0)                       # 10,000 cents at a perfect score
    lg = w.ledger
    lg.transfer(w.capital, w.m1, 1_000_000, "capital")     # pays everything
    for day in range(0, 120):
        w.buy(w.m1, w.c1, 100)
        w.buy(w.m2, w.c1, 100)                   # m2 has no cash: every invoice goes late
        w.end_day(day)
    s1, s2 = w.credit.scores(np.array([w.m1, w.m2]))
    # a success for m1 every day; m2 overdue from day 31 on (89 failures) after 31 successes
    assert s1 == pytest.approx(121 / 122)
    assert s2 == pytest.approx(32 / 122)
    assert w.cfg.refuse_below < s2 < w.cfg.prepay_below
    # below the prepayment threshold a buyer's purchases stay paid at once: no invoice
    n = w.credit.book.n
    w.buy(w.m2, w.c1, 100)
    w.end_day(120)
    assert (w.credit.book["debtor"][n:] == w.m2).sum() == 0
    assert w.credit.today["prepaid_cents"] == 100
    # credit limit: a perfect score may owe 10,000 x score; m1 owes days 91-119 (100 each) = 2,900 and
    # its score when day 121's invoices are issued is 122/123 (one more good day)
    w.buy(w.m1, w.c1, 8_000)
    w.end_day(121)
    assert w.credit.book["amount"][-1] == round(10_000 * 122 / 123) - 2_900
    assert w.credit.today["prepaid_cents"] == 8_000 - (round(10_000 * 122 / 123) - 2_900)
    # below the refusal threshold providers refuse the buyer (no tender bids)
    assert not w.credit.refuses(1)
    w.cfg.refuse_below = 0.3
    assert w.credit.refuses(1) and not w.credit.refuses(0)


def test_owner_draw_keeps_the_buffer():
    lg = Ledger()
    owners = lg.open("owners")
    a, b = lg.open("m:a"), lg.open("m:b")
    lg.transfer(owners, a, 5_000, "capital")
    lg.transfer(owners, b, 500, "capital")
    cash = MerchantCash(lg, np.array([a, b]), owners, np.array([1_000, 2_000]))
    cash.day()
    assert lg.balance(a) == 1_000 and lg.balance(b) == 500     # only the cash above the buffer leaves
    assert lg.total_by_kind[__import__("market.money.ledger", fromlist=["KIND"]).KIND["owner_draw"]] == 4_000


def test_credit_off_changes_nothing():
    w = World(enabled=False)
    w.ledger.transfer(w.capital, w.m1, 1_000, "capital")
    w.buy(w.m1, w.c1, 500)
    w.end_day(0)
    assert w.credit.book.n == 0 and w.ledger.balance(w.c1) == 500 and not w.credit.refuses(0)


def test_scenario_credit_section():
    cfg = Credit()
    assert cfg.terms_days == 30 and cfg.cash_buffer_days == 27.0
