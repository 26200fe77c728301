"""Payment: what a consumer pays reaches the merchant after a settlement delay, less a payment
fee, converted at the rate of the settlement day; the difference from the rate of the sale day
is an exchange gain or loss, booked as its own ledger entry. Merchants may hedge a share of
each day's sales with a forward struck at the sale day's rate.

Money (USD cents, double entry, :mod:`market.money.ledger`):

- sale day: the consumer pays the merchant the sale at the day's rate (``sale``, in
  :mod:`market.goods.orders`); the merchant's payment route holds it at once (``in_settlement``:
  merchant -> the clearing account): the merchant's cash does not have it yet. A hedging
  merchant pays for its forward (``hedge_cost``).
- settlement day (sale day + the channel kind's delay): the clearing account pays back what it
  held at the sale day's rate (``settlement``); the unhedged share's difference from the
  settlement day's rate is an exchange gain (``fx_gain``: FX market -> merchant) or loss
  (``fx_loss``: merchant -> FX market); the payment fee goes to the payment service provider
  (``payment_fee``, a share of the amount booked).

The clearing account's balance is the cash tied up in settlement. One batch a day per
(merchant, market, channel) is kept and written to ``settlements.parquet`` with the rates, so
the exchange result can be recomputed from the output files:

    fx_cents = rint((1 - hedged_share) x booked_cents x (rate_booked / rate_settled - 1))

with rates in units of the market's currency per USD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from market.archive import ColumnArchive
from market.arrays import unique_inverse
from market.money.currency import USD
from market.money.ledger import KIND, KINDS
from market.scenario import CURRENCIES

if TYPE_CHECKING:
    from market.model import Marketplace

# kinds that move money without earning or spending it: not in a merchant's margin
FINANCING = ("capital", "owner_draw", "trade_credit", "receivable", "invoice_payment", "receivable_settled",
             "bad_debt", "in_settlement", "settlement")

_COLUMNS = (("sale_day", np.int32), ("due_day", np.int32), ("merchant_idx", np.int64), ("market", np.int64),
            ("channel", np.int64), ("currency", np.int64), ("booked_cents", np.int64), ("rate_booked", np.float64),
            ("hedged_share", np.float64), ("hedge_cost_cents", np.int64))
# ... and what settlement adds to a batch
_SETTLED_COLUMNS = _COLUMNS + (("settle_day", np.int32), ("rate_settled", np.float64), ("fx_cents", np.int64),
                               ("fee_cents", np.int64))


class Payments:
    """Sales in settlement, their payout, fees and exchange results. Takes the model for its
    ledger, rates, world (channel kinds) and merchants' accounts."""

    def __init__(self, model: Marketplace):
        self.model = model
        cfg = model.config.payment
        self.cfg = cfg
        self.enabled = cfg.enabled
        ledger = model.ledger
        self.acct_clearing = ledger.open("payments in settlement (platforms, PSPs)")
        self.acct_psp = ledger.open("payment service providers")
        self.acct_fx = ledger.open("foreign exchange market")
        kinds = [model.world.spec.channels[c].kind for c in model.world.channels]
        warehouse = np.array([k == "warehouse" for k in kinds])
        on = 1.0 if self.enabled else 0.0
        self.fee = on * np.where(warehouse, cfg.warehouse_fee, cfg.direct_fee)       # per channel
        self.delay = np.where(warehouse, cfg.warehouse_settlement_days, cfg.direct_settlement_days).astype(np.int64)
        self.open = {name: np.zeros(0, dtype=dt) for name, dt in _COLUMNS}     # batches in settlement
        # settled batches, by day: on disk, since a long run settles millions (market/archive.py)
        self.settled = ColumnArchive(dict(_SETTLED_COLUMNS))
        n_cur, n_mkt = len(CURRENCIES), len(model.world.markets)
        self.totals = {k: 0 for k in ("fees", "fx_gain", "fx_loss", "hedge_cost", "booked", "settled")}
        self.fx_by_currency = np.zeros(n_cur, dtype=np.int64)       # net exchange result, cents
        self.fees_by_market = np.zeros(n_mkt, dtype=np.int64)
        self.today = dict.fromkeys(self.totals, 0)

    # ---- sale day ----
    def on_sale(self, day: int, merchant_idx: np.ndarray, market: np.ndarray, channel: np.ndarray,
                sale_cents: np.ndarray):
        """Today's sales (one entry per parcel) go into settlement, one batch per (merchant,
        market, channel); hedging merchants buy their forwards."""
        if not self.enabled or sale_cents.size == 0:
            return
        model = self.model
        n_mkt, n_ch = len(model.world.markets), len(model.world.channels)
        key = (merchant_idx * n_mkt + market) * n_ch + channel
        uniq, inv = unique_inverse(key)
        booked = np.bincount(inv, weights=sale_cents, minlength=uniq.size).astype(np.int64)
        mer, rest = np.divmod(uniq, n_mkt * n_ch)
        mkt, ch = np.divmod(rest, n_ch)
        cur = model.rates.market_currency[mkt]
        rate = model.rates.per_usd[cur]
        foreign = cur != USD
        hedged = np.where(foreign, self.cfg.hedge_share, 0.0) if self.cfg.hedge else np.zeros(uniq.size)
        hedge_cost = np.rint(self.cfg.hedge_cost * hedged * booked).astype(np.int64)
        accts = model.merchant_accts[mer]
        model.ledger.post(accts, self.acct_clearing, booked, "in_settlement")
        if hedge_cost.any():
            model.ledger.post(accts, self.acct_fx, hedge_cost, "hedge_cost")
        batch = {"sale_day": np.full(uniq.size, day, dtype=np.int32),
                 "due_day": (day + self.delay[ch]).astype(np.int32), "merchant_idx": mer, "market": mkt,
                 "channel": ch, "currency": cur, "booked_cents": booked, "rate_booked": rate,
                 "hedged_share": hedged, "hedge_cost_cents": hedge_cost}
        self.open = {k: np.concatenate([self.open[k], batch[k].astype(self.open[k].dtype)]) for k in self.open}
        self.today["booked"] += int(booked.sum())
        self.today["hedge_cost"] += int(hedge_cost.sum())

    # ---- settlement day ----
    def settle(self, day: int):
        """Batches that fall due are paid out at today's rate: the amount held back, the exchange
        result of the unhedged share, and the payment fee."""
        if not self.enabled or self.open["due_day"].size == 0:
            return
        due = self.open["due_day"] <= day
        if not due.any():
            return
        model = self.model
        b = {k: v[due] for k, v in self.open.items()}
        self.open = {k: v[~due] for k, v in self.open.items()}
        rate_now = model.rates.per_usd[b["currency"]]
        fx = fx_result(b["booked_cents"], b["rate_booked"], rate_now, b["hedged_share"])
        fee = np.rint(self.fee[b["channel"]] * b["booked_cents"]).astype(np.int64)
        accts = model.merchant_accts[b["merchant_idx"]]
        ledger = model.ledger
        ledger.post(self.acct_clearing, accts, b["booked_cents"], "settlement")
        gain, loss = fx > 0, fx < 0
        if gain.any():
            ledger.post(self.acct_fx, accts[gain], fx[gain], "fx_gain")
        if loss.any():
            ledger.post(accts[loss], self.acct_fx, -fx[loss], "fx_loss")
        if fee.any():
            ledger.post(accts, self.acct_psp, fee, "payment_fee")
        b.update(settle_day=np.full(fee.size, day, dtype=np.int32), rate_settled=rate_now, fx_cents=fx,
                 fee_cents=fee)
        self.settled.append(b)
        t = self.today
        t["settled"] += int(b["booked_cents"].sum())
        t["fees"] += int(fee.sum())
        t["fx_gain"] += int(fx[gain].sum())
        t["fx_loss"] += int(-fx[loss].sum())
        np.add.at(self.fx_by_currency, b["currency"], fx)
        np.add.at(self.fees_by_market, b["market"], fee)

    # ---- figures ----
    def in_settlement_cents(self) -> int:
        """Cash tied up in settlement: what the clearing account holds for merchants."""
        return self.model.ledger.balance(self.acct_clearing)

    def daily_figures(self) -> dict:
        """Today's payment fees, exchange gains and losses, hedging cost, sales booked into and
        paid out of settlement, the cash in settlement, and today's rates (``rate_*``)."""
        t = self.today
        row = {"payment_fees_usd": t["fees"] / 100.0, "fx_gains_usd": t["fx_gain"] / 100.0,
               "fx_losses_usd": t["fx_loss"] / 100.0, "fx_net_usd": (t["fx_gain"] - t["fx_loss"]) / 100.0,
               "hedge_costs_usd": t["hedge_cost"] / 100.0, "booked_into_settlement_usd": t["booked"] / 100.0,
               "settled_usd": t["settled"] / 100.0, "cash_in_settlement_usd": self.in_settlement_cents() / 100.0}
        for k, v in t.items():
            self.totals[k] += v
        self.today = dict.fromkeys(self.totals, 0)
        row.update(self.model.rates.daily_figures())
        return row

    def summary_figures(self) -> dict:
        """The run's payment fees, exchange results (in all and per currency), hedging cost, and
        what is still in settlement."""
        t = self.totals
        model = self.model
        markets = model.world.markets
        margin = merchant_margin_cents(model.ledger, model.merchant_accts)
        sales = int(model.ledger.total_by_kind[KIND["sale"]])
        return {"merchants_margin_usd": margin / 100.0,
                "merchants_margin_share": margin / sales if sales else None,
                "payment": {
            "enabled": self.enabled, "hedge": self.cfg.hedge,
            "payment_fees_usd": t["fees"] / 100.0, "fx_gains_usd": t["fx_gain"] / 100.0,
            "fx_losses_usd": t["fx_loss"] / 100.0, "fx_net_usd": (t["fx_gain"] - t["fx_loss"]) / 100.0,
            "hedge_costs_usd": t["hedge_cost"] / 100.0, "booked_into_settlement_usd": t["booked"] / 100.0,
            "settled_usd": t["settled"] / 100.0, "in_settlement_at_end_usd": self.in_settlement_cents() / 100.0,
            "fx_net_by_currency_usd": {c: int(self.fx_by_currency[i]) / 100.0 for i, c in enumerate(CURRENCIES)},
            "payment_fees_by_market_usd": {m: int(self.fees_by_market[i]) / 100.0 for i, m in enumerate(markets)},
        }}

    def frame(self) -> pd.DataFrame:
        """Every batch: settled ones with their settlement day, rate, exchange result and fee;
        ones still in settlement at the end with settle_day -1 (``settlements.parquet``)."""
        model = self.model
        n_open = self.open["due_day"].size
        cols = [name for name, _ in _SETTLED_COLUMNS]
        if not len(self.settled) and not n_open:
            return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
        still_open = {**self.open, "settle_day": np.full(n_open, -1, dtype=np.int32),
                      "rate_settled": np.full(n_open, np.nan), "fx_cents": np.zeros(n_open, dtype=np.int64),
                      "fee_cents": np.zeros(n_open, dtype=np.int64)}
        data = {c: np.concatenate([self.settled.column(c), still_open[c]]) for c in cols}
        df = pd.DataFrame(data)
        names = np.array([m.name for m in model.merchants] or [""], dtype=object)
        df.insert(3, "merchant", names[df["merchant_idx"].to_numpy()] if len(df) else pd.Series(dtype=object))
        df["merchant_acct"] = model.merchant_accts[df["merchant_idx"].to_numpy()] if len(df) else 0
        df["market_name"] = np.array(model.world.markets, dtype=object)[df["market"].to_numpy()]
        df["channel_name"] = np.array(model.world.channels, dtype=object)[df["channel"].to_numpy()]
        df["currency_code"] = np.array(CURRENCIES, dtype=object)[df["currency"].to_numpy()]
        return df


def fx_result(booked_cents: np.ndarray, rate_booked: np.ndarray, rate_settled: np.ndarray,
              hedged_share: np.ndarray) -> np.ndarray:
    """Exchange gain (+) or loss (-) in cents of amounts booked at ``rate_booked`` and settled at
    ``rate_settled`` (units of the foreign currency per USD), on their unhedged share."""
    return np.rint((1.0 - hedged_share) * booked_cents * (rate_booked / rate_settled - 1.0)).astype(np.int64)


def merchant_margin_cents(ledger, merchant_accts: np.ndarray) -> int:
    """Merchants' margin so far, in cents: everything paid to them less everything they paid,
    leaving out capital, owners' draws and the movements of credit and settlement (FINANCING)."""
    keep = np.ones(len(KINDS), dtype=bool)
    keep[[KIND[k] for k in FINANCING]] = False
    is_mer = np.zeros(ledger.n_accounts, dtype=bool)
    is_mer[merchant_accts] = True
    # over the closed days' journal lines, from the ledger's running sums by account and kind
    return int(ledger.received_by_kind()[is_mer][:, keep].sum() - ledger.paid_by_kind()[is_mer][:, keep].sum())
