"""The user's files are sacred: what fourpl run / sweep / report may write, replace and delete.

Every test runs the real ``fourpl`` command in a subprocess (as a user would) and compares the
user's files byte for byte before and after, or checks the processes by pid.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from experiments.outputs import MANIFEST, canonical, lock_path
from experiments.sweep import read_runs, run_sweep

FOURPL = [str(Path(sys.executable).parent / "fourpl")]
SMALL = ["--set", "merchants.exporters=3", "--set", "merchants.importers=1"]
SMALL_TOML = '[overrides]\n"merchants.exporters" = 3\n"merchants.importers" = 1\n'
RUN_FILES = {"summary.json", "timeseries.parquet", "parcels.parquet", "contracts.parquet", "config.toml",
             "ledger.parquet", "agents.parquet", "claims.parquet", "invoices.parquet", "returns.parquet",
             "settlements.parquet"}


def fourpl(*args, cwd=None, umask=None, timeout=600, env=None):
    env = dict(os.environ, COLUMNS="200", **(env or {}))
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(FOURPL + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, preexec_fn=pre)


def start(*args, cwd=None):
    """A fourpl command in the background (its own session, so signals reach only it)."""
    return subprocess.Popen(FOURPL + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


GATED = """
import os, sys, time
import market.model as mm
from experiments.cli import main
gate = sys.argv[1]
orig = mm.Marketplace.step
def step(self):
    orig(self)
    while not os.path.exists(gate):      # hold the run mid-way until the test opens the gate
        time.sleep(0.05)
mm.Marketplace.step = step
main(sys.argv[2:], prog_name="fourpl")
"""


def start_gated(gate: Path, *args):
    """The real fourpl command (in-process runs), held after its first simulated day until
    ``gate`` exists: it is certainly mid-run while the test looks at it, however slow the machine."""
    return subprocess.Popen([sys.executable, "-c", GATED, str(gate)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def one_line_error(r, *needles):
    """Exit status 2 and exactly one line on stderr holding every needle, no traceback."""
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def tree(root: Path) -> dict:
    """Everything under root, without following symlinks: file -> sha256, link -> its target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def wait_for(predicate, what: str, proc=None, deadline_s: float = 300):
    """Poll until predicate() holds (a liveness deadline, not a speed assertion)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the command ended before {what}: {proc.returncode} {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {deadline_s} s")


def staging_dirs(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if ".partial-" in p.name)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def user_files(root: Path) -> Path:
    """A user's folder: notes, a thesis chapter, an image."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("my notes\n")
    (root / "thesis").mkdir(exist_ok=True)
    (root / "thesis" / "chapter1.tex").write_text("\\chapter{One}\n")
    (root / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return root


def write_experiment(folder: Path, name="tiny", seed=1, days=3, replications=1, extra="") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{seed}.toml"
    path.write_text(f'name = "{name}"\ndays = {days}\nreplications = {replications}\nseed = {seed}\n'
                    f'{extra}\n{SMALL_TOML}')
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    r = fourpl("run", "--days", 3, "--seed", 2, "--out", out, "-q", *SMALL)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    out = folder / "out"
    run_sweep(write_experiment(folder), out, workers=1, progress=False)
    return out


# ------------------------------------------------------------------------------------------
# --overwrite replaces only what fourpl wrote
# ------------------------------------------------------------------------------------------
def test_run_overwrite_refuses_a_folder_fourpl_did_not_write(tmp_path):
    thesis = user_files(tmp_path / "thesis-folder")
    before = tree(tmp_path)
    r = fourpl("run", "--days", 3, "--out", thesis, "--overwrite", "-q", *SMALL)
    one_line_error(r, "did not write", "notes.txt")
    assert tree(tmp_path) == before


def test_overwrite_refuses_the_working_folder_and_its_parents(tmp_path):
    work = user_files(tmp_path / "home" / "project")
    before = tree(tmp_path)
    for out in (".", "..", str(tmp_path)):
        r = fourpl("run", "--days", 3, "--out", out, "--overwrite", "-q", *SMALL, cwd=work)
        one_line_error(r, "working folder")
    one_line_error(fourpl("run", "--days", 3, "--out", "./", "-q", *SMALL, cwd=work), "working folder")
    exp = write_experiment(tmp_path.parent / f"{tmp_path.name}-exp")
    r = fourpl("sweep", exp, "--out", ".", "--overwrite", "-q", cwd=work)
    one_line_error(r, "working folder")
    assert tree(tmp_path) == before


def test_overwrite_refuses_symlinks_and_leaves_their_targets(tmp_path, tiny_run):
    target = tmp_path / "real"
    shutil.copytree(tiny_run, target)
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "empty").mkdir()
    (tmp_path / "link-to-empty").symlink_to(tmp_path / "empty")
    before = tree(tmp_path)
    r = fourpl("run", "--days", 3, "--out", tmp_path / "link", "--overwrite", "-q", *SMALL)
    one_line_error(r, "symlink")
    r = fourpl("run", "--days", 3, "--out", tmp_path / "link-to-empty", "-q", *SMALL)
    one_line_error(r, "symlink")
    assert tree(tmp_path) == before


def test_manifest_lists_every_file_with_its_sha256(tiny_run):
    man = json.loads((tiny_run / MANIFEST).read_text())
    assert man["written_by"] == "fourpl run" and man["tool"] == "fourpl-market"
    assert set(man["files"]) == RUN_FILES
    assert {p.name for p in tiny_run.iterdir()} == RUN_FILES | {MANIFEST}
    for name, entry in man["files"].items():
        data = (tiny_run / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    text = (tiny_run / MANIFEST).read_text()
    assert str(tiny_run.parent) not in text and os.uname().nodename not in text     # no paths, no host


def test_overwrite_replaces_its_own_result_but_not_once_the_user_touched_it(tmp_path, tiny_run):
    out = tmp_path / "out"
    shutil.copytree(tiny_run, out)
    r = fourpl("run", "--days", 3, "--seed", 5, "--out", out, "--overwrite", "-q", *SMALL)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 5
    assert {p.name for p in out.iterdir()} == RUN_FILES | {MANIFEST}
    assert staging_dirs(tmp_path) == []
    # a note dropped into the result folder, an edited file, a file turned into a symlink
    outside = user_files(tmp_path / "elsewhere")
    cases = [("notes.txt", lambda: (out / "notes.txt").write_text("mine"), "notes.txt"),
             ("edited", lambda: (out / "summary.json").write_text("{}\n"), "summary.json"),
             ("symlink", lambda: ((out / "config.toml").unlink(), (out / "config.toml").symlink_to(outside / "notes.txt")),
              "config.toml")]
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)
    for label, spoil, needle in cases:
        shutil.rmtree(out)
        shutil.copytree(pristine, out)
        spoil()
        before = tree(tmp_path)
        r = fourpl("run", "--days", 3, "--out", out, "--overwrite", "-q", *SMALL)
        one_line_error(r, needle)
        assert tree(tmp_path) == before, label


def test_overwrite_recognises_a_result_folder_written_before_manifests(tmp_path, tiny_run):
    out = tmp_path / "old"
    shutil.copytree(tiny_run, out)
    (out / MANIFEST).unlink()
    (out / "invoices.parquet").unlink()        # written only since trade credit, after manifests
    (out / "returns.parquet").unlink()         # written only since returns, after manifests
    (out / "settlements.parquet").unlink()     # written only since currencies and payment (issue 13)
    r = fourpl("run", "--days", 3, "--out", out, "--overwrite", "-q", *SMALL)
    assert r.returncode == 0, r.stderr
    assert (out / MANIFEST).exists()


def test_same_seed_gives_the_same_manifest(tmp_path, tiny_run):
    r = fourpl("run", "--days", 3, "--seed", 2, "--out", tmp_path / "again", "-q", *SMALL)
    assert r.returncode == 0, r.stderr
    assert tree(tmp_path / "again") == tree(tiny_run)          # every file, the manifest too


def test_sweep_overwrite_replaces_only_a_sweep_folder(tmp_path, tiny_run):
    exp = write_experiment(tmp_path, seed=1)
    other = write_experiment(tmp_path, seed=2)
    out = tmp_path / "out"
    assert fourpl("sweep", exp, "--out", out, "--workers", 1, "-q").returncode == 0
    # its own sweep folder, a different experiment: replaced
    r = fourpl("sweep", other, "--out", out, "--workers", 1, "--overwrite", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "experiment.json").read_text())["experiment"]["seed"] == 2
    assert staging_dirs(tmp_path) == []
    # a note in the sweep folder, a run's folder, a user's folder: refused, untouched
    (out / "notes.txt").write_text("mine")
    run_copy = tmp_path / "a-run"
    shutil.copytree(tiny_run, run_copy)
    user = user_files(tmp_path / "user")
    before = tree(tmp_path)
    one_line_error(fourpl("sweep", exp, "--out", out, "--overwrite", "-q"), "notes.txt")
    one_line_error(fourpl("sweep", exp, "--out", run_copy, "--overwrite", "-q"), "fourpl run")
    one_line_error(fourpl("sweep", exp, "--out", user, "--overwrite", "-q"), "did not write")
    one_line_error(fourpl("run", "--days", 3, "--out", out, "--overwrite", "-q", *SMALL), "fourpl sweep")
    assert tree(tmp_path) == before
    # resuming writes into the folder: never through a symlink the user put there
    (out / "notes.txt").unlink()
    other_runs = user_files(tmp_path.parent / f"{tmp_path.name}-elsewhere")
    shutil.rmtree(out / "runs")
    (out / "runs").symlink_to(other_runs)
    before = tree(other_runs)
    one_line_error(fourpl("sweep", other, "--out", out, "-q"), "symlink")
    assert tree(other_runs) == before


# ------------------------------------------------------------------------------------------
# fourpl report writes only inside its own folder
# ------------------------------------------------------------------------------------------
def test_report_never_writes_through_symlinks(tmp_path, tiny_sweep):
    user = user_files(tmp_path / "user")
    linked_plots = tmp_path / "r1"
    linked_plots.mkdir()
    (linked_plots / "plots").symlink_to(user)
    linked_page = tmp_path / "r2"
    linked_page.mkdir()
    (linked_page / "report.md").symlink_to(user / "notes.txt")
    (tmp_path / "r3").symlink_to(user)
    before = tree(tmp_path)
    one_line_error(fourpl("report", tiny_sweep, "--out", linked_plots, "-q"), "plots")
    one_line_error(fourpl("report", tiny_sweep, "--out", linked_page, "-q"), "report.md")
    one_line_error(fourpl("report", tiny_sweep, "--out", tmp_path / "r3", "-q"), "symlink")
    one_line_error(fourpl("report", tiny_sweep, "--out", user, "-q"), "did not write")
    assert tree(tmp_path) == before


def test_report_replaces_its_own_report_until_edited(tmp_path, tiny_sweep):
    out = tmp_path / "rep"
    r = fourpl("report", tiny_sweep, "--out", out, "-q")
    assert r.returncode == 0, r.stderr
    first = tree(out)
    man = json.loads((out / MANIFEST).read_text())
    assert man["written_by"] == "fourpl report"
    assert set(man["files"]) == {k for k, v in first.items() if v != "dir"} - {MANIFEST}
    assert fourpl("report", tiny_sweep, "--out", out, "-q").returncode == 0
    assert tree(out) == first                                  # the same bytes again
    (out / MANIFEST).unlink()                                  # written before manifests: recognised too
    assert fourpl("report", tiny_sweep, "--out", out, "-q").returncode == 0
    assert tree(out) == first
    with open(out / "report.md", "a") as fh:
        fh.write("\nMy findings.\n")
    before = tree(tmp_path)
    one_line_error(fourpl("report", tiny_sweep, "--out", out, "-q"), "report.md")
    assert tree(tmp_path) == before


# ------------------------------------------------------------------------------------------
# Names from scenario and experiment files never lead outside the output folder
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escaped", "/ABSOLUTE/escaped", "..", "a/../../b"])
def test_a_scenario_name_cannot_lead_outside_results(tmp_path, name):
    if name.startswith("/"):
        name = str(tmp_path / "absolute-target")
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    scn = work / "mine.toml"
    scn.write_text(f'extends = "baseline"\nname = {json.dumps(name)}\n')
    r = fourpl("run", "--scenario", scn, "--days", 3, "-q", *SMALL, cwd=work)
    assert r.returncode in (0, 2), r.stderr              # a safe folder name, or refused in one line
    outside = {k for k in tree(tmp_path) if not k.startswith("a/b/work/")} - {"a", "a/b", "a/b/work"}
    assert outside == set(), outside
    written = {k for k in tree(work) if k != "mine.toml"}
    if r.returncode == 0:
        folders = [p for p in (work / "results").iterdir()]
        assert len(folders) == 1 and folders[0].name.endswith("-seed1") and not folders[0].name.startswith(".")
        assert all(k.startswith(f"results/{folders[0].name}") or k == "results" for k in written)
        assert {p.name for p in folders[0].iterdir()} == RUN_FILES | {MANIFEST}
    else:
        one_line_error(r)
        assert written == set()


def test_a_scenario_name_with_dots_stays_inside_the_sweep_folder(tmp_path):
    name = "../../../escaped"
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    (exp_dir / "mine.toml").write_text(f'extends = "baseline"\nname = {json.dumps(name)}\n')
    exp = exp_dir / "e.toml"
    exp.write_text(f'name = "dots"\ndays = 3\nreplications = 2\nseed = 4\nscenarios = ["mine.toml"]\n'
                   f'[outputs]\nparcels = true\ndaily = true\n{SMALL_TOML}')
    out = tmp_path / "x" / "y" / "out"
    r = fourpl("sweep", exp, "--out", out, "--workers", 1, "-q")
    assert r.returncode in (0, 2), r.stderr
    outside = {k for k in tree(tmp_path) if not k.startswith(("x/y/out/", "exp/"))} - {"x", "x/y", "x/y/out", "exp"}
    assert outside == set(), outside
    if r.returncode == 0:
        runs = read_runs(out)
        assert list(runs["scenario"]) == [name, name] and set(runs["status"]) == {"ok"}
        for kind in ("runs", "daily", "parcels"):
            parts = list((out / kind).iterdir())
            assert len(parts) == 1 and "/" not in parts[0].name and len(list(parts[0].iterdir())) == 2


# ------------------------------------------------------------------------------------------
# One command per output folder at a time
# ------------------------------------------------------------------------------------------
def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "out"
    gate = tmp_path.parent / f"{tmp_path.name}-gate"
    first = start_gated(gate, "run", "--days", 5, "--seed", 3, "--out", out, "-q", *SMALL)
    try:
        wait_for(lambda: staging_dirs(tmp_path), "staging folder", first)
        r = fourpl("run", "--days", 3, "--seed", 4, "--out", out, "--overwrite", "-q", *SMALL)
        one_line_error(r, "being written by another fourpl command")
        r = fourpl("sweep", write_experiment(tmp_path.parent / f"{tmp_path.name}-e"), "--out", out, "-q")
        one_line_error(r, "being written by another fourpl command")
        gate.touch()
        assert first.wait(timeout=900) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert json.loads((out / "summary.json").read_text())["seed"] == 3      # the first one's, whole
    assert staging_dirs(tmp_path) == []


def test_a_second_sweep_into_the_same_folder_is_refused(tmp_path):
    exp = write_experiment(tmp_path.parent / f"{tmp_path.name}-e", replications=2)
    out = tmp_path / "out"
    gate = tmp_path.parent / f"{tmp_path.name}-gate"
    first = start_gated(gate, "sweep", exp, "--out", out, "--workers", 1, "-q")
    try:
        wait_for(lambda: out.exists(), "sweep folder", first)
        r = fourpl("sweep", exp, "--out", out, "--workers", 1, "-q")
        one_line_error(r, "being written by another fourpl command")
        gate.touch()
        assert first.wait(timeout=900) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert len(read_runs(out)) == 2


def test_a_report_into_a_locked_folder_is_refused(tmp_path, tiny_sweep):
    from filelock import FileLock
    out = tmp_path / "rep"
    with FileLock(lock_path(canonical(out)), timeout=0):
        one_line_error(fourpl("report", tiny_sweep, "--out", out, "-q"), "being written by another")
    assert not out.exists()
    assert fourpl("report", tiny_sweep, "--out", out, "-q").returncode == 0


# ------------------------------------------------------------------------------------------
# Killed and stopped commands
# ------------------------------------------------------------------------------------------
def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    gate = tmp_path.parent / f"{tmp_path.name}-gate"            # never opened: stopped mid-run
    proc = start_gated(gate, "run", "--days", 5, "--out", out, "-q", *SMALL)
    wait_for(lambda: (tmp_path / "new" / "deeper").exists() and staging_dirs(tmp_path / "new" / "deeper"),
             "staging folder", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) != 0
    assert list(tmp_path.iterdir()) == []          # no staging folder, no parents it created


def test_a_killed_commands_staging_folder_is_removed_by_the_next_command(tmp_path):
    user = user_files(tmp_path.parent / f"{tmp_path.name}-user")
    gate = tmp_path.parent / f"{tmp_path.name}-gate"            # never opened: both stay mid-run
    live = start_gated(gate, "run", "--days", 5, "--out", tmp_path / "b", "-q", *SMALL)
    try:
        wait_for(lambda: staging_dirs(tmp_path), "staging folder", live)
        [live_staging] = staging_dirs(tmp_path)
        killed = start_gated(gate, "run", "--days", 5, "--out", tmp_path / "a", "-q", *SMALL)
        wait_for(lambda: len(staging_dirs(tmp_path)) == 2, "second staging folder", killed)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        [stale] = [p for p in staging_dirs(tmp_path) if p != live_staging]
        (stale / "link-to-user").symlink_to(user)            # deleting must not follow it
        before = tree(user)
        r = fourpl("run", "--days", 3, "--out", tmp_path / "c", "-q", *SMALL)
        assert r.returncode == 0, r.stderr
        assert staging_dirs(tmp_path) == [live_staging]  # the dead one's gone, the live one's kept
        assert tree(user) == before
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()


def _descendants(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _workers(pid: int) -> list[int]:
    out = []
    for c in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(c.cmdline()):
                out.append(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_pool_workers_end_with_the_sweeps_main_process(tmp_path, sig):
    exp = write_experiment(tmp_path, days=150, replications=4)
    out = tmp_path / "out"
    proc = start("sweep", exp, "--out", out, "--workers", 2, "-q")
    try:
        wait_for(lambda: len(_workers(proc.pid)) >= 2, "two pool workers", proc)
        family = _descendants(proc.pid)
    finally:
        os.kill(proc.pid, sig)                   # the main process only, not its group
    code = proc.wait(timeout=300)
    assert code == (-9 if sig == signal.SIGKILL else 143), proc.stderr.read()
    end = time.monotonic() + 60                  # a deadline for noticing, not a speed test
    while time.monotonic() < end and any(alive(p) for p in family):
        time.sleep(0.2)
    assert not [p for p in family if alive(p)], "worker processes outlived the sweep"
    if sig == signal.SIGTERM:
        # stopped cleanly: no half-written files; a new run of the command resumes (or starts)
        assert not list(tmp_path.rglob(".*"))
        r = fourpl("sweep", exp, "--out", out, "--workers", 2, "-q")
        assert r.returncode == 0, r.stderr
        assert len(read_runs(out)) == 4


# ------------------------------------------------------------------------------------------
# Modes, impossible places, full and read-only disks
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, umask", [("run", 0o022), ("run", 0o077), ("run", 0o002), ("sweep", 0o022),
                                            ("report", 0o002)],
                         ids=["run-022", "run-077", "run-002", "sweep-022", "report-002"])
def test_result_folders_respect_the_umask(tmp_path, command, umask, tiny_sweep):
    args = {"run": ["run", "--days", 3, *SMALL], "report": ["report", tiny_sweep],
            "sweep": ["sweep", write_experiment(tmp_path.parent / f"{tmp_path.name}-e"), "--workers", 1]}[command]
    r = fourpl(*args, "--out", tmp_path / "out", "-q", umask=umask)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask      # not mkdtemp's 0700
    first = {"run": "summary.json", "sweep": "experiment.json", "report": "report.md"}[command]
    assert stat.S_IMODE((tmp_path / "out" / first).stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("command, place", [("run", "under-a-file"), ("sweep", "under-a-file"),
                                            ("report", "under-a-file"), ("run", "a-file"), ("report", "a-file"),
                                            ("run", "proc"), ("sweep", "proc"), ("run", "sys"), ("report", "sys")])
def test_unusable_places_are_one_line_and_touch_nothing(tmp_path, tiny_sweep, command, place):
    (tmp_path / "plain.txt").write_text("mine")
    out = {"under-a-file": tmp_path / "plain.txt" / "out", "a-file": tmp_path / "plain.txt",
           "proc": Path("/proc") / f"fourpl-test-{os.getpid()}" / "out",
           "sys": Path("/sys") / f"fourpl-test-{os.getpid()}"}[place]
    before = tree(tmp_path)
    args = {"run": ["run", "--days", 3, *SMALL], "report": ["report", tiny_sweep],
            "sweep": ["sweep", write_experiment(tmp_path.parent / f"{tmp_path.name}-e"), "--workers", 1]}[command]
    r = fourpl(*args, "--out", out, "-q")
    one_line_error(r)
    assert tree(tmp_path) == before
    assert place == "a-file" or not out.exists()


def _unshare_ok() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "true"], capture_output=True)
    return probe.returncode == 0


def _in_tmpfs(script: str, size: str, ro: bool = False) -> dict:
    """Run a bash script with $M a fresh tmpfs of the given size, in a private mount namespace;
    it prints a JSON object as its last line."""
    mnt = f"/tmp/fourpl-tmpfs-{os.getpid()}"
    full = textwrap.dedent(f"""
        set -u
        M={mnt}
        mkdir -p "$M" && mount -t tmpfs -o size={size}{',ro' if ro else ''} tmpfs "$M" || exit 99
        """) + textwrap.dedent(script)
    p = subprocess.run(["unshare", "--mount", "--map-root-user", "--propagation", "private", "bash", "-c", full],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, FOURPL=FOURPL[0], PY=sys.executable))
    with_dir = Path(mnt)
    if with_dir.exists():
        with_dir.rmdir()
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


RUN_IN_TMPFS = """
    "$FOURPL" {args} > /tmp/fourpl-out-$$ 2> /tmp/fourpl-err-$$
    rc=$?
    "$PY" - "$rc" "$M" /tmp/fourpl-err-$$ <<'EOF'
import json, os, sys
rc, m, err = sys.argv[1:]
print(json.dumps({{"rc": int(rc), "stderr": open(err).read(), "left": sorted(os.listdir(m))}}))
EOF
    rm -f /tmp/fourpl-out-$$ /tmp/fourpl-err-$$
"""


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare with a mount namespace (to mount a small tmpfs)")
@pytest.mark.parametrize("command", ["run", "sweep", "report"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tiny_sweep, command):
    args = {"run": "run --days 5 -q --set merchants.exporters=3 --set merchants.importers=1 --out $M/a/out",
            "sweep": f"sweep {write_experiment(tmp_path, days=20, replications=2)} --workers 1 -q --out $M/a/out",
            "report": f"report {tiny_sweep} -q --out $M/a/out"}[command]
    res = _in_tmpfs(RUN_IN_TMPFS.format(args=args), size="48k")
    lines = [ln for ln in res["stderr"].splitlines() if ln.strip()]
    assert res["rc"] == 2 and len(lines) == 1, res
    assert "no space left writing" in lines[0], lines[0]
    assert res["left"] == [], res                     # not the staging folder, not the parents


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare with a mount namespace (to mount a small tmpfs)")
def test_a_read_only_file_system_is_one_line(tmp_path):
    args = "run --days 3 -q --set merchants.exporters=3 --set merchants.importers=1 --out $M/out"
    res = _in_tmpfs(RUN_IN_TMPFS.format(args=args), size="1m", ro=True)
    lines = [ln for ln in res["stderr"].splitlines() if ln.strip()]
    assert res["rc"] == 2 and len(lines) == 1 and "read-only file system" in lines[0], res
    assert res["left"] == []


INJECT = """
import errno, sys
import pandas as pd
import pyarrow.parquet as pq
from experiments.cli import main
target, code = sys.argv[1], int(sys.argv[2])
def fail(*a, **k):
    raise OSError(code, "injected")
if target == "parcels":
    pq.ParquetWriter.write_table = fail
elif target == "timeseries":
    pd.DataFrame.to_parquet = fail
elif target == "sweep-row":         # a run's row in runs/ (its daily series is written first)
    orig = pq.write_table
    def fail_rows(table, where, *a, **k):
        if "/runs/" in str(where):
            fail()
        return orig(table, where, *a, **k)
    pq.write_table = fail_rows
main(sys.argv[3:], prog_name="fourpl")
"""


@pytest.mark.parametrize("target, code, message, file", [
    ("parcels", errno.ENOSPC, "no space left", "parcels.parquet"),
    ("timeseries", errno.EROFS, "read-only file system", "timeseries.parquet"),
    ("parcels", errno.EDQUOT, "disk quota exceeded", "parcels.parquet"),
])
def test_write_errors_injected_at_the_write_name_the_file(tmp_path, target, code, message, file):
    out = tmp_path / "new" / "out"
    p = subprocess.run([sys.executable, "-c", INJECT, target, str(code), "run", "--days", "3", "-q", *SMALL,
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    line = one_line_error(p, message, f"writing {file}")
    assert str(out) in line
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_that_fails_before_its_first_run_puts_the_old_folder_back(tmp_path):
    exp = write_experiment(tmp_path, seed=1)
    out = tmp_path / "out"
    assert fourpl("sweep", exp, "--out", out, "--workers", 1, "-q").returncode == 0
    before = tree(tmp_path)
    other = write_experiment(tmp_path.parent / f"{tmp_path.name}-e", seed=2)
    p = subprocess.run([sys.executable, "-c", INJECT, "sweep-row", str(errno.ENOSPC), "sweep", str(other),
                        "--out", str(out), "--overwrite", "--workers", "1", "-q"],
                       capture_output=True, text=True, timeout=600)
    one_line_error(p, "no space left writing")
    assert tree(tmp_path) == before                  # the old sweep, as it was
    # and a new sweep folder that fails the same way leaves nothing
    p = subprocess.run([sys.executable, "-c", INJECT, "sweep-row", str(errno.ENOSPC), "sweep", str(other),
                        "--out", str(tmp_path / "p" / "q"), "--workers", "1", "-q"],
                       capture_output=True, text=True, timeout=600)
    one_line_error(p, "no space left writing", "runs/scenario=baseline/run-000000.parquet")
    assert tree(tmp_path) == before


def test_a_failed_run_leaves_no_parent_folders(tmp_path):
    out = tmp_path / "x" / "y" / "out"
    code = ("import market.model as mm, sys\n"
            "from experiments.cli import main\n"
            "orig = mm.Marketplace.step\n"
            "def boom(self):\n"
            "    orig(self)\n"
            "    if self.day == 2: raise RuntimeError('power cut')\n"
            "mm.Marketplace.step = boom\n"
            "main(sys.argv[1:], prog_name='fourpl')\n")
    p = subprocess.run([sys.executable, "-c", code, "run", "--days", "5", "-q", *SMALL, "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode != 0 and "power cut" in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_dask_scheduler_leaves_nothing(tmp_path):
    pytest.importorskip("dask.distributed")
    exp = write_experiment(tmp_path.parent / f"{tmp_path.name}-e")
    r = fourpl("sweep", exp, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:1",
               "--out", tmp_path / "a" / "b" / "out", "-q", env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"})
    one_line_error(r, "Dask scheduler")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# The pieces, in this process
# ------------------------------------------------------------------------------------------
def test_a_signal_during_the_swap_is_held_until_it_is_done():
    from experiments.outputs import Terminated, signals_deferred, terminate_as_interrupt
    finished = False
    with pytest.raises(Terminated), terminate_as_interrupt():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)                  # the handler would have run by now
            finished = True
    assert finished
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL      # put back as it was


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "..", "a b/c%d", "ünï", "=", "x" * 300],
                         ids=["dots", "absolute", "dotdot", "slash-percent", "unicode", "equals", "long"])
def test_names_from_user_text_are_one_safe_component(name, tmp_path):
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from experiments.outputs import default_run_folder, partition_dir
    folder = default_run_folder(name, 3)
    assert folder.parent == Path("results") and folder.name.endswith("-seed3")
    assert not folder.name.startswith((".", "-")) and "/" not in folder.name and len(folder.name) < 120
    part = partition_dir("scenario", name)
    assert "/" not in part and part.startswith("scenario=")
    if len(os.fsencode(part)) < 250:                # a name the file system can hold: read back as given
        (tmp_path / part).mkdir()
        pq.write_table(pa.table({"x": [1]}), tmp_path / part / "run-000000.parquet")
        ds = pads.dataset(tmp_path, format="parquet",
                          partitioning=pads.partitioning(pa.schema([("scenario", pa.string())]), flavor="hive"))
        assert ds.to_table().column("scenario").to_pylist() == [name]
        assert [p.name for p in tmp_path.iterdir()] == [part]
