"""The market view: the latest round of tenders (bids and winners) and the contracts book.

A tender is one buyer's request for one resource (a lane, a warehouse, a customs point) in a
round; its contracts record the number of bids, the price each winner is paid and the next
best bid. The engine keeps the winning and runner-up prices, not every losing bid; the
bidders listed are the providers with an offer on that resource (winners marked ✓).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import solara

from viz import style
from viz.components.kpis import Kpi
from viz.state import column, names_of, resource_label, series

SERVICE_LABELS = {"lane": "Transport", "warehouse": "Warehousing", "brokerage": "Customs brokerage",
                  "end_to_end": "End-to-end service"}
MECHANISM_LABELS = {"first_price": "First-price sealed bid", "vickrey": "Vickrey (second price)",
                    "clock": "Descending clock", "package": "Package (combinatorial)",
                    "contract_net": "Contract net", "contract_net/sub": "Contract net (subcontract)"}
OPEN_ENDED = 10**5  # an end later than this many days: a contract with no fixed end


def mechanism_label(m: str) -> str:
    """A readable label for the mechanism a contract was signed by."""
    m = str(m)
    if m.startswith("quote/"):
        return f"4PL quote ({m.split('/', 1)[1].replace('_', ' ')})"
    return MECHANISM_LABELS.get(m, m.replace("_", " "))
STATUS_CHOICES = ("Active", "Latest round", "All")


def contracts_frame(model) -> pd.DataFrame:
    """The contract book with names (empty frame if there is none)."""
    book = getattr(model, "contracts", None)
    if book is None or getattr(book, "n", 0) == 0:
        return pd.DataFrame()
    try:
        return book.frame(names_of(model))
    except Exception:  # noqa: BLE001 - a book of another shape: show nothing rather than fail
        return pd.DataFrame()


def _date(model, day) -> str:
    try:
        return (model.config.simulation.start_date + dt.timedelta(days=int(day))).strftime("%d %b %Y")
    except (AttributeError, TypeError, ValueError, OverflowError):
        return str(day)


def _price(x, bulk: bool) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"${x:,.0f} /t" if bulk else f"${x:,.2f}"


def _bulk_of(model, resources) -> np.ndarray:
    res_bulk = np.asarray(getattr(getattr(model, "net", None), "res_bulk", np.zeros(0, dtype=bool)))
    r = np.asarray(resources, dtype=np.int64)
    return np.where(r < res_bulk.size, res_bulk[np.clip(r, 0, max(res_bulk.size - 1, 0))], False) if res_bulk.size \
        else np.zeros(r.size, dtype=bool)


def tendered(df: pd.DataFrame) -> pd.DataFrame:
    """The contracts signed in tenders (not a 4PL's end-to-end service quotes to merchants)."""
    if df.empty:
        return df
    keep = pd.Series(True, index=df.index)
    if "service" in df:
        keep &= df["service"].astype(str) != "end_to_end"
    if "resource" in df:
        keep &= df["resource"] >= 0
    return df[keep]


def tenders_table(model, df: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """One row per tender of the latest round: buyer, resource, bids, bidders, winners, prices."""
    df = tendered(df)
    if df.empty or "round" not in df:
        return pd.DataFrame(), None
    latest = int(df["round"].max())
    d = df[df["round"] == latest]
    names = names_of(model)
    offers = getattr(model, "offers", None)
    by_res = getattr(offers, "by_resource", {}) or {}
    provider_of_offer = np.asarray(offers.provider) if offers is not None else np.zeros(0, dtype=np.int64)
    # plain arrays and one dict of row lists: a pandas groupby costs a millisecond a group
    cols = {c: d[c].to_numpy() for c in ("buyer_name", "resource", "provider_name", "winning_bid", "second_bid",
                                         "n_bids", "capacity", "mechanism") if c in d}
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(cols["buyer_name"], cols["resource"])):
        groups.setdefault((str(key[0]), int(key[1])), []).append(i)
    bulk_of = dict(zip(pd.unique(cols["resource"]).tolist(), _bulk_of(model, pd.unique(cols["resource"])).tolist()))
    rows = []
    for (buyer, res), idx in sorted(groups.items()):
        bulk = bool(bulk_of.get(res, False))
        winners = list(dict.fromkeys(str(p) for p in cols["provider_name"][idx]))
        bidder_ids = list(dict.fromkeys(provider_of_offer[by_res[res]].tolist())) if res in by_res else []
        won = set(winners)
        listed = [f"{b} ✓" if b in won else b for b in (names.get(p, str(p)) for p in bidder_ids)] \
            or [f"{w} ✓" for w in winners]
        pay = cols["winning_bid"][idx].astype(float)
        second = cols["second_bid"][idx].astype(float)
        n_bids = int(cols["n_bids"][idx].max()) if "n_bids" in cols else len(bidder_ids)
        sec = float(np.nanmin(second)) if np.isfinite(second).any() else float("nan")
        best = float(pay.min())
        spread = (sec - best) / best if np.isfinite(sec) and best > 0 else float("nan")
        mech = str(cols["mechanism"][idx[0]]) if "mechanism" in cols else ""
        won_qty = float(cols["capacity"][idx].sum())
        rows.append({
            "Buyer": buyer,
            "Resource": resource_label(model, res),
            "Format": mechanism_label(mech),
            "Bids": n_bids,
            "Price paid": " / ".join(_price(p, bulk) for p in sorted(set(np.round(pay, 4)))),
            "Next best": _price(sec, bulk),
            "Spread": style.fmt_pct(spread, 0),
            "Won": f"{style.fmt_num(won_qty / (1000 if bulk else 1), 1 if bulk else 0)}" + (" t" if bulk else " /day"),
            "Bidders (✓ won)": ", ".join(listed),
        })
    out = pd.DataFrame(rows)
    if not out.empty and out["Format"].nunique() == 1:
        out = out.drop(columns="Format")  # one format for the whole round: said above the table
    out.index = pd.RangeIndex(1, len(out) + 1)
    return out, latest


def contracts_table(model, df: pd.DataFrame, which: str = "Active", buyer: str = "All buyers") -> pd.DataFrame:
    """The contracts as a readable table (formatted strings), newest first."""
    if df.empty:
        return pd.DataFrame()
    d = df
    if which == "Active" and "status" in d:
        d = d[d["status"].astype(str) == "active"]
    elif which == "Latest round" and "round" in d:
        d = d[d["round"] == d["round"].max()]
    if buyer != "All buyers" and "buyer_name" in d:
        d = d[d["buyer_name"].astype(str) == buyer]
    d = d.sort_values(["start", "contract_id"], ascending=[False, True]) if "start" in d else d
    bulk = _bulk_of(model, d["resource"]) if "resource" in d else np.zeros(len(d), dtype=bool)
    labels = {int(r): resource_label(model, r) for r in pd.unique(d["resource"])} if "resource" in d else {}

    def rate(row, is_bulk):
        if is_bulk:
            return f"${row.get('rate_kg', 0) * 1000:,.0f} /t" if row.get("rate_kg", 0) else \
                f"${row.get('rate_shipment', 0):,.0f} /shipment"
        parts = []
        if row.get("rate_parcel", 0):
            parts.append(f"${row['rate_parcel']:,.2f}/parcel")
        if row.get("rate_kg", 0):
            parts.append(f"${row['rate_kg']:,.2f}/kg")
        if row.get("rate_storage", 0):
            parts.append(f"${row['rate_storage']:,.3f}/unit-day")
        return " + ".join(parts) or "–"

    out = pd.DataFrame({
        "Buyer": d.get("buyer_name", d.get("buyer")).astype(str).to_numpy(),
        "Provider": d.get("provider_name", d.get("provider")).astype(str).to_numpy(),
        "Resource": [labels[int(r)] for r in d.get("resource", [])],
        "Format": [mechanism_label(m) for m in d.get("mechanism", [""] * len(d))],
        "Rate": [rate(r, b) for r, b in zip(d.to_dict("records"), bulk)],
        "Capacity": [f"{c / 1000:,.1f} t" if b else f"{c:,.0f} /day" for c, b in zip(d.get("capacity", []), bulk)],
        "Term": [f"{_date(model, s)} – " + ("open" if e >= OPEN_ENDED else _date(model, e))
                 for s, e in zip(d.get("start", []), d.get("end", []))],
        "Status": d.get("status", pd.Series([""] * len(d))).astype(str).to_numpy(),
        "Executed": [f"{x / 1000:,.1f} t" if b else f"{x:,.0f}" for x, b in zip(d.get("executed", [0] * len(d)), bulk)],
        "Late legs": d.get("late", pd.Series([0] * len(d))).astype(int).to_numpy(),
        "Penalties": [style.fmt_usd(x) for x in d.get("penalties_usd", [0.0] * len(d))],
    })
    out.index = pd.Index(d["contract_id"].astype(int).to_numpy() if "contract_id" in d else np.arange(len(d)))
    if not out.empty and out["Format"].nunique() == 1:
        out = out.drop(columns="Format")
    return out


def currency_table(model) -> pd.DataFrame:
    """Each market currency's rate against the USD on day 0 and today, and the change of its value."""
    cols = series(model)
    rows = []
    for key in sorted(k for k in cols if k.startswith("rate_") and len(k) == 8 and k[5:].isupper()):
        values = cols[key]
        if not values:
            continue
        first, last = float(values[0]), float(values[-1])
        rows.append({"currency": key[5:], "per USD, day 0": round(first, 4), "per USD, today": round(last, 4),
                     "value vs USD since day 0": f"{first / last - 1:+.1%}"})
    return pd.DataFrame(rows)


def returns_table(model) -> pd.DataFrame:
    """Returns opened so far, by market: how many, what became of them, and their money (USD)."""
    returns = getattr(model, "returns", None)
    table = getattr(returns, "table", None)
    if table is None:
        return pd.DataFrame()
    from market.goods.returns import IN_TRANSIT, STATUS_NAMES

    status = table.column("status")
    opened = status >= IN_TRANSIT  # scheduled ones: the consumer has not sent them yet
    if not opened.any():
        return pd.DataFrame()
    market = table.column("market")[opened]
    status = status[opened]
    frame = pd.DataFrame({"market": [model.world.markets[m] for m in market],
                          "status": [STATUS_NAMES[x] for x in status]})
    for money in ("refund", "freight", "recovered", "drawback"):
        frame[money] = table.column(f"{money}_cents")[opened] / 100.0
    out = frame.groupby("market").agg(returns=("status", "size"), refunds_usd=("refund", "sum"),
                                      freight_usd=("freight", "sum"), recovered_usd=("recovered", "sum"),
                                      drawback_usd=("drawback", "sum"))
    counts = pd.crosstab(frame["market"], frame["status"])
    out = out.join(counts).reset_index()
    for c in ("refunds_usd", "freight_usd", "recovered_usd", "drawback_usd"):
        out[c] = out[c].round(2)
    return out


@solara.component
def MarketView(model, day: int | None = None):
    """The latest tenders and the contract book, with filters."""
    which, set_which = solara.use_state("Active")
    buyer, set_buyer = solara.use_state("All buyers")
    steps = int(getattr(model, "steps", 0) if day is None else day)

    def build():
        df = contracts_frame(model)
        tenders, latest = tenders_table(model, df)
        return df, tenders, latest

    df, tenders, latest = solara.use_memo(build, dependencies=[model, steps])
    cfg = getattr(getattr(model, "config", None), "market", None)
    interval = int(getattr(cfg, "tender_interval_days", 0) or 0)

    with solara.Column(classes=["fourpl-market"], gap="12px"):
        with solara.Row(gap="10px", style={"flex-wrap": "wrap"}):
            Kpi("Active contracts", style.fmt_int(column(model, "active_contracts", 0)), "signed in tenders")
            t = tendered(df)
            Kpi("Signed in tenders", style.fmt_int(len(t)), f"in {t['round'].nunique() if not t.empty else 0} round(s)")
            if not df.empty and "service" in df:
                e2e = df[(df["service"].astype(str) == "end_to_end") & (df["status"].astype(str) == "active")]
                if len(e2e):
                    Kpi("4PL services", style.fmt_int(len(e2e)), "merchant markets served end to end")
            Kpi("Spot share of legs", style.fmt_pct(column(model, "spot_share_of_legs")) if steps else "–",
                "legs bought on the spot market today")
            Kpi("Tender format", mechanism_label(getattr(cfg, "auction", "–")),
                f"a round every {interval} days" if interval else "")
            if steps and interval:
                nxt = ((steps - 1) // interval + 1) * interval
                Kpi("Next round", _date(model, nxt), f"day {nxt + 1}")

        if latest is None:
            title, sub = "Latest tenders", "No tender round yet: the first runs on day 1 (press Step)"
        else:
            title = f"Latest tenders: round of {_date(model, latest)} (day {latest + 1})"
            n_awarded = int((tendered(df)["round"] == latest).sum())
            sub = (f"{len(tenders)} tenders, {n_awarded} contracts awarded. Price paid and next best bid per "
                   "parcel (1 kg) or per tonne on bulk lanes.")
        with solara.Card(title, subtitle=sub, classes=["fourpl-card", "fourpl-tenders"]):
            if not tenders.empty:
                solara.DataFrame(tenders, items_per_page=10, scrollable=True)

        fx, rt = currency_table(model), returns_table(model)
        if not fx.empty or not rt.empty:
            with solara.ColumnsResponsive(12, large=[5, 7]):
                _table_card("Currencies", "each market's currency against the USD (shocks move it)",
                            "fourpl-currencies", fx, "No rates recorded yet.")
                _table_card("Returns by market", "opened so far, what became of them, and their money",
                            "fourpl-returns", rt, "No returns opened yet.")

        buyers = ["All buyers"] + (sorted(df["buyer_name"].astype(str).unique()) if not df.empty else [])
        with solara.Card("Contracts", subtitle="rate, committed capacity, term and how each has performed",
                         classes=["fourpl-card", "fourpl-contracts"]):
            with solara.Row(gap="16px"):
                solara.Select("Show", values=list(STATUS_CHOICES), value=which, on_value=set_which,
                              style={"max-width": "220px"})
                solara.Select("Buyer", values=buyers, value=buyer if buyer in buyers else "All buyers",
                              on_value=set_buyer, style={"max-width": "260px"})
            table = contracts_table(model, df, which, buyer if buyer in buyers else "All buyers")
            if table.empty:
                solara.Text("No contracts to show.", style={"color": style.MUTED})
            else:
                solara.Text(f"{len(table):,} contract(s)", style={"color": style.MUTED, "font-size": "0.85em"})
                solara.DataFrame(table, items_per_page=12, scrollable=True)


def _table_card(title: str, subtitle: str, css: str, table, empty: str):
    """A card holding a short table, or a line saying there is nothing yet."""
    with solara.Card(title, subtitle=subtitle, classes=["fourpl-card", css]):
        if table.empty:
            solara.Text(empty, style={"color": style.MUTED})
        else:
            solara.DataFrame(table, items_per_page=6, scrollable=True)
