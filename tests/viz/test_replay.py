"""Replaying a kept run folder (viz/replay.py, viz/components/replay_view.py) against its files.

Every expected value is recomputed here from the files with pyarrow, pandas and tomllib (never
through the functions tested): a lane's parcels a day (each leg k of a parcel is stage k of its
route; the route's stages from the world file the run's config.toml names), the contracts in
force a day, the providers that carried parcels, the day's headline figures; on a run with a
border closure, the lanes and the crossing the scenario's shock names.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from market.world import load_world
from viz import figures
from viz.replay import load_replay, replay_of
from viz.runs import LoadError, load_run

SHOCK_SCENARIO = Path(__file__).resolve().parents[2] / "experiments" / "scenarios" / "ru-border-closure.toml"


@pytest.fixture(scope="module")
def run_a(results_dirs):
    return results_dirs["a"]


@pytest.fixture(scope="module")
def shock_run(tmp_path_factory):
    """ru-border-closure from two days before the crossing closes (1 Mar 2024), six days."""
    from experiments.run import run_scenario

    out = tmp_path_factory.mktemp("replay") / "closure"
    run_scenario(SHOCK_SCENARIO, days=6, seed=2, out=out, progress=False,
                 overrides={"merchants.exporters": 4, "merchants.importers": 2, "simulation.start_date": "2024-02-28"})
    return out


def _world(folder: Path):
    cfg = tomllib.loads((folder / "config.toml").read_text())
    return load_world(cfg.get("world", "world"))


def _legs(folder: Path) -> pd.DataFrame:
    """One row per leg started, from parcels.parquet: day, resource, provider (long format, by melt)."""
    world = _world(folder)
    p = pq.read_table(folder / "parcels.parquet").to_pandas()
    ks = sorted(int(c[3:-6]) for c in p.columns if c.startswith("leg") and c.endswith("_start"))
    rows = []
    for k in ks:
        sub = p.loc[p[f"leg{k}_start"] >= 0, ["route", f"leg{k}_start", f"leg{k}_provider"]]
        sub.columns = ["route", "day", "provider"]
        sub["resource"] = [world.routes[int(r)].resources[k - 1] for r in sub["route"]]
        rows.append(sub)
    return pd.concat(rows, ignore_index=True)


def _names(folder: Path) -> dict[int, str]:
    a = pq.read_table(folder / "agents.parquet").to_pandas()
    return dict(zip(a["agent_id"].astype(int), a["name"].astype(str)))


def test_every_lanes_parcels_a_day_are_the_legs_started_on_it(run_a):
    rp = load_replay(load_run(run_a))
    legs = _legs(run_a)
    counts = legs.groupby(["day", "resource"]).size()
    assert counts.sum() > 1000
    expect = np.zeros_like(rp.used)
    for (d, r), n in counts.items():
        expect[int(d), int(r)] = n
    np.testing.assert_array_equal(rp.used, expect)
    # what the map draws: that day's parcels per lane
    busiest = max(range(len(rp.world.lanes)), key=lambda i: rp.used[:, rp.world.lanes[i].index].sum())
    r = rp.world.lanes[busiest].index
    for d in (0, 7, rp.days - 1):
        assert rp.map_data(d).flow[busiest] == counts.get((d, r), 0)


def test_a_lanes_history_names_the_providers_that_carried_it(run_a):
    rp = load_replay(load_run(run_a))
    legs, names = _legs(run_a), _names(run_a)
    i = max(range(len(rp.world.lanes)), key=lambda j: rp.used[:, rp.world.lanes[j].index].sum())
    df = rp.lane_frame(i)
    r = rp.world.lanes[i].index
    on = legs[legs["resource"] == r]
    assert len(df) == len(pq.read_table(run_a / "timeseries.parquet"))
    for d in range(rp.days):
        today = on[on["day"] == d]
        assert df["used"].iloc[d] == len(today)
        assert df["providers"].iloc[d] == ", ".join(sorted({names[int(p)] for p in today["provider"]}))
    assert df["providers"].str.len().gt(0).any()


def test_contract_capacity_and_rate_in_force_a_day(run_a):
    rp = load_replay(load_run(run_a))
    rows = pq.read_table(run_a / "contracts.parquet").to_pylist()
    assert not any(c["status"] == "terminated" for c in rows)  # this run: every end is the file's own
    seen = 0
    for d in (0, rp.days // 2, rp.days - 1):
        by_res: dict[int, list] = {}
        for c in rows:
            if c["resource"] >= 0 and c["offer"] >= 0 and c["start"] <= d < c["end"]:
                by_res.setdefault(c["resource"], []).append(c)
        for r in range(len(rp.world.resources)):
            cs = by_res.get(r, [])
            assert rp.capacity[d, r] == pytest.approx(sum(c["capacity"] for c in cs))
            if cs:
                seen += 1
                assert rp.rate[d, r] == pytest.approx(sum(c["rate_parcel"] for c in cs) / len(cs))
                assert rp.resource_frame(r)["contract_providers"].iloc[d] == ", ".join(
                    sorted({c["provider_name"] for c in cs}))
            else:
                assert np.isnan(rp.rate[d, r])
    assert seen > 0


def test_a_nodes_history_sums_its_lanes(run_a):
    rp = load_replay(load_run(run_a))
    legs = _legs(run_a)
    w = rp.world
    node = w.lanes[max(range(len(w.lanes)), key=lambda j: rp.used[:, w.lanes[j].index].sum())].u
    out_res = {ln.index for ln in w.lanes if ln.u == node}
    in_res = {ln.index for ln in w.lanes if ln.v == node}
    df = rp.node_frame(node)
    for d in (1, rp.days - 1):
        today = legs[legs["day"] == d]
        assert df["outbound_flow"].iloc[d] == today["resource"].isin(out_res).sum()
        assert df["inbound_flow"].iloc[d] == today["resource"].isin(in_res).sum()


def test_the_days_figures_are_the_timeseries_rows(run_a):
    rp = replay_of(load_run(run_a))
    raw = pq.read_table(run_a / "timeseries.parquet").to_pandas()
    for d in (0, 5, rp.days - 1):
        row = rp.row(d)
        for col in ("parcels_created", "parcels_delivered", "on_time_rate", "active_contracts"):
            a, b = row[col], raw[col].iloc[d]
            assert (pd.isna(a) and pd.isna(b)) or a == b
        assert pd.Timestamp(rp.dates[d]) == pd.Timestamp(raw["date"].iloc[d])
    assert rp.clamp(10_000) == rp.days - 1 and rp.clamp(-3) == 0


def test_a_closed_crossing_is_drawn_on_the_days_it_was_closed(shock_run):
    rp = load_replay(load_run(shock_run))
    shock = tomllib.loads(SHOCK_SCENARIO.read_text())["shocks"][0]
    # the lanes the shock names (truck lanes touching either node), recomputed from the world
    hit = {i for i, ln in enumerate(rp.world.lanes)
           if ln.spec.mode in shock["modes"] and (ln.u in shock["nodes"] or ln.v in shock["nodes"])}
    assert hit
    for d in range(rp.days):
        md = rp.map_data(d)
        closed_today = d >= 2  # 28 Feb + 2 days = 1 Mar 2024
        assert set(np.flatnonzero(md.disrupted)) == (hit if closed_today else set())
        assert (md.shocks == shock["name"]) == closed_today
        assert bool(set(shock["nodes"]) & md.closed_nodes) == closed_today
        # and nothing crossed it while closed
        if closed_today:
            assert all(md.flow[i] == 0 for i in hit)


def test_what_cannot_be_replayed_says_why_in_one_line(run_a, tmp_path):
    for missing, words in (("config.toml", "config.toml"), ("parcels.parquet", "parcels.parquet")):
        f = tmp_path / f"without-{missing}"
        shutil.copytree(run_a, f)
        (f / missing).unlink()
        with pytest.raises(LoadError, match=words) as err:
            load_replay(load_run(f))
        assert "\n" not in str(err.value)
    run = load_run(run_a)
    run.folder = None
    with pytest.raises(LoadError, match="not a run folder"):
        load_replay(run)


def test_the_chart_marks_the_chosen_day(run_a):
    from viz.components.analysis import CHART_BY_KEY, chart_figure
    from viz.store import Entry

    run = load_run(run_a)
    day = run.daily["date"].iloc[9]
    fig, _ = chart_figure([Entry(run)], CHART_BY_KEY["parcels"], mark=day)
    marks = [s for s in fig.layout.shapes if s.name == figures.DAY_MARK]
    assert len(marks) == 1 and pd.Timestamp(marks[0].x0) == day
    fig, _ = chart_figure([Entry(run)], CHART_BY_KEY["parcels"])
    assert not [s for s in fig.layout.shapes if s.name == figures.DAY_MARK]


def test_the_replay_tab_follows_the_slider(run_a, shock_run):
    """Rendered without a browser: the slider moves the day; the figures and the map follow."""
    solara = pytest.importorskip("solara")
    import ipyvuetify as v

    from viz.components.replay_view import ReplayView, replay_map_figure
    from viz.store import RunStore

    st = RunStore()
    st.add(load_run(run_a))
    st.add(load_run(shock_run))
    _box, rc = solara.render(ReplayView(st, version=st.version), handle_error=False)
    raw = pq.read_table(shock_run / "timeseries.parquet").to_pandas()  # the last kept: chosen first
    rc.find(v.Slider).widget.v_model = 3
    rc.find(v.Html, class_="fourpl-replay-day", children=["Day 3"]).wait_for(timeout=20)
    got = rc.find(v.Html, class_="fourpl-replay-delivered").widget.children[0]
    assert got == f"{int(raw['parcels_delivered'].iloc[3]):,}"
    rc.find(v.Alert).wait_for(timeout=20)
    assert "Suifenhe-Pogranichny crossing closed" in rc.find(v.Alert).widget.children[0]
    # the map's lane markers say that day's parcels
    rp = replay_of(load_run(shock_run))
    fig, caption, _ = replay_map_figure(rp, 3)
    lanes = next(t for t in fig["data"] if t.get("name") == "lanes")
    legs = _legs(shock_run)
    for (kind, i), text in zip(lanes["customdata"], lanes["text"]):
        n = int(((legs["day"] == 3) & (legs["resource"] == rp.world.lanes[i].index)).sum())
        unit = "kg" if rp.world.lanes[i].spec.bulk else "parcels"
        cap = rp.capacity[3, rp.world.lanes[i].index]
        assert f"02 Mar 2024: {n:,} {unit}" + (f" of {cap:,.0f} contract capacity" if round(cap) else ", no contract") \
            in text
    assert "moved that day" in caption
    # another run chosen: its days
    sel = rc.find(v.Select, label="Run").widget
    sel.v_model = next(x for x in sel.items if "run-a" in x)
    rc.find(v.Html, class_="fourpl-replay-day", children=["Day 0"]).wait_for(timeout=20)
    assert rc.find(v.Slider).widget.max == len(pq.read_table(run_a / "timeseries.parquet")) - 1


def test_the_replay_of_the_files_is_what_the_live_map_recorded(run_a):
    """The same scenario and seed run live with the live map's LaneHistory: on every parcel lane
    and day the live model's use equals the replay's count from the files (bulk lanes carry stock
    consignments, which the files do not hold; warehouses and customs points serve them too)."""
    from market.model import Marketplace
    from market.scenario import validate
    from viz.lanes import LaneHistory

    data = tomllib.loads((run_a / "config.toml").read_text())
    seed = data.pop("run")["seed"]
    model = Marketplace(validate(data), rng=seed)
    live = LaneHistory(model)
    rp = load_replay(load_run(run_a))
    for _ in range(rp.days):
        model.step()
    parcel_lanes = [ln.index for ln in rp.world.lanes if not ln.spec.bulk]
    used = np.array(live.used)[:, parcel_lanes]
    assert used.sum() > 1000
    np.testing.assert_array_equal(rp.used[:, parcel_lanes], used)
