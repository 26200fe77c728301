"""Returns (market/goods/returns.py) checked from the output files of real runs: return rates
by category against the configured rates, returned goods and money conserved, each return's
disposition recomputed, and paired-seed experiments: more apparel, later deliveries and
warehouse channels each move returns the way they should, and returns move merchants towards
warehouse channels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SMALL = {"merchants.exporters": 8, "merchants.importers": 3}
SEEDS = (1, 2, 3)
DAYS = 90
FINISHED = ("resold", "liquidated", "scrapped", "back_at_origin")
OUTCOME = {"resell": "resold", "liquidate": "liquidated", "scrap": "scrapped", "ship_back": "back_at_origin"}


def read(run, name, columns=None) -> pd.DataFrame:
    return pd.read_parquet(run.out / f"{name}.parquet", columns=columns)


def summary(run) -> dict:
    return json.loads((run.out / "summary.json").read_text())


def cents(usd) -> np.ndarray:
    return np.rint(np.asarray(usd, dtype=np.float64) * 100).astype(np.int64)


def delivered_with_returns(run) -> pd.DataFrame:
    """Delivered parcels from parcels.parquet, with whether each was returned (returns.parquet)."""
    p = read(run, "parcels", ["parcel_id", "status", "category", "channel", "damaged", "finished_day",
                               "lead_time_days", "promised_days", "sale_usd"])
    p = p[p["status"].astype(str) == "delivered"].copy()
    r = read(run, "returns", ["parcel_id"])
    p["returned"] = p["parcel_id"].isin(r["parcel_id"])
    p["late"] = p["lead_time_days"] > p["promised_days"]
    p["category"] = p["category"].astype(str)
    p["channel"] = p["channel"].astype(str)
    return p


def paired(values_a, values_b) -> tuple[float, float]:
    """Mean and standard error of the paired differences b - a."""
    d = np.asarray(values_b, dtype=float) - np.asarray(values_a, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


# ------------------------------------------------------------------ rates
def test_return_rates_by_category_match_the_configured_rates(baseline_run):
    """Over parcels delivered intact whose return window closed inside the run, each category's
    returns are the sum of its parcels' probabilities (the category's rate, raised for late ones)
    within three binomial standard deviations; damaged parcels (refunded already) never return."""
    cfg = baseline_run.model.config.returns
    days = summary(baseline_run)["days"]
    p = delivered_with_returns(baseline_run)
    assert not p.loc[p["damaged"] > 0, "returned"].any()
    window_closed = (p["damaged"] == 0) & (p["finished_day"] + cfg.window_days <= days - 1)
    q = p[window_closed]
    rate = q["category"].map({c: cfg.rate_of(c) for c in q["category"].unique()}).to_numpy()
    prob = np.minimum(rate * np.where(q["late"], 1.0 + cfg.late_uplift, 1.0), 1.0)
    assert q["category"].nunique() == 5
    for cat in q["category"].unique():
        sel = (q["category"] == cat).to_numpy()
        observed = int(q["returned"].to_numpy()[sel].sum())
        expected = prob[sel].sum()
        sd = np.sqrt((prob[sel] * (1 - prob[sel])).sum())
        assert abs(observed - expected) < 3 * sd, (cat, observed, expected, sd)
    by_cat = q.groupby("category")["returned"].mean()
    assert by_cat["apparel"] > 2 * by_cat["electronics"]


def test_late_parcels_are_returned_more_often_within_a_category(baseline_run):
    """Within each category, late parcels come back about (1 + late_uplift) times as often as
    parcels delivered on time (pooled over categories, by more than two standard errors)."""
    cfg = baseline_run.model.config.returns
    days = summary(baseline_run)["days"]
    p = delivered_with_returns(baseline_run)
    q = p[(p["damaged"] == 0) & (p["finished_day"] + cfg.window_days <= days - 1)]
    diffs, variances = [], []
    for _, g in q.groupby("category"):
        late, on_time = g.loc[g["late"], "returned"], g.loc[~g["late"], "returned"]
        if len(late) < 200:
            continue
        diffs.append((late.mean() - on_time.mean()) * len(g))
        variances.append((late.var() / len(late) + on_time.var() / len(on_time)) * len(g) ** 2)
    assert diffs
    assert sum(diffs) > 2 * np.sqrt(sum(variances))


# ------------------------------------------------------------------ conservation
def test_returned_goods_are_conserved(baseline_run):
    """From the files: each return is one delivered, intact parcel, opened within the window;
    sold = kept + returned; returned = resold + liquidated + scrapped + back at origin + in
    transit back; the daily series recount the returns' days."""
    run = baseline_run
    s = summary(run)
    days, units = s["days"], s["returns"]["units"]
    cfg = run.model.config.returns
    p = read(run, "parcels", ["parcel_id", "status", "damaged", "finished_day", "sale_usd"])
    r = read(run, "returns")
    assert len(r) > 1000 and r["parcel_id"].is_unique
    m = r.merge(p, on="parcel_id", how="left", validate="one_to_one")
    assert (m["status_y"].astype(str) == "delivered").all() and (m["damaged"] == 0).all()
    assert (m["delivered_day"] == m["finished_day"]).all()
    lag = m["opened_day"] - m["delivered_day"]
    assert lag.between(1, cfg.window_days).all() and (m["opened_day"] <= days - 1).all()
    # the consumer gets back what it paid
    assert (cents(m["refund_usd"]) == cents(m["sale_usd"])).all()

    sold = int((p["status"].astype(str) == "delivered").sum())
    status = r["status"].astype(str)
    assert units["sold"] == sold == units["kept"] + units["returned"]
    assert units["returned"] == len(r)
    for name in FINISHED:
        assert units[name] == int((status == name).sum()), name
    assert units["in_transit_back"] == int((status == "in_transit").sum())
    assert len(r) == sum(units[n] for n in FINISHED) + units["in_transit_back"]
    assert set(status) <= set(FINISHED) | {"in_transit"}
    # finished returns ended where their disposition sends them, on their arrival day
    done = status != "in_transit"
    assert (status[done] == r.loc[done, "disposition"].astype(str).map(OUTCOME)).all()
    assert (r.loc[done, "done_day"] == r.loc[done, "arrive_day"]).all()
    assert (r.loc[done, "done_day"] <= days - 1).all()
    assert (r.loc[~done, "done_day"] == -1).all() and (r.loc[~done, "arrive_day"] > days - 1).all()
    assert (r["arrive_day"] == r["opened_day"] + r["leg1_days"] + r["leg2_days"]).all()

    ts = read(run, "timeseries")
    opened = np.bincount(r["opened_day"], minlength=days)
    assert (ts["returns_opened"].to_numpy() == opened).all()
    finished = np.bincount(r.loc[done, "done_day"], minlength=days)
    for name in FINISHED:
        want = np.bincount(r.loc[status == name, "done_day"], minlength=days)
        assert (ts[f"returns_{name}"].to_numpy() == want).all(), name
    assert (ts["returns_in_transit_back"].to_numpy() == np.cumsum(opened) - np.cumsum(finished)).all()


def test_return_money_is_in_the_ledger(baseline_run):
    """Every kind of return money in ledger.parquet is the sum of the returns' rows, paid by
    and to the right parties; the summary says the same."""
    run = baseline_run
    r = read(run, "returns")
    j = read(run, "ledger")
    s = summary(run)["returns"]["money_usd"]

    def total(kind, payer=None, payee=None):
        sel = j["kind"] == kind
        if payer is not None:
            sel &= j["payer_name"] == payer
        if payee is not None:
            sel &= j["payee_name"] == payee
        return int(j.loc[sel, "amount_cents"].sum())
    refund, freight = cents(r["refund_usd"]).sum(), cents(r["freight_usd"]).sum()
    assert total("return_refund") == total("return_refund", payee="consumers") == refund > 0
    assert total("return_freight") == freight > 0
    assert total("restocking") == cents(r["restocking_usd"]).sum() > 0
    assert total("scrapping") == cents(r["scrap_usd"]).sum()
    assert total("resale") + total("liquidation") == cents(r["recovered_usd"]).sum() > 0
    disp = r["disposition"].astype(str)
    assert total("liquidation") == cents(r.loc[disp == "liquidate", "recovered_usd"]).sum()
    assert total("resale", payer="goods suppliers") == cents(r.loc[disp == "ship_back", "recovered_usd"]).sum()
    assert total("drawback") == cents(r["drawback_usd"]).sum()
    assert j.loc[j["kind"] == "drawback", "payer_name"].str.startswith("customs authority").all()
    assert s["refunds"] == pytest.approx(refund / 100) and s["return_freight"] == pytest.approx(freight / 100)
    # merchants pay and receive all of it
    merchant_side = np.where(j["kind"].isin(["return_refund", "return_freight", "restocking", "scrapping"]),
                             j["payer_name"], j["payee_name"])
    kinds = j["kind"].isin(["return_refund", "return_freight", "restocking", "scrapping", "resale",
                            "liquidation", "drawback"])
    assert pd.Series(merchant_side[kinds.to_numpy()]).str.startswith("merchant:").all()


def test_each_return_takes_the_disposition_that_recovers_most(baseline_run):
    """Each return's disposition, recomputed from its row and the scenario: the feasible one
    with the highest recovered value net of its costs (resale only where the merchant had a
    warehouse for the market; a border warehouse and shipping back across a border pay the
    cross-border freight; drawback only out of markets that grant it)."""
    run = baseline_run
    cfg = run.model.config.returns
    world = run.model.world
    r = read(run, "returns")
    market = r["market"].astype(str)
    market_terr = market.map({m: world.graph.nodes[world.spec.markets[m].node]["territory"] for m in world.markets})
    w = r["weight"].to_numpy(dtype=float)
    v = r["value"].to_numpy(dtype=float)
    local = cfg.local_freight_parcel + cfg.local_freight_kg * w
    across = cfg.ship_back_parcel + cfg.ship_back_kg * w
    has_wh = r["warehouse"].notna().to_numpy()
    border_nodes = [n for n in world.graph.nodes if world.graph.nodes[n].get("warehouse") == "border"]
    border = r["warehouse"].isin(border_nodes).to_numpy()
    abroad = (r["origin_territory"].astype(str) != market_terr).to_numpy()
    drawback = abroad & market.isin(cfg.drawback_markets).to_numpy()
    net = np.column_stack([
        np.where(has_wh, cfg.resale_share * v - local - np.where(border, across, 0) - cfg.restocking_cost, -np.inf),
        cfg.liquidation_share * v - local,
        np.full(len(r), -cfg.scrap_cost),
        cfg.origin_recovery * r["goods_usd"].to_numpy() - local - np.where(abroad, across, 0)
        + np.where(drawback, cfg.drawback_share * r["duty_paid_usd"].to_numpy(), 0),
    ])
    names = np.array(["resell", "liquidate", "scrap", "ship_back"])
    chosen = r["disposition"].astype(str).to_numpy()
    best = net.max(axis=1)
    got = net[np.arange(len(r)), pd.Series(chosen).map({n: i for i, n in enumerate(names)}).to_numpy()]
    assert np.allclose(got, best, atol=0.02)      # ties within a cent of rounding
    # a direct channel without a warehouse never resells
    assert not ((~has_wh) & (chosen == "resell")).any()
    # the money of finished returns is what their disposition costs and recovers
    done = r["status"].astype(str) != "in_transit"
    d = r[done]
    dchosen = chosen[done.to_numpy()]
    assert np.allclose(d["freight_usd"], np.where(dchosen == "scrap", 0, local[done])
                       + np.where((dchosen == "ship_back") & abroad[done] | (dchosen == "resell") & border[done],
                                  across[done], 0), atol=0.006)
    assert np.allclose(d["drawback_usd"], np.where((dchosen == "ship_back") & drawback[done],
                                                   cfg.drawback_share * d["duty_paid_usd"], 0), atol=0.006)


# ------------------------------------------------------------------ paired experiments
def _small(simulate, seed, **overrides):
    return simulate("baseline", days=DAYS, seed=seed, **SMALL, **overrides)


def _return_rate(run) -> float:
    """Returns opened per parcel delivered intact before the last window, from the files."""
    cfg = run.model.config.returns
    p = delivered_with_returns(run)
    q = p[(p["damaged"] == 0) & (p["finished_day"] + cfg.window_days <= DAYS - 1)]
    return float(q["returned"].mean())


def _world_with_apparel(tmp_path_factory) -> Path:
    """The world file with Shenzhen's sellers selling apparel where they sold electronics."""
    from importlib import resources
    text = resources.files("market.data").joinpath("world.toml").read_text()
    old = "categories = { electronics = 0.6, toys = 0.2, home = 0.2 }"
    assert old in text
    path = tmp_path_factory.mktemp("apparel-world") / "world.toml"
    path.write_text(text.replace(old, "categories = { apparel = 0.6, toys = 0.2, home = 0.2 }"))
    return path


@pytest.mark.slow
def test_more_apparel_means_more_returns(simulate, tmp_path_factory):
    """Paired seeds: sellers of apparel instead of electronics return more of what they sell."""
    world = str(_world_with_apparel(tmp_path_factory))
    base = [_return_rate(_small(simulate, s)) for s in SEEDS]
    apparel = [_return_rate(_small(simulate, s, world=world)) for s in SEEDS]
    mean, se = paired(base, apparel)
    assert mean > 2 * se and mean > 0.01, (base, apparel)


@pytest.mark.slow
def test_later_deliveries_mean_more_returns(simulate):
    """Paired seeds: last-mile and air legs taking three times as long make more parcels late,
    and more of them come back."""
    slow = {"shocks": [{"name": "slow delivery", "kind": "transit", "day": 0, "factor": 3.0,
                        "modes": ["last_mile", "express_air", "postal"]}]}
    late_base, late_slow, base, slowed = [], [], [], []
    for s in SEEDS:
        a, b = _small(simulate, s), _small(simulate, s, **slow)
        late_base.append(delivered_with_returns(a)["late"].mean())
        late_slow.append(delivered_with_returns(b)["late"].mean())
        base.append(_return_rate(a))
        slowed.append(_return_rate(b))
    assert min(np.subtract(late_slow, late_base)) > 0.05, (late_base, late_slow)
    mean, se = paired(base, slowed)
    assert mean > 2 * se and mean > 0, (base, slowed)


WAREHOUSES = {"merchants.allowed_channels": ["overseas_warehouse", "border_warehouse", "bonded_warehouse"]}
DIRECT = {"merchants.allowed_channels": ["postal", "express", "dedicated_line"]}


def _net_recovery_share(run) -> float:
    """Value a return recovers net of its handling (resale, liquidation, origin recovery and
    drawback, less freight, restocking and scrapping), per USD of the returned goods' retail
    value, over finished returns."""
    r = read(run, "returns")
    r = r[r["status"].astype(str) != "in_transit"]
    net = r["recovered_usd"] + r["drawback_usd"] - r["freight_usd"] - r["restocking_usd"] - r["scrap_usd"]
    return float(net.sum() / r["value"].sum())


@pytest.mark.slow
def test_warehouse_channels_recover_more_per_return(simulate):
    """Paired seeds: merchants held to warehouse channels recover more of a return's value than
    merchants held to direct shipping (local resale against liquidation, scrapping or the
    trip home)."""
    wh = [_net_recovery_share(_small(simulate, s, **WAREHOUSES)) for s in SEEDS]
    direct = [_net_recovery_share(_small(simulate, s, **DIRECT)) for s in SEEDS]
    mean, se = paired(direct, wh)
    assert mean > 2 * se and mean > 0.1, (direct, wh)


@pytest.mark.slow
def test_returns_move_merchants_towards_warehouse_channels(simulate):
    """Paired seeds: with returns on, merchants weigh the refunds a channel cannot recover, and
    more parcels go by warehouse channels than with returns off.

    Six seeds, not three (issue 13): with visibility merged (consumers answer the spread of
    delivery days they can see) warehouse channels carry most parcels even with returns off,
    0.863 0.949 0.913 in seeds 1-3, so what returns can add is small and uneven (0.946 0.963
    0.928 with them: rises 0.083 0.014 0.015, mean 0.038 against 2 s.e. 0.046). Seen in seeds
    4-6: 0.968 0.925 0.887 -> 0.981 0.963 0.906 (rises 0.013 0.038 0.019); over seeds 1-6 the
    mean rise is 0.030, 2 s.e. 0.022, every seed rising."""
    def warehouse_share(run):
        by = summary(run)["by_channel"]
        wh = sum(by[c]["parcels_created"] for c in by if c.endswith("_warehouse"))
        return wh / sum(by[c]["parcels_created"] for c in by)
    seeds = SEEDS + (4, 5, 6)
    on = [warehouse_share(_small(simulate, s)) for s in seeds]
    off = [warehouse_share(_small(simulate, s, **{"returns.enabled": False})) for s in seeds]
    mean, se = paired(off, on)
    assert mean > 2 * se and mean > 0, (off, on)


def test_no_returns_when_switched_off(simulate):
    run = simulate("baseline", days=40, seed=1, **SMALL, **{"returns.enabled": False})
    s = summary(run)["returns"]
    assert s["units"]["returned"] == 0 and len(read(run, "returns")) == 0
    j = read(run, "ledger")
    assert not j["kind"].isin(["return_refund", "return_freight", "resale"]).any()


def test_merchants_expected_return_cost_is_the_return_rate_times_the_unrecovered_refund():
    """What merchants weigh per unit (Returns.expected_cost) is the rate, raised for the late
    share, times the refund less the best feasible disposition's net value, recomputed here
    from the scenario for every product, market and warehouse (or none)."""
    from market.model import Marketplace
    m = Marketplace("baseline", rng=5, **SMALL)
    cfg, world, ret = m.config.returns, m.world, m.returns
    prods = np.arange(m.prod_value.size)
    value, weight = m.prod_value, m.prod_weight
    goods = value * m.prod_cost_share
    refund = value * 1.2
    duty = value * 0.15
    local = cfg.local_freight_parcel + cfg.local_freight_kg * weight
    across = cfg.ship_back_parcel + cfg.ship_back_kg * weight
    rate = np.array([cfg.rate_of(world.categories[c]) for c in m.prod_category])
    checked = 0
    for k, market in enumerate(world.markets):
        terr = world.graph.nodes[world.spec.markets[market].node]["territory"]
        abroad = np.array([world.territories[t] != terr for t in m.prod_origin_territory])
        back = cfg.origin_recovery * goods - local - np.where(abroad, across, 0) \
            + np.where(abroad & (market in cfg.drawback_markets), cfg.drawback_share * duty, 0)
        for w in [-1] + list(range(len(m.warehouse_nodes))):
            options = [cfg.liquidation_share * value - local, np.full(value.size, -cfg.scrap_cost), back]
            if w >= 0:
                border = world.graph.nodes[m.warehouse_nodes[w]]["warehouse"] == "border"
                options.append(cfg.resale_share * value - local - cfg.restocking_cost - (across if border else 0))
            for on_time in (1.0, 0.6):
                want = np.minimum(rate * (1 + cfg.late_uplift * (1 - on_time)), 1) * (refund - np.max(options, axis=0))
                got = ret.expected_cost(prods, refund, duty, k, w, on_time)
                assert np.allclose(got, want), (market, w, on_time)
                # and the engine's own per-return values agree
                net = ret.net_values(value, weight, goods, duty, np.full(value.size, k), np.full(value.size, w),
                                     m.prod_origin_territory).max(axis=1)
                assert np.allclose(got, np.minimum(rate * (1 + cfg.late_uplift * (1 - on_time)), 1) * (refund - net))
                checked += 1
    assert checked == 2 * len(world.markets) * (len(m.warehouse_nodes) + 1)
    # several options at once (a row each, as merchants value them): the hand figures row by row
    for k, market in enumerate(world.markets):
        terr = world.graph.nodes[world.spec.markets[market].node]["territory"]
        abroad = np.array([world.territories[t] != terr for t in m.prod_origin_territory])
        whs = [-1] + list(range(len(m.warehouse_nodes)))
        rows = [(w, on_time, 1.0 + 0.1 * i) for i, (w, on_time) in enumerate((w, o) for w in whs for o in (1.0, 0.6, 0.2))]
        got = ret.expected_cost(prods, np.array([refund * f for *_, f in rows]), np.array([duty * f for *_, f in rows]),
                                k, np.array([w for w, *_ in rows]), np.array([o for _, o, _ in rows]))
        assert got.shape == (len(rows), prods.size)
        for i, (w, on_time, f) in enumerate(rows):
            back = cfg.origin_recovery * goods - local - np.where(abroad, across, 0) \
                + np.where(abroad & (market in cfg.drawback_markets), cfg.drawback_share * duty * f, 0)
            options = [cfg.liquidation_share * value - local, np.full(value.size, -cfg.scrap_cost), back]
            if w >= 0:
                border = world.graph.nodes[m.warehouse_nodes[w]]["warehouse"] == "border"
                options.append(cfg.resale_share * value - local - cfg.restocking_cost - (across if border else 0))
            want = np.minimum(rate * (1 + cfg.late_uplift * (1 - on_time)), 1) * (refund * f - np.max(options, axis=0))
            assert np.allclose(got[i], want), (market, w, on_time)
            assert (got[i] == ret.expected_cost(prods, refund * f, duty * f, k, w, on_time)).all()
    # a warehouse in the market makes returns cheaper for some products
    k = world.markets.index("US")
    us_wh = m.warehouse_nodes.index("us_wh")
    assert (ret.expected_cost(prods, refund, duty, k, us_wh, 1.0) < ret.expected_cost(prods, refund, duty, k, -1, 1.0)).any()


def test_returns_written_a_row_group_at_a_time_are_the_file_written_whole(tmp_path):
    """returns.parquet of a market-scale run is written a row group at a time, each group's
    rows read from the archived and live returns; the bytes are those of the whole table
    written with the same row groups, and its rows are the returns opened, by return id."""
    import pyarrow.parquet as pq

    from experiments.run import write_parquet_by_row_group
    from market import Marketplace
    from market.goods.returns import SCHEDULED

    model = Marketplace("baseline", rng=2)
    for _ in range(75):
        model.step()
    returns = model.returns
    assert returns.table.archive, "no finished returns archived yet: the test reads live rows only"
    opened = returns.opened_rows()
    ids = returns.table.column("return_id")
    status = returns.table.column("status")
    assert sorted(ids[status != SCHEDULED].tolist()) == ids[opened].tolist()
    group = max(opened.size // 6, 1)
    whole, grouped = tmp_path / "whole.parquet", tmp_path / "grouped.parquet"
    pq.write_table(returns.frame(), whole, row_group_size=group)
    write_parquet_by_row_group(lambda a, b: returns.frame(a, b, opened), opened.size, grouped, group_rows=group)
    assert grouped.read_bytes() == whole.read_bytes()
    assert pq.ParquetFile(grouped).num_row_groups == -(-opened.size // group) > 1
