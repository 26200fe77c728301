"""The agent inspector: pick a merchant, a provider or an integrator and see how it is doing.

Its cash and profit over time, its volume a day (and utilisation for providers), its
reputation, its profit and loss by ledger item, what it decides (a merchant's channel and
provider per market, a provider's offers and markups, an integrator's markup and share) and
its contracts. The history comes from :class:`viz.state.History`, recorded every day the
model steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import solara

from viz import charts, style
from viz.components.kpis import Kpi
from viz.components.market_view import contracts_frame, contracts_table
from viz.state import ROLES, agents_of, column, history_for, resource_label

IMG_CLASS = "fourpl-agent-img"

LEDGER_LABELS = {
    "sale": "Sales", "refund": "Refunds to consumers", "goods": "Goods bought", "freight": "Freight",
    "handling": "Warehouse handling", "storage": "Storage", "brokerage": "Customs brokerage", "duty": "Duty and VAT",
    "customs_fee": "Customs fees", "service_fee": "4PL service fees", "operating_cost": "Operating cost",
    "fixed_cost": "Fixed cost of capacity", "penalty": "Late penalties", "service_credit": "Service credits",
    "claim": "Claims", "premium": "Insurance premiums", "insurance_payout": "Insurance payouts",
    "shortfall_fee": "Shortfall fees", "transaction_cost": "Contracting cost", "onboarding": "Switching cost",
    "dispute_cost": "Dispute cost", "market_cost": "Market costs",
}


def pnl_table(history, acct: int) -> pd.DataFrame:
    """An account's profit and loss by ledger item (money in, money out, USD), with the total."""
    items = history.pnl_by_kind(acct)
    if not items:
        return pd.DataFrame()
    rows = sorted(items.items(), key=lambda kv: (-kv[1]))
    total = sum(v for _, v in rows)
    data = [{"Item": LEDGER_LABELS.get(k, k.replace("_", " ").capitalize()),
             "Money in": style.fmt_usd(v) if v > 0 else "", "Money out": style.fmt_usd(-v) if v < 0 else ""}
            for k, v in rows]
    data.append({"Item": "Profit (loss)", "Money in": style.fmt_usd(total) if total >= 0 else "",
                 "Money out": style.fmt_usd(-total) if total < 0 else ""})
    out = pd.DataFrame(data)
    out.index = [""] * len(out)
    return out


def merchant_markets(model, mer) -> pd.DataFrame:
    """A merchant's choice in each of its markets: channel, who buys the logistics, warehouse,
    expected and seen delivery days, insurance."""
    mm = getattr(model, "mm", None)
    rows = np.asarray(getattr(mer, "rows", []), dtype=np.int64)
    if mm is None or rows.size == 0:
        return pd.DataFrame()
    w = model.world
    whs = list(getattr(model, "warehouse_nodes", []))
    out = []
    for r in rows:
        ch = int(mm.channel[r])
        it = int(mm.integrator[r])
        wh = int(mm.warehouse[r]) if hasattr(mm, "warehouse") else -1
        lead = float(mm.lead_ema[r]) if getattr(mm, "lead_n", None) is not None and mm.lead_n[r] > 0 else float("nan")
        out.append({
            "Market": w.markets[int(mm.market[r])],
            "Channel": style.channel_label(w.channels[ch]) if 0 <= ch < len(w.channels) else "not served",
            "Logistics by": model.integrators[it].name if 0 <= it < len(model.integrators) else "itself (DIY)",
            "Warehouse": w.graph.nodes[whs[wh]].get("name", whs[wh]).split(" (")[0] if 0 <= wh < len(whs) else "–",
            "Expected days": style.fmt_num(mm.expected_days[r]) if hasattr(mm, "expected_days") else "–",
            "Seen days": style.fmt_num(lead),
            "Insured": "yes" if getattr(mm, "insured", None) is not None and bool(mm.insured[r]) else "no",
        })
    out = pd.DataFrame(out)
    out.index = [""] * len(out)
    return out


def provider_offers(model, prov) -> pd.DataFrame:
    """A provider's offers: resource, capacity and use today (parcels, or kg on bulk lanes),
    utilisation, markup, whether still in the market."""
    o = getattr(model, "offers", None)
    ids = np.asarray(getattr(prov, "offer_ids", []), dtype=np.int64)
    if o is None or ids.size == 0:
        return pd.DataFrame()
    bulk = np.asarray(model.net.res_bulk)[np.asarray(o.resource)[ids]]
    out = []
    for i, b in zip(ids, bulk):
        cap, used = float(o.capacity[i]), float(o.used_today[i])
        unit = " kg" if b else ""
        out.append({
            "Resource": resource_label(model, int(o.resource[i])),
            "Capacity / day": f"{cap:,.0f}{unit}",
            "Used today": f"{used:,.0f}{unit}",
            "Utilisation": style.fmt_pct(used / cap, 0) if cap > 0 else "–",
            "Markup": style.fmt_pct(float(o.markup[i]), 1),
            "In market": "yes" if bool(np.asarray(getattr(o, "active", np.ones(o.n, bool)))[i]) else "no",
        })
    out = pd.DataFrame(out)
    out.index = [""] * len(out)
    return out


def visibility_table(agent) -> pd.DataFrame:
    """An integrator's tracking figures (``Integrator.visibility()``) as figure / value rows."""
    rows = []
    for key, value in agent.visibility().items():
        if isinstance(value, dict):
            rows.extend({"figure": f"{key} {k}".replace("_", " "), "value": v} for k, v in value.items())
        else:
            rows.append({"figure": key.replace("_", " "), "value": value})
    frame = pd.DataFrame(rows)
    frame["value"] = frame["value"].map(lambda v: f"{v:,.4g}" if isinstance(v, float) else str(v))
    return frame


def _series(history, uid, field):
    return history.of(uid, field) if history is not None else np.zeros(0)


def agent_chart_png(model, agent) -> bytes:
    """The agent's history chart (cash, profit, volume, reputation) as PNG bytes."""
    h = history_for(model)
    uid = agent.unique_id
    util = _series(h, uid, "utilisation")
    return charts.png(charts.chart_agent(
        h.dates, _series(h, uid, "cash"), _series(h, uid, "pnl"), _series(h, uid, "volume"),
        _series(h, uid, "volume_kg"), _series(h, uid, "reputation"), util, role=getattr(agent, "role", "")))


@solara.component
def AgentInspector(model, day: int | None = None):
    """Pick a role and an agent; see its history, profit and loss, decisions and contracts."""
    roles = [r for r in ROLES if agents_of(model, r)]
    role, set_role = solara.use_state("merchant" if "merchant" in roles else (roles[0] if roles else ""))
    name, set_name = solara.use_state("")
    steps = int(getattr(model, "steps", 0) if day is None else day)
    if role not in roles and roles:
        role = roles[0]
    agents = agents_of(model, role) if roles else []
    by_name = {a.name: a for a in agents}
    names = list(by_name)
    agent = by_name.get(name) or (agents[0] if agents else None)
    image = solara.use_memo(lambda: agent_chart_png(model, agent) if agent is not None else b"",
                            dependencies=[model, steps, getattr(agent, "unique_id", None)])
    if agent is None:
        solara.Info("This model has no agents to inspect.")
        return

    def pick_role(label: str):
        r = next((k for k in roles if style.ROLE_LABELS.get(k, k) == label), roles[0])
        set_role(r)
        set_name(agents_of(model, r)[0].name)

    h = history_for(model)
    uid = agent.unique_id
    cash = getattr(agent, "cash", float("nan"))
    pnl = h.of(uid, "pnl")
    profit = float(np.nansum(pnl)) if pnl.size else float("nan")
    vol = h.of(uid, "volume")
    rep = h.of(uid, "reputation")
    acct = getattr(agent, "acct", -1)

    with solara.Column(classes=["fourpl-inspector"], gap="12px"):
        with solara.Row(gap="16px", style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Select("Kind of agent", values=[style.ROLE_LABELS.get(r, r) for r in roles],
                          value=style.ROLE_LABELS.get(role, role), on_value=pick_role, style={"max-width": "240px"})
            solara.Select("Agent", values=names, value=agent.name, on_value=set_name, style={"max-width": "280px"})
            group = getattr(agent, "group", "")
            extra = []
            if group:
                extra.append(f"group {group}")
            if getattr(agent, "origin", None):
                extra.append(f"sells from {model.world.graph.nodes[agent.origin].get('name', agent.origin)}")
            if hasattr(agent, "in_market") and not agent.in_market:
                extra.append("has left the market")
            if extra:
                solara.Text(" · ".join(extra), style={"color": style.MUTED})
        with solara.Row(gap="10px", style={"flex-wrap": "wrap"}):
            Kpi("Cash", style.fmt_usd(cash), "ledger balance now")
            Kpi("Profit since day 0", style.fmt_usd(profit), "all money in less money out")
            Kpi("Volume today", style.fmt_int(vol[-1]) if vol.size and steps else "–",
                "parcels" if role in ("merchant", "integrator") else "parcels or entries served")
            Kpi("Reputation", style.fmt_num(rep[-1], 3) if rep.size and np.isfinite(rep[-1]) else "–",
                "0 (poor) to 1 (excellent)")
            if role not in ("merchant", "integrator"):
                util = h.of(uid, "utilisation")
                Kpi("Utilisation", style.fmt_pct(util[-1], 0) if util.size and steps else "–", "of its parcel capacity")
            if role == "integrator":
                Kpi("Markup", style.fmt_pct(getattr(agent, "markup", float("nan"))), "on its expected cost")
                Kpi("Share today", style.fmt_pct(column(model, f"share_{agent.name}")) if steps else "–",
                    "of parcels created")
            if role == "merchant":
                Kpi("Switches", style.fmt_int(getattr(agent, "switches", 0)), "channel or provider changes")
            coverage = getattr(agent, "tracking_coverage", None)
            if coverage is not None and np.isfinite(coverage):
                Kpi("Tracking coverage", style.fmt_pct(coverage, 0),
                    "of its parcels' legs seen" if role == "integrator" else
                    f"of its legs' events recorded ({getattr(agent, 'tracking_class', '')})")
            if role == "integrator":
                Kpi("Control tower", "yes" if getattr(agent, "control_tower", False) else "no",
                    "sees every recorded event the same day")

        with solara.ColumnsResponsive(12, large=[7, 5]):
            with solara.Card(f"{agent.name} over time", subtitle="cash and the day's profit, volume a day, reputation",
                             classes=["fourpl-card"]):
                solara.Image(image, width="100%", classes=[IMG_CLASS])
            with solara.Column(gap="12px"):
                with solara.Card("Profit and loss", subtitle="since day 0, by ledger item (starting capital left out)",
                                 classes=["fourpl-card"]):
                    table = pnl_table(h, acct)
                    if table.empty:
                        solara.Text("No money has moved yet.", style={"color": style.MUTED})
                    else:
                        solara.DataFrame(table, items_per_page=25)
                if role == "merchant":
                    with solara.Card("Markets and choices", subtitle="channel and logistics provider per market",
                                     classes=["fourpl-card"]):
                        t = merchant_markets(model, agent)
                        if not t.empty:
                            solara.DataFrame(t, items_per_page=10, scrollable=True)
                elif role == "integrator" and hasattr(agent, "visibility"):
                    with solara.Card("Visibility and after-sales", subtitle="what tracking let it see and do",
                                     classes=["fourpl-card", "fourpl-visibility"]):
                        solara.DataFrame(visibility_table(agent), items_per_page=20, scrollable=True)
                elif role != "integrator":
                    with solara.Card("Offers", subtitle="capacity, use today and markup on each resource",
                                     classes=["fourpl-card"]):
                        t = provider_offers(model, agent)
                        if not t.empty:
                            solara.DataFrame(t, items_per_page=8, scrollable=True)

        df = contracts_frame(model)
        if not df.empty:
            mine = df[(df.get("buyer") == uid) | (df.get("provider") == uid)]
            if "sub_provider" in df:
                mine = df[(df["buyer"] == uid) | (df["provider"] == uid) | (df["sub_provider"] == uid)]
        else:
            mine = df
        with solara.Card(f"Contracts of {agent.name}", subtitle="as buyer or as provider, newest first",
                         classes=["fourpl-card"]):
            t = contracts_table(model, mine, "All") if not mine.empty else pd.DataFrame()
            if t.empty:
                solara.Text("No contracts.", style={"color": style.MUTED})
            else:
                solara.DataFrame(t, items_per_page=10, scrollable=True)
