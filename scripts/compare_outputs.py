"""Are two commits' outputs byte-identical? Runs every built-in scenario at both and compares.

    .venv/bin/python scripts/compare_outputs.py --before e96d059 --after HEAD --days 60 --seed 1

Each commit is checked out into a temporary git worktree (``WORKTREE`` means the current working
tree, uncommitted changes included) and ``fourpl run`` is run there with this virtual
environment's interpreter (the checkout goes first on ``PYTHONPATH``, so its code is the code
that runs). Every file of every output folder is compared byte for byte; where Parquet files
differ the columns that differ are named, to help find the cause. Exit status 0 when everything
is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout(rev: str, into: Path) -> Path:
    """A detached worktree of ``rev`` (or the current tree for ``WORKTREE``)."""
    if rev == "WORKTREE":
        return REPO
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(into), rev], check=True)
    return into


def scenarios(tree: Path) -> list[str]:
    return sorted(p.stem for p in (tree / "experiments" / "scenarios").glob("*.toml"))


def run(tree: Path, scenario: str, days: int, seed: int, out: Path, sets=()) -> tuple[str, int, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "experiments.cli", "run", "--scenario", scenario, "--days", str(days),
           "--seed", str(seed), "--out", str(out), "--quiet"]
    for item in sets:
        cmd += ["--set", item]
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    return scenario, r.returncode, r.stderr.strip()[-2000:]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parquet_diff(a: Path, b: Path) -> str:
    import pandas as pd
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns):
        return f"columns differ: {sorted(set(x.columns) ^ set(y.columns))}"
    if len(x) != len(y):
        return f"rows {len(x)} vs {len(y)}"
    cols = [c for c in x.columns if not x[c].equals(y[c])]
    return f"values differ in {cols}" if cols else "same values, different bytes (metadata?)"


def compare(a: Path, b: Path) -> list[str]:
    problems = []
    fa = sorted(p.name for p in a.iterdir())
    fb = sorted(p.name for p in b.iterdir())
    if fa != fb:
        problems.append(f"files differ: {sorted(set(fa) ^ set(fb))}")
    for name in sorted(set(fa) & set(fb)):
        if sha(a / name) != sha(b / name):
            detail = parquet_diff(a / name, b / name) if name.endswith(".parquet") else "bytes differ"
            problems.append(f"{name}: {detail}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="a git revision, or WORKTREE")
    ap.add_argument("--after", default="WORKTREE", help="a git revision, or WORKTREE (default)")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenarios", nargs="*", help="default: every built-in scenario")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a scenario override for every run (repeatable)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fourpl-compare-") as tmp:
        tmp = Path(tmp)
        trees = {side: checkout(rev, tmp / f"tree-{side}") for side, rev in
                 (("before", args.before), ("after", args.after))}
        try:
            names = args.scenarios or sorted(set(scenarios(trees["before"])) | set(scenarios(trees["after"])))
            jobs = [(side, name) for name in names for side in ("before", "after")]
            with ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(lambda j: (j[0], *run(trees[j[0]], j[1], args.days, args.seed,
                                                                  tmp / j[0] / j[1], args.sets)), jobs))
            failed = [(side, name, err) for side, name, rc, err in results if rc != 0]
            bad = 0
            for side, name, err in failed:
                print(f"{name} ({side}): the run failed: {err}")
                bad += 1
            for name in names:
                if any(n == name for _, n, _ in failed):
                    continue
                problems = compare(tmp / "before" / name, tmp / "after" / name)
                files = len(list((tmp / "after" / name).iterdir()))
                if problems:
                    bad += 1
                    print(f"{name}: DIFFERENT: " + "; ".join(problems))
                else:
                    print(f"{name}: identical ({files} files)")
            print(f"{len(names) - bad} of {len(names)} scenarios byte-identical "
                  f"({args.before} vs {args.after}, {args.days} days, seed {args.seed}"
                  + (f", {' '.join(args.sets)}" if args.sets else "") + ")")
            return 0 if bad == 0 else 1
        finally:
            for side, rev in (("before", args.before), ("after", args.after)):
                if rev != "WORKTREE":
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                    str(trees[side])], check=False)


if __name__ == "__main__":
    sys.exit(main())
