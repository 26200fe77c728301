"""Sweeps: experiment files, seeds, workers, resume, failures, Dask (real runs, small market)."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.designs import (Design, ExperimentError, Parameter, design_points, load_experiment,
                                 parse_experiment, plan_runs, seed_from)
from experiments.sweep import SweepError, finished_runs, read_daily, read_runs, run_sweep

FOURPL = [str(Path(sys.executable).parent / "fourpl")]
SMALL = """
[overrides]
"merchants.exporters" = 3
"merchants.importers" = 1
"""


def write_experiment(folder: Path, text: str, name: str = "exp.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def fourpl(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(FOURPL + list(args), capture_output=True, text=True, env=env, timeout=600)


REFERENCE = f"""
name = "reference"
days = 8
replications = 2
seed = 123
{SMALL}
[design]
kind = "grid"
[[design.parameters]]
key = "integrators.count"
values = [1, 2]
[outputs]
daily = true
by_market = true
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference sweep: one worker, in this process."""
    folder = tmp_path_factory.mktemp("reference")
    exp = write_experiment(folder, REFERENCE)
    out = folder / "out"
    result = run_sweep(exp, out, workers=1, progress=False)
    assert (result.total, result.ok, result.failed) == (4, 4, 0)
    return exp, out


def same_files(a: Path, b: Path, kind: str):
    fa = sorted(p.relative_to(a) for p in (a / kind).rglob("*.parquet"))
    fb = sorted(p.relative_to(b) for p in (b / kind).rglob("*.parquet"))
    assert fa == fb and fa, kind
    for f in fa:
        assert filecmp.cmp(a / f, b / f, shallow=False), f


# ---- experiment files --------------------------------------------------------------------
def test_experiment_validates_and_plans_runs_in_order(reference):
    exp_path, _ = reference
    exp = load_experiment(exp_path)
    plan = plan_runs(exp, exp_path.parent)
    assert [(r.point, r.replication) for r in plan.runs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [r.params for r in plan.runs] == [{"integrators.count": 1}] * 2 + [{"integrators.count": 2}] * 2
    # every run has its own child of SeedSequence(root), spawned in run order
    runs_ss = np.random.SeedSequence(123).spawn(2)[1]
    assert [r.seed for r in plan.runs] == [seed_from(c) for c in runs_ss.spawn(4)]
    assert len({r.seed for r in plan.runs}) == 4
    assert plan.days == {"baseline": 8}
    assert plan.overrides_of(plan.runs[2]) == {"merchants.exporters": 3, "merchants.importers": 1,
                                              "integrators.count": 2}


def test_common_random_numbers_share_seeds_across_points(tmp_path):
    exp = parse_experiment({"name": "crn", "seed": 5, "replications": 3, "common_random_numbers": True,
                            "design": {"parameters": [{"key": "demand.scale", "values": [1.0, 2.0]}]}})
    plan = plan_runs(exp)
    by_rep = {}
    for r in plan.runs:
        by_rep.setdefault(r.replication, set()).add(r.seed)
    assert all(len(s) == 1 for s in by_rep.values()) and len({s.pop() for s in by_rep.values()}) == 3


@pytest.mark.parametrize("text, needles", [
    ('name = "x"\nseed = 1\n[desing]\nkind = "grid"', ["unknown key 'desing'", "did you mean 'design'"]),
    ('name = "x"', ["key 'seed'", "Field required"]),
    ('name = "x"\nseed = 1\n[design]\nkind = "latin"', ["design.kind"]),
    ('name = "x"\nseed = 1\n[[design.parameters]]\nkey = "merchants.diy_transacton_cost"\nvalues = [1]',
     ["merchants.diy_transacton_cost", "did you mean 'merchants.diy_transaction_cost'"]),
    ('name = "x"\nseed = 1\n[design]\nkind = "sobol"\nsamples = 6\n[[design.parameters]]\nkey = "demand.scale"\n'
     'low = 1\nhigh = 2\n[[design.parameters]]\nkey = "carriers.markup"\nlow = 0\nhigh = 1', ["power of 2"]),
    ('name = "x"\nseed = 1\n[[design.parameters]]\nkey = "demand.scale"\nlow = 1\nhigh = 2',
     ["demand.scale", "a grid needs"]),
    ('name = "x"\nseed = 1\n[[design.parameters]]\nkey = "demand.scale"\nvalues = [1.0, -1.0]',
     ["design point 1", "demand.scale"]),
    ('name = "x"\nseed = 1\nscenarios = ["no-such-scenario"]', ["no-such-scenario"]),
    ('name = "x"\nseed = 1\n[overrides]\n"merchants.exporters" = "many"', ["merchants.exporters"]),
    ('name = "x"\nseed = 1\nreplications = 0', ["replications"]),
    ('name = "x" = 1', ["not valid TOML"]),
])
def test_bad_experiment_is_one_line_naming_the_key(tmp_path, text, needles):
    path = write_experiment(tmp_path, text)
    with pytest.raises(ExperimentError) as exc:
        plan_runs(load_experiment(path), tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_bad_experiment_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    path = write_experiment(tmp_path, 'name = "x"\nseed = 1\n[[design.parameters]]\nkey = "demand.scale"\n'
                                      'values = [1.0, -1.0]')
    r = fourpl("sweep", str(path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "design point 1" in lines[0] and "demand.scale" in lines[0]
    assert not (tmp_path / "out").exists()


def test_designs():
    grid = Design(parameters=[Parameter(key="a", values=[1, 2]), Parameter(key="b", low=0, high=1, levels=3)])
    assert design_points(grid, 0).values == [{"a": a, "b": b} for a in (1, 2) for b in (0.0, 0.5, 1.0)]
    lhs = Design(kind="lhs", samples=10, parameters=[Parameter(key="a", low=10, high=20),
                                                     Parameter(key="n", low=0, high=4, integer=True)])
    pts = design_points(lhs, 7)
    a = np.array([p["a"] for p in pts.values])
    assert ((a >= 10) & (a <= 20)).all()
    assert sorted(np.floor((a - 10) / 1.0).astype(int)) == list(range(10))      # one point per stratum
    assert {p["n"] for p in pts.values} == {0, 1, 2, 3, 4}
    assert design_points(lhs, 7).values == pts.values and design_points(lhs, 8).values != pts.values
    sob = Design(kind="sobol", samples=8, parameters=[Parameter(key="a", low=0, high=1),
                                                      Parameter(key="c", values=["x", "y", "z"])])
    pts = design_points(sob, 1)
    assert len(pts) == 8 * (2 + 2) and pts.unit.shape == (32, 2)
    assert {p["c"] for p in pts.values} <= {"x", "y", "z"}


# ---- running -----------------------------------------------------------------------------
def test_sweep_writes_one_row_per_run_with_parameters_seed_and_summary(reference):
    exp_path, out = reference
    runs = read_runs(out)
    plan = plan_runs(load_experiment(exp_path), exp_path.parent)
    assert list(runs["run_id"]) == [0, 1, 2, 3]
    assert list(runs["seed"]) == [r.seed for r in plan.runs]
    assert set(runs["status"]) == {"ok"} and list(runs["scenario"]) == ["baseline"] * 4
    assert list(runs["param.integrators.count"]) == [1, 1, 2, 2]
    assert list(runs["agents.integrators"]) == [1, 1, 2, 2]
    for col in ("parcels_created", "on_time_rate", "mean_landed_cost", "by_channel.postal.parcels_created",
                "by_market.US.mean_lead_time_days", "ledger_imbalance"):
        assert col in runs, col
    assert (runs["ledger_imbalance"] == 0).all()
    assert np.allclose(runs["mean_landed_cost"], runs["mean_logistics_cost"] + runs["mean_duty"])
    daily = read_daily(out)
    assert len(daily) == 4 * 8 and sorted(daily["run_id"].unique()) == [0, 1, 2, 3]
    assert (daily.groupby("run_id")["parcels_created"].sum().to_numpy()
            == runs["parcels_created"].to_numpy()).all()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sorted(e["run_id"] for e in log) == [0, 1, 2, 3] and all(e["wall_seconds"] > 0 for e in log)


def test_market_figures_add_up_to_the_summary(reference):
    runs = read_runs(reference[1])
    markets = sorted({c.split(".")[1] for c in runs if c.startswith("by_market.")})
    assert {"CN", "US"} <= set(markets)
    created = sum(runs[f"by_market.{m}.parcels_created"].fillna(0) for m in markets)
    assert (created == runs["parcels_created"]).all()
    delivered = {m: runs[f"by_market.{m}.parcels_delivered"].fillna(0) for m in markets}
    lead = sum(runs[f"by_market.{m}.mean_lead_time_days"].fillna(0) * delivered[m] for m in markets)
    cost = sum(runs[f"by_market.{m}.mean_logistics_cost"].fillna(0) * delivered[m] for m in markets)
    assert np.allclose(lead / runs["parcels_delivered"], runs["mean_lead_time_days"])
    assert np.allclose(cost / runs["parcels_delivered"], runs["mean_logistics_cost"])


def test_recorded_seed_reproduces_the_run_with_fourpl_run(reference, tmp_path):
    import shlex
    runs = read_runs(reference[1])
    row = runs.iloc[3]
    args = shlex.split(row["command"])
    assert args[:2] == ["fourpl", "run"] and str(row["seed"]) in args
    r = fourpl(*args[1:], "--out", str(tmp_path / "one"), "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "one" / "summary.json").read_text())
    for k in ("parcels_created", "parcels_delivered", "on_time_rate", "mean_lead_time_days", "mean_logistics_cost",
              "fourpl_share"):
        assert s[k] == pytest.approx(row[k], rel=1e-12), k
    assert s["by_channel"]["express"]["parcels_created"] == row["by_channel.express.parcels_created"]


def test_two_workers_give_identical_result_files(reference, tmp_path):
    exp, out = reference
    result = run_sweep(exp, tmp_path / "two", workers=2, progress=False)
    assert (result.ok, result.failed) == (4, 0)
    same_files(out, tmp_path / "two", "runs")
    same_files(out, tmp_path / "two", "daily")


def test_local_dask_cluster_gives_the_results_of_the_process_pool(reference, tmp_path):
    pytest.importorskip("dask.distributed")
    exp, out = reference
    result = run_sweep(exp, tmp_path / "dask", workers=2, engine="dask", progress=False)
    assert (result.ok, result.failed) == (4, 0)
    pd.testing.assert_frame_equal(read_runs(out), read_runs(tmp_path / "dask"))
    same_files(out, tmp_path / "dask", "runs")
    same_files(out, tmp_path / "dask", "daily")
    workers = {json.loads(line)["worker"] for line in (tmp_path / "dask" / "log.jsonl").read_text().splitlines()}
    assert all(str(os.getpid()) not in w for w in workers)        # ran in the cluster's processes


def test_failing_run_is_recorded_and_the_sweep_completes(tmp_path):
    exp = write_experiment(tmp_path, f"""
name = "with-failures"
days = 5
replications = 2
seed = 9
{SMALL}
[[design.parameters]]
key = "world"
values = ["world", "no-such-world"]
""")
    out = tmp_path / "out"
    r = fourpl("sweep", str(exp), "--out", str(out), "--workers", "1", "-q")
    assert r.returncode == 1, r.stderr             # the sweep went on, but says it is not all ok
    assert "2 failed" in r.stdout and "2 of 4 runs failed" in r.stdout
    runs = read_runs(out)
    assert list(runs["status"]) == ["ok", "ok", "failed", "failed"]
    assert runs["error"].iloc[2].startswith("ScenarioError") and "no-such-world" in runs["error"].iloc[2]
    assert runs["parcels_created"].iloc[:2].gt(0).all() and runs["parcels_created"].iloc[2:].isna().all()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("Traceback" in e.get("traceback", "") for e in log if e["status"] == "failed")
    # a second call runs nothing; --retry-failed runs exactly the failed ones again
    again = run_sweep(exp, out, workers=1, progress=False)
    assert (again.skipped, again.ok, again.failed) == (4, 0, 0)
    retry = run_sweep(exp, out, workers=1, retry_failed=True, progress=False)
    assert (retry.skipped, retry.ok, retry.failed) == (2, 0, 2)
    ids = [json.loads(line)["run_id"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert sorted(ids) == [0, 1, 2, 2, 3, 3]
    # started again with nothing to run, it still reports the failed runs and exits 1
    r = fourpl("sweep", str(exp), "--out", str(out), "--workers", "1", "-q")
    assert r.returncode == 1 and "nothing to run" in r.stdout and "2 of 4 runs failed" in r.stdout


def test_resume_after_a_kill_does_not_rerun_finished_runs(tmp_path):
    exp = write_experiment(tmp_path, f"""
name = "resume"
days = 40
replications = 6
seed = 77
{SMALL}
[outputs]
daily = true
""")
    out = tmp_path / "out"
    proc = subprocess.Popen(FOURPL + ["sweep", str(exp), "--out", str(out), "--workers", "1", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(list((out / "runs").glob("*/run-*.parquet"))) < 2:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)       # a hard stop, mid-run
        proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run-*.parquet")}
    assert 2 <= len(before) < 6, "the sweep finished before it could be interrupted"
    done_before = set(finished_runs(out))
    result = run_sweep(exp, out, workers=1, progress=False)
    assert result.skipped == len(done_before) and result.ok == 6 - len(done_before)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run-*.parquet")}
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    ids = [json.loads(line)["run_id"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert sorted(ids) == list(range(6))           # every run recorded exactly once
    assert not [p for p in out.rglob(".*") if p.is_file()]   # no half-written files left
    assert len(read_daily(out)) == 6 * 40


def test_output_folder_guards(reference, tmp_path):
    exp, out = reference
    other = write_experiment(tmp_path, REFERENCE.replace("seed = 123", "seed = 124"), "other.toml")
    with pytest.raises(SweepError, match="different experiment"):
        run_sweep(other, out, workers=1, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="holds no sweep"):
        run_sweep(exp, tmp_path / "busy", workers=1, progress=False)
    assert run_sweep(exp, out, workers=1, progress=False).ok == 0      # all done already


def test_cli_help():
    from click.testing import CliRunner

    from experiments.cli import main
    runner = CliRunner()
    for cmd, opts in (("sweep", ("--out", "--workers", "--engine", "--scheduler", "--retry-failed")),
                      ("report", ("--out",))):
        r = runner.invoke(main, [cmd, "--help"])
        assert r.exit_code == 0, r.output
        assert "Usage" in r.output and all(o in r.output for o in opts)
    r = runner.invoke(main, ["--help"])
    assert "sweep" in r.output and "report" in r.output


def test_resumed_sweep_keeps_one_log_line_per_recorded_run(tmp_path):
    """A kill between a run's log line and its row, or in the middle of a log line, leaves
    lines for runs that will run again: the resumed sweep drops them before it runs."""
    from experiments.sweep import reconcile_log
    log = tmp_path / "log.jsonl"
    log.write_text('{"run_id": 0, "status": "ok"}\n{"run_id": 1, "status": "ok"}\n'
                   '{"run_id": 0, "status": "ok", "again": true}\n{"run_id": 2, "sta')
    reconcile_log(tmp_path, {0: "ok"})
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines == [{"run_id": 0, "status": "ok", "again": True}]
