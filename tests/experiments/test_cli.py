"""The fourpl command, run as a user would (a real subprocess)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.run import OUTPUT_FILES

FOURPL = [str(Path(sys.executable).parent / "fourpl")]
SMALL = ["--set", "merchants.exporters=5", "--set", "merchants.importers=2"]


def fourpl(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(FOURPL + list(args), capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_help_on_every_command():
    for cmd in ([], ["run"], ["scenarios"], ["validate"]):
        r = fourpl(*cmd, "--help")
        assert r.returncode == 0, r.stderr
        assert "Usage" in r.stdout


def test_run_writes_every_file(tmp_path):
    out = tmp_path / "out"
    r = fourpl("run", "--scenario", "baseline", "--days", "30", "--seed", "4", "--out", str(out), *SMALL)
    assert r.returncode == 0, r.stderr
    assert "results in" in r.stdout and "ledger imbalance: 0.00" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    s = json.loads((out / "summary.json").read_text())
    for key in ("parcels_created", "parcels_delivered", "parcels_in_transit", "parcels_lost", "on_time_rate",
                "mean_lead_time_days", "p95_lead_time_days", "mean_logistics_cost", "fourpl_share",
                "ledger_imbalance", "by_channel"):
        assert key in s
    assert s["days"] == 30 and s["seed"] == 4
    assert len(pd.read_parquet(out / "timeseries.parquet")) == 30
    assert len(pd.read_parquet(out / "parcels.parquet")) == s["parcels_created"]
    assert len(pd.read_parquet(out / "contracts.parquet")) == s["contracts_signed"]
    cfg = (out / "config.toml").read_text()
    assert "seed = 4" in cfg and "exporters = 5" in cfg and "mesa =" in cfg


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    for name, seed in (("a", "9"), ("b", "9"), ("c", "10")):
        r = fourpl("run", "--days", "25", "--seed", seed, "--out", str(tmp_path / name), "-q", *SMALL)
        assert r.returncode == 0, r.stderr
    for f in OUTPUT_FILES:
        assert filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False), f
    assert not filecmp.cmp(tmp_path / "a" / "parcels.parquet", tmp_path / "c" / "parcels.parquet", shallow=False)


@pytest.mark.parametrize("args, needle", [
    (["--set", "demand.scale=-1"], "demand.scale"),
    (["--set", "demand.scael=2"], "demand.scael"),
    (["--set", "merchants.exporters=many"], "merchants.exporters"),
    (["--set", "market.auction=dutch"], "market.auction"),
    (["--scenario", "no-such-scenario"], "no-such-scenario"),
    (["--days", "0"], "--days"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, needle):
    out = tmp_path / "out"
    r = fourpl("run", "--out", str(out), *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()
    assert not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir())


def test_bad_scenario_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "baseline"\n[demand]\nscale = "lots"\n')
    r = fourpl("validate", str(bad))
    assert r.returncode == 2 and "demand.scale" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad.write_text("[simulation\n")
    r = fourpl("validate", str(bad))
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text('extends = "baseline"\nname = "mine"\n[demand]\nscale = 2.0\n')
    r = fourpl("validate", str(good))
    assert r.returncode == 0 and "mine" in r.stdout


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = fourpl("run", "--days", "3", "--out", str(out), *SMALL)
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces only a folder fourpl wrote (tests/experiments/test_output_safety.py)
    r = fourpl("run", "--days", "3", "--out", str(out), "--overwrite", "-q", *SMALL)
    assert r.returncode == 2 and "keep.txt" in r.stderr and (out / "keep.txt").read_text() == "mine"


def test_scenarios_lists_builtins_and_params():
    r = fourpl("scenarios", "--params")
    assert r.returncode == 0
    assert "baseline" in r.stdout and "demand.scale" in r.stdout


def test_interrupted_run_leaves_nothing(tmp_path):
    """A run that dies half way leaves no output folder and no staging folder."""
    out = tmp_path / "out"
    code = ("import experiments.run as r, market.model as mm\n"
            "orig = mm.Marketplace.step\n"
            "def boom(self):\n"
            "    orig(self)\n"
            "    if self.day == 5: raise RuntimeError('power cut')\n"
            "mm.Marketplace.step = boom\n"
            f"r.run_scenario('baseline', days=10, out={str(out)!r}, progress=False, "
            "overrides={'merchants.exporters': 3, 'merchants.importers': 1})\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode != 0 and "power cut" in p.stderr
    assert list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_auction_format_from_the_command_line(tmp_path):
    out = tmp_path / "v"
    r = fourpl("run", "--days", "20", "--out", str(out), "-q", "--set", "market.auction=vickrey", *SMALL)
    assert r.returncode == 0, r.stderr
    c = pd.read_parquet(out / "contracts.parquet")
    assert "vickrey" in set(c["mechanism"])
    assert "auction = \"vickrey\"" in (out / "config.toml").read_text()


# ------------------------------------------------------------------------------------------
# start-up, warnings, names, text as written (issue 10)
# ------------------------------------------------------------------------------------------
HEAVY = ("mesa", "numpy", "scipy", "pandas", "pyarrow", "networkx", "matplotlib", "solara", "market.model",
         "experiments.run", "pydantic")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["sweep", "--help"], ["validate", "--help"],
                                  ["run", "--seed", "-1"], ["nope"]])
def test_help_and_usage_errors_import_nothing_heavy(args):
    """`fourpl --help` must start fast: the model, numpy & co. (and the schema) are imported lazily.

    Checked from the import log (PYTHONPROFILEIMPORTTIME), not with a timer."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    r = subprocess.run(FOURPL + args, capture_output=True, text=True, env=env, timeout=600)
    imported = {ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")}
    assert "experiments.cli" in imported, r.stderr[-2000:]      # the log is really there
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY)
    assert not heavy, f"fourpl {' '.join(args)} imported {heavy[:10]}"


def test_library_names_still_import():
    code = ("import sys, market\n"
            "assert 'market.model' not in sys.modules\n"
            "from market import Marketplace, Scenario, ScenarioError, load_scenario\n"
            "assert Marketplace.__module__ == 'market.model' and 'mesa' in sys.modules\n"
            "assert issubclass(ScenarioError, ValueError) and load_scenario('baseline').name == 'baseline'\n"
            "try:\n    market.nope\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no error')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr


def test_shock_past_the_horizon_is_a_one_line_warning(tmp_path):
    r = fourpl("validate", "port-congestion", "--set", "simulation.days=30", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(ln.startswith("warning: ") for ln in lines), r.stderr
    assert "Sea and rail congestion" in lines[0] and "never applies" in lines[0] and "2024-04-01" in lines[0]
    assert "ok" in r.stdout
    r = fourpl("validate", "port-congestion", cwd=tmp_path)        # its own horizon: no warning
    assert r.returncode == 0 and r.stderr == ""


def test_unnamed_child_is_named_after_its_file(tmp_path):
    """A file extending baseline without a `name` is not 'baseline' in paths or messages."""
    (tmp_path / "mine.toml").write_text('extends = "baseline"\n[merchants]\nexporters = 3\nimporters = 1\n')
    r = fourpl("run", "-s", "mine.toml", "--days", "2", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "mine-seed1"
    assert out.is_dir() and not (tmp_path / "results" / "baseline-seed1").exists()
    assert json.loads((out / "summary.json").read_text())["scenario"] == "mine"
    assert 'name = "mine"' in (out / "config.toml").read_text()


def test_names_with_brackets_print_as_written(tmp_path):
    """Rich markup does not eat [brackets] in names, paths or error messages."""
    (tmp_path / "[x].toml").write_text('extends = "baseline"\nname = "[bold]x[red]"\n')
    r = fourpl("validate", "[x].toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "scenario '[bold]x[red]' is valid" in r.stdout
    r = fourpl("validate", "[x].toml", "--set", "claims.processing_days=[9, 2, 1]", cwd=tmp_path)
    assert r.returncode == 2 and "must be [min, mode, max]" in r.stderr


def test_click_usage_errors_are_one_line():
    for args, needle in ((["run", "--seed", "abc"], "--seed"), (["run", "--bogus"], "--bogus"),
                         (["validate"], "SCENARIO_FILE"), (["nope"], "nope")):
        r = fourpl(*args)
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
        assert "--help" in lines[0]          # where to look next
