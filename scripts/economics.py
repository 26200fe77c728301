"""The market's economics from a `fourpl run` folder, recomputed from its output files.

    .venv/bin/python scripts/economics.py results/baseline [more run folders ...]

For each folder: mean utilisation per mode (daily series), each provider role's operating
margin (revenue and costs summed per provider from ledger.parquet; the median over providers
and the margin of the role as a whole), exits and entries per month, spot over contract price
per mode (lane by lane, from the summary's prices), the 4PL share and the mean logistics cost.
Figures come from the files, not from the model's own totals, so they can be compared across
commits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REVENUE = ("freight", "handling", "storage", "brokerage", "shortfall_fee", "service_fee")
COSTS = ("operating_cost", "fixed_cost", "penalty", "claim", "service_credit", "dispute_cost",
         "freight", "handling", "brokerage", "premium", "insurance_payout")
PROVIDER_ROLES = ("carrier", "warehouse_operator", "customs_agent", "integrator")


def margins(folder: Path) -> pd.DataFrame:
    """Revenue, cost and operating margin per provider and integrator (from the journal)."""
    ledger = pd.read_parquet(folder / "ledger.parquet")
    agents = pd.read_parquet(folder / "agents.parquet")
    agents = agents[agents["type"].isin(PROVIDER_ROLES)]
    rows = []
    for _, a in agents.iterrows():
        received = ledger[(ledger["payee"] == a["account"]) & ledger["kind"].isin(REVENUE)]["amount_usd"].sum()
        paid = ledger[(ledger["payer"] == a["account"]) & ledger["kind"].isin(COSTS)]["amount_usd"].sum()
        rows.append({"name": a["name"], "role": a["type"], "group": a["group"], "revenue": received,
                     "cost": paid, "margin": (received - paid) / received if received > 0 else np.nan})
    return pd.DataFrame(rows)


def figures(folder: Path) -> dict:
    """The closing note's figures for one run folder."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    ts = pd.read_parquet(folder / "timeseries.parquet")
    util = {c.removeprefix("utilisation_"): round(float(ts[c].mean()), 3)
            for c in ts.columns if c.startswith("utilisation_")}
    m = margins(folder)
    by_role = {}
    for role, g in m.groupby("role"):
        total_rev = g["revenue"].sum()
        by_role[role] = {"providers": len(g), "median_margin": round(float(g["margin"].median()), 3),
                         "role_margin": round(float((total_rev - g["cost"].sum()) / total_rev), 3) if total_rev else None,
                         "share_with_loss": round(float((g["revenue"] < g["cost"]).mean()), 3)}
    month = pd.to_datetime(ts["date"]).dt.to_period("M").astype(str)
    churn = ts.groupby(month)[["exits", "entries"]].sum()
    # lane by lane (a mode's mean spot over its mean contract price mixes lanes that differ
    # several-fold in price); runs written before it was recorded: the mode's mean prices
    ratio = {}
    for mode, p in summary["prices_by_mode"].items():
        if "spot_over_contract_same_lane" in p:
            r = p["spot_over_contract_same_lane"]
        else:
            r = p["spot"] / p["contract"] if p.get("contract") and p.get("spot") else None
        if r is not None:
            ratio[mode] = round(r, 3)
    return {"folder": str(folder), "parcels": summary["parcels_created"], "fourpl_share": summary["fourpl_share"],
            "mean_logistics_cost": summary["mean_logistics_cost"], "on_time_rate": summary["on_time_rate"],
            "utilisation_by_mode": util, "margins_by_role": by_role,
            "exits_by_month": {k: int(v) for k, v in churn["exits"].items() if v},
            "entries_by_month": {k: int(v) for k, v in churn["entries"].items() if v},
            "spot_over_contract_by_mode": ratio,
            "express_days": summary["by_channel"].get("express", {}).get("mean_lead_time_days"),
            "express_on_time": summary["by_channel"].get("express", {}).get("on_time_rate")}


def main(argv=None) -> int:
    folders = (argv if argv is not None else sys.argv[1:])
    if not folders:
        print(__doc__)
        return 2
    for f in folders:
        print(json.dumps(figures(Path(f)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
