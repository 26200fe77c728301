"""Export: the current parameters as a scenario TOML that the real `fourpl run` accepts and
runs with exactly those values; a table as CSV that reads back the same."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd

from viz.components.runs_panel import scenario_toml
from viz.state import default_settings
from viz.store import csv_bytes

FOURPL = Path(sys.executable).with_name("fourpl")


def test_the_scenario_toml_runs_through_the_cli_with_the_sliders_values(tmp_path):
    s = default_settings("4pl-competition", 5)
    s["values"] = {**s["values"], "demand.scale": 0.6, "merchants.exporters": 4, "merchants.importers": 2}
    text = scenario_toml(s)
    path = tmp_path / "from-app.toml"
    path.write_bytes(text)
    d = tomllib.loads(text.decode())
    assert d["demand"]["scale"] == 0.6 and d["merchants"]["exporters"] == 4
    assert "demand.scale=0.6" in d["description"]
    out = tmp_path / "out"
    res = subprocess.run([str(FOURPL), "run", "-s", str(path), "--days", "3", "--seed", "5", "-o", str(out), "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["demand"]["scale"] == 0.6
    assert cfg["merchants"]["exporters"] == 4 and cfg["merchants"]["importers"] == 2
    assert cfg["integrators"]["count"] == 3  # the scenario's own value, kept
    assert cfg["run"]["seed"] == 5


def test_a_table_as_csv_reads_back_the_same(tmp_path):
    df = pd.DataFrame({"run": ["a, b", "c"], "value": [1.5, float("nan")], "n": [1, 2]})
    p = tmp_path / "t.csv"
    p.write_bytes(csv_bytes(df))
    back = pd.read_csv(p)
    pd.testing.assert_frame_equal(back, df)
