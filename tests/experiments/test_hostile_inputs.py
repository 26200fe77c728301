"""A corpus of hostile inputs, each run through the real ``fourpl`` command in a subprocess.

Every case must end with exit status 2, exactly one non-empty line on stderr that starts with
``error:`` and names the problem, no traceback, and nothing written: the working folder (the
default output folders are under it) holds the input files and nothing else afterwards.

Output-folder problems (paths under a file, read-only, disk full, --overwrite) are tested in
tests/experiments/test_cli.py and the run/sweep tests; this corpus is about what goes in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FOURPL = [str(Path(sys.executable).parent / "fourpl")]
BASE = 'extends = "baseline"\n'


def scenario(body: str, name: str | None = "hostile") -> str:
    return BASE + (f'name = "{name}"\n' if name else "") + body


def shock(body: str) -> str:
    return scenario('[[shocks]]\nname = "s"\n' + body)


def experiment(top: str = "", tail: str = "") -> str:
    """An experiment file: ``top`` goes among the top-level keys, ``tail`` after the tables."""
    return ('name = "exp"\nseed = 1\nscenarios = ["baseline"]\ndays = 5\n' + top
            + '[overrides]\n"merchants.exporters" = 3\n' + tail)


EXPERIMENT = experiment()
BIG_LIST = "[demand]\nweekly = [" + ", ".join(["1.0"] * 200_000) + "]\n"

# id: (argv, files {name: text or bytes}, text the error line must contain)
CASES = {
    # ---- non-finite numbers, in --set and in files, with and without an upper bound
    "set-inf": (["run", "--set", "demand.scale=inf"], {}, "demand.scale"),
    "set-nan": (["run", "--set", "demand.scale=nan"], {}, "finite"),
    "set-inf-unbounded": (["run", "--set", "merchants.cash=inf"], {}, "merchants.cash"),
    "set-nan-unbounded": (["run", "--set", "insurance.deductible=nan"], {}, "insurance.deductible"),
    "set-minus-inf": (["run", "--set", "merchants.switching_cost=-inf"], {}, "merchants.switching_cost"),
    "set-overflow-to-inf": (["run", "--set", "integrators.cash=1e400"], {}, "finite"),
    "file-inf-unbounded": (["run", "-s", "f.toml"], {"f.toml": scenario("[merchants]\ncash = inf\n")}, "merchants.cash"),
    "file-nan": (["run", "-s", "f.toml"], {"f.toml": scenario("[demand]\nscale = nan\n")}, "demand.scale"),
    "file-inf-in-list": (["run", "-s", "f.toml"], {"f.toml": scenario("[demand]\nweekly = [1, 1, 1, inf, 1, 1, 1]\n")}, "demand.weekly"),
    "shock-factor-nan": (["validate", "f.toml"], {"f.toml": shock('kind = "demand"\nday = 3\nfactor = nan\n')}, "factor"),
    "shock-rule-inf": (["validate", "f.toml"], {"f.toml": shock('kind = "duty_rule"\nday = 3\nterritories = ["US"]\n'
                                                                '[shocks.rule]\nde_minimis = inf\n')}, "finite"),
    "experiment-low-inf": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[design]\nkind = "lhs"\nsamples = 2\n'
                                                 '[[design.parameters]]\nkey = "demand.scale"\nlow = 0.5\nhigh = inf\n'},
                           "design.parameters[0].high"),
    # ---- dates the run cannot represent; shocks that never apply
    "start-9999": (["run", "--set", "simulation.start_date=9999-12-01"], {}, "simulation.start_date"),
    "start-year-1": (["run", "-s", "f.toml"], {"f.toml": scenario("[simulation]\nstart_date = 0001-01-01\n")}, "0001-01-01"),
    "start-with-time": (["run", "--set", "simulation.start_date=2024-01-01T10:30:00"], {}, "simulation.start_date"),
    "start-a-time": (["run", "--set", "simulation.start_date=10:30:00"], {}, "simulation.start_date"),
    "shock-after-longest-run": (["run", "-s", "f.toml"], {"f.toml": shock('kind = "demand"\nstart = 2039-05-01\n')},
                                "never applies"),
    "shock-ended-before-start": (["run", "-s", "f.toml"], {"f.toml": shock('kind = "demand"\nstart = 2023-03-01\ndays = 30\n')},
                                 "before the run starts"),
    "shock-day-huge": (["run", "-s", "f.toml"], {"f.toml": shock('kind = "demand"\nday = 100000000000\n')}, "shocks[0].day"),
    "peak-feb-29": (["run", "--set", 'demand.peaks=[{name="leap", date="02-29"}]'], {}, "02-29"),
    "peak-month-13": (["run", "--set", 'demand.peaks=[{name="x", date="13-01"}]'], {}, "demand.peaks[0].date"),
    # ---- files that are not UTF-8 TOML
    "scenario-binary": (["run", "-s", "f.toml"], {"f.toml": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"}, "UTF-8"),
    "scenario-utf16": (["run", "-s", "f.toml"], {"f.toml": scenario("[demand]\nscale = 2.0\n").encode("utf-16")}, "UTF-8"),
    "scenario-latin1": (["validate", "f.toml"], {"f.toml": 'name = "caf\xe9"\n'.encode("latin-1")}, "UTF-8"),
    "scenario-bom": (["validate", "f.toml"], {"f.toml": scenario("").encode("utf-8-sig")}, "not valid TOML"),
    "scenario-deep-nesting": (["validate", "f.toml"], {"f.toml": "x = " + "[" * 100_000}, "f.toml"),
    "experiment-binary": (["sweep", "e.toml"], {"e.toml": b"\xff\xfe\x00\x01binary"}, "UTF-8"),
    "experiment-utf16": (["sweep", "e.toml"], {"e.toml": EXPERIMENT.encode("utf-16")}, "UTF-8"),
    "experiment-a-folder": (["sweep", "folder"], {"folder/keep.txt": ""}, "folder"),
    "world-binary": (["validate", "baseline", "--set", 'world="w.toml"'], {"w.toml": b"\x00\xff\xfe\xfa"}, "UTF-8"),
    # ---- seeds and days
    "seed-negative": (["run", "--seed", "-1"], {}, "--seed"),
    "seed-not-integer": (["run", "--seed", "1.5"], {}, "--seed"),
    "seed-text": (["run", "--seed", "abc"], {}, "--seed"),
    "seed-too-big": (["run", "--seed", str(2 ** 64)], {}, "--seed"),
    "days-beyond-cap": (["run", "--days", "100000000"], {}, "--days"),
    "days-negative": (["run", "--days", "-5"], {}, "--days"),
    "days-zero": (["run", "--days", "0"], {}, "--days"),
    "workers-zero": (["sweep", "e.toml", "--workers", "0"], {"e.toml": EXPERIMENT}, "--workers"),
    "port-out-of-range": (["app", "--port", "70000"], {}, "--port"),
    # ---- strict types
    "file-scale-string": (["run", "-s", "f.toml"], {"f.toml": scenario('[demand]\nscale = "2"\n')}, "demand.scale"),
    "file-exporters-bool": (["run", "-s", "f.toml"], {"f.toml": scenario("[merchants]\nexporters = true\n")}, "merchants.exporters"),
    "file-insure-int": (["run", "-s", "f.toml"], {"f.toml": scenario("[integrators]\ninsure = 1\n")}, "integrators.insure"),
    "file-exporters-float": (["run", "-s", "f.toml"], {"f.toml": scenario("[merchants]\nexporters = 2.5\n")}, "merchants.exporters"),
    "file-products-strings": (["run", "-s", "f.toml"], {"f.toml": scenario('[merchants]\nproducts = ["1", "2"]\n')}, "merchants.products"),
    "set-scale-string": (["run", "--set", 'demand.scale="2"'], {}, "demand.scale"),
    "set-exporters-bool": (["run", "--set", "merchants.exporters=true"], {}, "merchants.exporters"),
    "set-days-string": (["run", "--set", 'simulation.days="30"'], {}, "simulation.days"),
    "experiment-replications-string": (["sweep", "e.toml"], {"e.toml": experiment('replications = "3"\n')}, "replications"),
    "experiment-design-value-string": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[[design.parameters]]\nkey = "demand.scale"\n'
                                                                     'values = ["2"]\n'}, "demand.scale"),
    # ---- extends, names
    "set-extends": (["run", "--set", "extends=no-4pl"], {}, "extends"),
    "set-extends-dunder": (["run", "--set", "extends__x=1"], {}, "extends"),
    "experiment-override-extends": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '"extends" = "no-4pl"\n'}, "extends"),
    "extends-itself": (["run", "-s", "me.toml"], {"me.toml": 'extends = "me"\n'}, "loops"),
    "extends-loop": (["run", "-s", "a.toml"], {"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "loops"),
    "extends-empty": (["run", "-s", "f.toml"], {"f.toml": 'extends = ""\n'}, "extends"),
    "extends-number": (["run", "-s", "f.toml"], {"f.toml": "extends = 5\n"}, "extends"),
    "extends-missing": (["run", "-s", "f.toml"], {"f.toml": 'extends = "no-such-parent"\n'}, "no-such-parent"),
    "unnamed-child-error-names-its-file": (["run", "-s", "mine.toml"], {"mine.toml": scenario("[demand]\nscale = -1\n", name=None)},
                                           "scenario 'mine'"),
    "name-with-slash": (["run", "-s", "f.toml"], {"f.toml": scenario("", name="../../outside")}, "name"),
    "name-hidden": (["run", "--set", 'name=".hidden"'], {}, "name"),
    "name-empty": (["run", "--set", 'name=""'], {}, "name"),
    "name-newline": (["run", "--set", 'name="a\\nb"'], {}, "name"),
    # ---- message form: brackets kept, huge values cut
    "brackets-kept": (["run", "--set", "merchants.products=[5,1]"], {}, "must be [low, high]"),
    "brackets-in-value": (["run", "--set", "market.auction=[bold]dutch[/]"], {}, "[bold]dutch[/]"),
    "huge-list-cut": (["run", "-s", "f.toml"], {"f.toml": scenario(BIG_LIST)}, "demand.weekly"),
    "huge-integer": (["run", "--set", "merchants.exporters=" + "9" * 30], {}, "merchants.exporters"),
    "integer-too-long-to-read": (["run", "--set", "merchants.exporters=" + "9" * 5000], {}, "merchants.exporters"),
    "integer-too-long-in-file": (["run", "-s", "f.toml"], {"f.toml": scenario("[merchants]\ncash = " + "9" * 5000 + "\n")}, "f.toml"),
    "negative-zero": (["run", "--set", "demand.scale=-0.0"], {}, "demand.scale"),
    "long-unknown-key": (["run", "--set", "demand." + "x" * 50_000 + "=1"], {}, "unknown key"),
    "newline-in-key": (["run", "--set", "demand.sc\nale=1"], {}, "unknown key"),
    # ---- --set syntax
    "set-no-equals": (["run", "--set", "demand.scale"], {}, "key=value"),
    "set-empty-key": (["run", "--set", "=2"], {}, "empty"),
    "set-twice": (["run", "--set", "demand.scale=2", "--set", "demand.scale=3"], {}, "twice"),
    "set-through-a-value": (["run", "--set", "demand.scale.x=1"], {}, "demand.scale"),
    "set-through-a-set-value": (["run", "--set", "demand.scale=2", "--set", "demand__scale.x=1"], {}, "not a table"),
    "set-section-to-number": (["run", "--set", "demand=5"], {}, "demand"),
    "set-unknown-section": (["run", "--set", "nope.deeper=1"], {}, "nope"),
    # ---- click's own usage errors
    "unknown-option": (["run", "--bogus"], {}, "--bogus"),
    "unknown-command": (["frobnicate"], {}, "frobnicate"),
    "missing-argument": (["validate"], {}, "SCENARIO_FILE"),
    "option-missing-value": (["run", "--seed"], {}, "--seed"),
    "bad-choice": (["sweep", "e.toml", "--engine", "mpi"], {"e.toml": EXPERIMENT}, "--engine"),
    # ---- files and names that are not there
    "scenario-missing": (["run", "-s", "no-such-scenario"], {}, "no-such-scenario"),
    "scenario-a-folder": (["run", "-s", "folder"], {"folder/keep.txt": ""}, "folder"),
    "scenario-name-too-long": (["run", "-s", "a" * 5000], {}, "neither a built-in"),
    "scenario-nul-in-path": (["validate", "a\x01b.toml"], {}, "neither a built-in"),
    "world-missing": (["validate", "baseline", "--set", 'world="no-such-world"'], {}, "no-such-world"),
    "world-name-too-long": (["validate", "baseline", "--set", 'world="' + "w" * 5000 + '"'], {}, "world"),
    "experiment-missing": (["sweep", "no-such.toml"], {}, "no-such.toml"),
    # ---- selectors and names the world does not have
    "shock-unknown-node": (["validate", "f.toml"], {"f.toml": shock('kind = "capacity"\nday = 3\nnodes = ["Atlantis"]\n')}, "Atlantis"),
    "too-many-shocks": (["validate", "f.toml"], {"f.toml": scenario("".join("[[shocks]]\nname = \"s\"\nkind = \"demand\"\nday = 1\n" for _ in range(1001)))}, "at most 1000"),
    "shock-unknown-kind": (["validate", "f.toml"], {"f.toml": shock('kind = "earthquake"\nday = 3\n')}, "shocks[0].kind"),
    "shock-no-when": (["validate", "f.toml"], {"f.toml": shock('kind = "demand"\n')}, "start"),
    "peak-unknown-market": (["validate", "baseline", "--set", 'demand.peaks=[{name="x", markets=["Mars"]}]'], {}, "Mars"),
    "unknown-channel": (["validate", "baseline", "--set", 'merchants.allowed_channels=["teleport"]'], {}, "teleport"),
    "unknown-export-market": (["validate", "baseline", "--set", 'merchants.export_markets=["Mars"]'], {}, "Mars"),
    "export-market-in-china": (["run", "--days", "1", "--set", 'merchants.export_markets=["CN"]'], {}, "outside China"),
    # ---- experiments with a bad design
    "design-unknown-kind": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[design]\nkind = "taguchi"\n'}, "design.kind"),
    "design-sobol-not-power-of-2": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[design]\nkind = "sobol"\nsamples = 3\n'
                                    '[[design.parameters]]\nkey = "demand.scale"\nlow = 0.5\nhigh = 2\n'
                                    '[[design.parameters]]\nkey = "carriers.markup"\nlow = 0.1\nhigh = 0.3\n'}, "power of 2"),
    "design-too-many-runs": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + "".join(
        f'[[design.parameters]]\nkey = "{k}"\nlow = 0.1\nhigh = 0.3\nlevels = 1000\n'
        for k in ("carriers.markup", "warehouses.markup", "customs_agents.markup"))}, "more than"),
    "design-unknown-key": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[[design.parameters]]\nkey = "demand.scael"\n'
                                                 'values = [1, 2]\n'}, "demand.scael"),
    "design-value-out-of-range": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[[design.parameters]]\nkey = "demand.scale"\n'
                                                        'values = [1, -2]\n'}, "design point 1"),
    "design-low-above-high": (["sweep", "e.toml"], {"e.toml": EXPERIMENT + '[design]\nkind = "lhs"\nsamples = 4\n'
                                                    '[[design.parameters]]\nkey = "demand.scale"\nlow = 2\nhigh = 1\n'}, "below"),
    "experiment-days-beyond-cap": (["sweep", "e.toml"], {"e.toml": EXPERIMENT.replace("days = 5", "days = 100000")}, "days"),
    "experiment-seed-negative": (["sweep", "e.toml"], {"e.toml": EXPERIMENT.replace("seed = 1", "seed = -1")}, "seed"),
    "experiment-bad-name": (["sweep", "e.toml"], {"e.toml": EXPERIMENT.replace('name = "exp"', 'name = "../up"')}, "name"),
    "experiment-shock-never-applies": (["sweep", "e.toml"], {
        "e.toml": EXPERIMENT.replace('["baseline"]', '["f.toml"]'),
        "f.toml": shock('kind = "demand"\nstart = 2020-01-01\ndays = 10\n')}, "never applies"),
}


def fourpl(*args, cwd: Path):
    env = dict(os.environ, COLUMNS="200")
    env.pop("FORCE_COLOR", None)
    return subprocess.run(FOURPL + list(args), capture_output=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize("argv, files, needle", list(CASES.values()), ids=list(CASES))
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, files, needle):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    if argv[0] == "run":            # a short run into a named folder, should a case not be refused
        argv = ["run", "--out", str(out), "--days", "3", *argv[1:]]
    r = fourpl(*argv, cwd=tmp_path)
    stderr = r.stderr.decode("utf-8", "replace")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, stderr[-3000:])
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert lines[0].startswith("error: "), lines[0][:300]
    assert needle in lines[0], lines[0][:1000]
    assert len(lines[0]) <= 1100, f"{len(lines[0])} characters"
    assert r.stdout.strip() == b"", r.stdout[:500]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"written: {sorted(set(after) - set(before))}"
