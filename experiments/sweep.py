"""Sweeps: run every run of an experiment, on a local process pool or a Dask cluster.

``fourpl sweep EXPERIMENT.toml --out DIR`` writes, as each run finishes:

``DIR/runs/scenario=<name>/run-<id>.parquet``
    one row per run: run id, design point and its label, replication, seed, the design's
    parameter values (``param.<key>``), status (``ok`` / ``failed``) and error text, and the
    run's summary flattened (``on_time_rate``, ``by_channel.<channel>.<figure>``,
    ``money_usd.<kind>``, ...; with ``outputs.by_market`` also ``by_market.<market>.<figure>``
    and ``by_market_channel.<market>.<channel>.<figure>``). ``command`` reproduces the run alone.
``DIR/daily/scenario=<name>/run-<id>.parquet``
    the run's daily series (when ``outputs.daily``), with its run id.
``DIR/parcels/scenario=<name>/run-<id>.parquet``
    the run's parcels (when ``outputs.parcels``; on a Dask cluster the workers write these
    themselves, so DIR must then be on a file system they share). On a cluster every worker
    needs this package installed (the same version); runs travel to them as plain data.
``DIR/experiment.json``, ``DIR/experiment.toml``, ``DIR/design.parquet``
    the resolved experiment, its source, and the plan of every run (done or not).
``DIR/log.jsonl``
    one line per finished run: wall time, start and end, worker, and a failed run's traceback.
``DIR/fourpl-manifest.json``
    marks the folder as a sweep's (``--overwrite`` replaces only such a folder, and only while
    it holds nothing but a sweep's files; see :mod:`experiments.outputs`).

``<name>`` is the scenario's name percent-encoded (``/``, ``%``, spaces ... escaped), so every
partition is one folder inside DIR, and pyarrow reads the name back unchanged.

Every file is written under a hidden temporary name and renamed into place, and a run's row is
written last, so a sweep that is interrupted and started again skips exactly the runs whose
rows exist. A run that raises is recorded as failed, with its error, and the sweep goes on
(and ``fourpl sweep`` then exits with status 1, saying how many failed). A new sweep folder is
prepared in a hidden staging folder and moved into place once its engine is up; if the sweep
stops before its first run is recorded, it is taken back (and a replaced folder put back), so
a failed command leaves nothing behind. The folder is locked while a sweep writes into it; pool
workers exit when the main process dies (even by ``kill -9``), and SIGTERM stops a sweep like
Ctrl-C.
Results depend only on the experiment (each run's seed comes from the root seed and the run's
place in the plan), never on the number or kind of workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import logging
import math
import os
import platform
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from tqdm import tqdm

from experiments.designs import (Experiment, ExperimentError, Plan, RunSpec, _jsonable, load_experiment,
                                 plan_runs)
from experiments.outputs import (OutputFolder, Terminated, partition_dir, replace_problem, slug,
                                 sweep_links, write_error, writing)
from experiments.run import OutputError, package_versions
from market.scenario import apply_overrides, validate

ENGINES = ("process", "dask")
PARTITION = pads.partitioning(pa.schema([("scenario", pa.string())]), flavor="hive")
MARKET_FIGURES = ("parcels_created", "parcels_delivered", "parcels_lost", "on_time_rate",
                  "mean_lead_time_days", "p95_lead_time_days", "mean_logistics_cost", "mean_duty",
                  "mean_landed_cost", "fourpl_share")


class SweepError(OutputError):
    """The sweep cannot go on (its output folder, or its workers)."""


# ------------------------------------------------------------------------------------------
# One run, in a worker
# ------------------------------------------------------------------------------------------
@dataclass
class RunTask:
    """Everything a worker needs for one run (plain data, so it pickles to any worker)."""

    run_id: int
    scenario: str
    scenario_data: dict
    overrides: dict[str, Any]
    days: int
    seed: int
    keep_daily: bool = True
    by_market: bool = False
    parcels_path: str | None = None       # final path of the run's parcels (None: not kept)


@dataclass
class RunOutcome:
    run_id: int
    status: str                            # "ok" or "failed"
    summary: dict = field(default_factory=dict)
    daily: pd.DataFrame | None = None
    error: str = ""
    traceback: str = ""
    wall_seconds: float = 0.0
    started: str = ""
    finished: str = ""
    worker: str = ""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def execute_run(task: RunTask) -> RunOutcome:
    """Build the scenario, run the model for its days and return its figures; never raises.

    The model is built exactly as ``fourpl run --seed`` builds it, so the recorded seed
    reproduces the run.
    """
    from market.model import Marketplace

    started, t0 = _now(), time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    staging = tmp_parcels = None
    try:
        config = validate(apply_overrides(task.scenario_data, task.overrides), f"scenario '{task.scenario}'")
        if task.parcels_path is not None:
            final = Path(task.parcels_path)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = final.with_name(f".{final.name}.{os.getpid()}.partial")
            parcels_file = staging
        elif task.by_market:
            fd, tmp_parcels = tempfile.mkstemp(prefix="fourpl-parcels-", suffix=".parquet")
            os.close(fd)
            parcels_file = Path(tmp_parcels)
        else:
            parcels_file = None
        model = Marketplace(config, rng=task.seed, parcels_path=parcels_file)
        for _ in range(task.days):
            model.step()
        summary = model.finish()
        summary["seed"] = task.seed
        if task.by_market:
            summary["by_market"], summary["by_market_channel"] = market_figures(parcels_file)
        daily = None
        if task.keep_daily:
            daily = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
            daily.insert(0, "run_id", task.run_id)
        if staging is not None:
            os.replace(staging, task.parcels_path)
            staging = None
        return RunOutcome(task.run_id, "ok", summary, daily, wall_seconds=time.perf_counter() - t0,
                          started=started, finished=_now(), worker=worker)
    except Exception as exc:   # a failed run is a result, not the end of the sweep
        return RunOutcome(task.run_id, "failed", error=error_text(exc), traceback=traceback.format_exc(),
                          wall_seconds=time.perf_counter() - t0, started=started, finished=_now(),
                          worker=worker)
    finally:
        for p in (staging, tmp_parcels):
            if p is not None and Path(p).exists():
                Path(p).unlink()


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:1997] + "..."


def _quantile_inverted(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q, method="inverted_cdf")) if x.size else float("nan")


def _figures(df: pd.DataFrame) -> dict:
    """The summary's figures for a set of parcels, with the engine's definitions."""
    created = len(df)
    delivered = df["status"] == "delivered"
    lost = df["status"] == "lost"
    nd, nl = int(delivered.sum()), int(lost.sum())
    finished = nd + nl
    d = df[delivered]
    logistics = (d["price_usd"] + d["upstream_usd"]).sum()
    duty = (d["duty_usd"] + d["upstream_duty_usd"]).sum()
    lead = d["lead_time_days"].to_numpy()
    return {
        "parcels_created": created,
        "parcels_delivered": nd,
        "parcels_lost": nl,
        "on_time_rate": float((df["on_time"] & delivered).sum() / finished) if finished else None,
        "mean_lead_time_days": float(lead.mean()) if nd else None,
        "p95_lead_time_days": _quantile_inverted(lead, 0.95) if nd else None,
        "mean_logistics_cost": float(logistics / nd) if nd else None,
        "mean_duty": float(duty / nd) if nd else None,
        "mean_landed_cost": float((logistics + duty) / nd) if nd else None,
        "fourpl_share": float((df["integrator"] >= 0).sum() / created) if created else None,
    }


def market_figures(parcels_file: str | Path) -> tuple[dict, dict]:
    """Per-market and per-(market, channel) figures from a run's parcels file."""
    cols = ["market", "channel", "status", "lead_time_days", "on_time", "integrator", "price_usd",
            "upstream_usd", "duty_usd", "upstream_duty_usd"]
    if not Path(parcels_file).exists() or Path(parcels_file).stat().st_size == 0:
        return {}, {}
    df = pq.read_table(parcels_file, columns=cols).to_pandas()
    for c in ("market", "channel", "status"):
        df[c] = df[c].astype(str)
    by_market = {m: _figures(g) for m, g in df.groupby("market", sort=True)}
    by_mc = {}
    for (m, ch), g in df.groupby(["market", "channel"], sort=True):
        by_mc.setdefault(m, {})[ch] = _figures(g)
    return by_market, by_mc


# ------------------------------------------------------------------------------------------
# The run table row
# ------------------------------------------------------------------------------------------
def flatten_summary(summary: dict) -> dict[str, Any]:
    """``summary.json`` as flat columns; ``mean_landed_cost`` (logistics + duty) is added."""
    out: dict[str, Any] = {}

    def walk(prefix: str, d: dict):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            else:
                out[key] = v
    walk("", {k: v for k, v in summary.items() if k not in ("scenario", "seed")})
    for key in [k for k in out if k.endswith("mean_logistics_cost")]:
        duty_key = key[: -len("mean_logistics_cost")] + "mean_duty"
        landed = key[: -len("mean_logistics_cost")] + "mean_landed_cost"
        if landed not in out and out.get(key) is not None and out.get(duty_key) is not None:
            out[landed] = out[key] + out[duty_key]
        elif landed not in out:
            out[landed] = None
    return out


def _param_column(values: list[Any]):
    """How a design parameter is stored: as numbers, text, or JSON text (lists, tables)."""
    if all(isinstance(v, bool) for v in values):
        return pa.bool_(), bool
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64(), int
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64(), float
    if all(isinstance(v, str) for v in values):
        return pa.string(), str
    return pa.string(), lambda v: json.dumps(_jsonable(v))


def _arrow_value(v):
    if isinstance(v, bool):
        return pa.bool_(), v
    if isinstance(v, (int, np.integer)):
        return pa.int64(), int(v)
    if v is None or isinstance(v, (float, np.floating)):
        return pa.float64(), None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return pa.string(), str(v)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


def reproduce_command(plan: Plan, run: RunSpec) -> str:
    """The ``fourpl run`` command that runs this run alone, with the same figures."""
    args = ["fourpl", "run", "--scenario", run.source, "--days", str(plan.days[run.scenario]),
            "--seed", str(run.seed)]
    for k, v in plan.overrides_of(run).items():
        args += ["--set", f"{k}={_toml_value(v)}"]
    return shlex.join(args)


def run_row(plan: Plan, run: RunSpec, outcome: RunOutcome) -> pa.Table:
    """The run's row of the run table (no timings, so it is the same whoever ran it)."""
    names, types, values = [], [], []

    def add(name, typ, value):
        names.append(name)
        types.append(typ)
        values.append(value)
    add("run_id", pa.int64(), run.run_id)
    add("point", pa.int64(), run.point)
    add("replication", pa.int64(), run.replication)
    add("seed", pa.int64(), run.seed)
    add("label", pa.string(), run.label)
    add("status", pa.string(), outcome.status)
    add("error", pa.string(), outcome.error)
    add("days", pa.int64(), plan.days[run.scenario])
    for p in plan.experiment.design.parameters:
        typ, conv = _param_column([pt[p.key] for pt in plan.points.values])
        add(f"param.{p.key}", typ, conv(run.params[p.key]))
    add("command", pa.string(), reproduce_command(plan, run))
    for k, v in flatten_summary(outcome.summary).items():
        if k == "days":
            continue
        typ, val = _arrow_value(v)
        add(k, typ, val)
    arrays = [pa.array([v], type=t) for v, t in zip(values, types)]
    return pa.Table.from_arrays(arrays, names=names)


# ------------------------------------------------------------------------------------------
# The output folder
# ------------------------------------------------------------------------------------------
def _part(out: Path, kind: str, run: RunSpec) -> Path:
    """Where a run's file goes: one partition folder per scenario, whatever its name."""
    return out / kind / partition_dir("scenario", run.scenario) / f"run-{run.run_id:06d}.parquet"


def _atomic(path: Path, write, where: str | None = None):
    """``write(tmp)`` a hidden temporary file, then rename it into place; on an error the
    temporary file is removed and the error is one line naming the file (in ``where``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        out = path.parent
        while out.name.startswith("scenario=") or out.name in ("runs", "daily", "parcels"):
            out = out.parent
        raise SweepError(str(write_error(exc, path.relative_to(out).as_posix(), where or out))) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(table: pa.Table, path: Path, where: str | None = None):
    """Write a Parquet file under a hidden temporary name, then rename it into place."""
    _atomic(path, lambda tmp: pq.write_table(table, tmp), where)


def _write_text_atomic(path: Path, text: str, where: str | None = None):
    _atomic(path, lambda tmp: tmp.write_text(text), where)


def finished_runs(out: Path) -> dict[int, str]:
    """Run id -> status of every run whose row is in the output folder."""
    done = {}
    root = Path(out) / "runs"
    if not root.exists():
        return done
    for f in root.glob("scenario=*/run-*.parquet"):
        rid = int(f.stem.split("-")[1])
        status = pq.read_table(f, columns=["status"]).column(0)[0].as_py()
        done[rid] = status
    return done


def design_table(plan: Plan) -> pa.Table:
    """The plan: one row per run, with its seed and parameters (and unit coordinates if sampled)."""
    exp = plan.experiment
    cols: dict[str, list] = {"run_id": [], "scenario": [], "point": [], "replication": [], "seed": [],
                             "label": []}
    for r in plan.runs:
        cols["run_id"].append(r.run_id)
        cols["scenario"].append(r.scenario)
        cols["point"].append(r.point)
        cols["replication"].append(r.replication)
        cols["seed"].append(r.seed)
        cols["label"].append(r.label)
    arrays = {k: pa.array(v) for k, v in cols.items()}
    for j, p in enumerate(exp.design.parameters):
        typ, conv = _param_column([pt[p.key] for pt in plan.points.values])
        arrays[f"param.{p.key}"] = pa.array([conv(r.params[p.key]) for r in plan.runs], type=typ)
        if plan.points.unit is not None:
            arrays[f"unit.{p.key}"] = pa.array([float(plan.points.unit[r.point, j]) for r in plan.runs])
    return pa.table(arrays)


def write_sweep_files(folder: Path, plan: Plan, source_text: str | None, source_path: str | None,
                      out_text: str):
    """The files of a new sweep folder: the plan, the experiment's source and its description."""
    exp = plan.experiment
    info = {
        "name": exp.name, "description": exp.description, "fingerprint": plan.fingerprint,
        "created": _now(), "runs": len(plan.runs), "points": len(plan.points),
        "scenarios": {name: {"days": plan.days[name], "source": next(r.source for r in plan.runs if r.scenario == name)}
                      for name in plan.days},
        "experiment_file": source_path, "out": out_text,
        "experiment": exp.model_dump(mode="json"), "versions": package_versions(),
        "python": platform.python_version(),
    }
    write_atomic(design_table(plan), folder / "design.parquet", out_text)
    if source_text is not None:
        _write_text_atomic(folder / "experiment.toml", source_text, out_text)
    _write_text_atomic(folder / "experiment.json", json.dumps(_jsonable(info), indent=2) + "\n", out_text)


def open_output(folder: OutputFolder, plan: Plan, overwrite: bool) -> bool:
    """Check the output folder; True if it holds this experiment already (a resume)."""
    state = folder.state()
    if state != "full":
        return False
    if overwrite:
        folder.check_replaceable()
        return False
    meta = folder.path / "experiment.json"
    if not meta.is_file() or meta.is_symlink():
        hint = ("use --overwrite to replace it" if replace_problem(folder.path, "sweep") is None
                else "choose another --out")
        raise SweepError(f"output folder '{folder.display}' is not empty and holds no sweep ({hint})")
    try:
        old = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"output folder '{folder.display}': its experiment.json cannot be read ({exc})") from None
    if not isinstance(old, dict) or old.get("fingerprint") != plan.fingerprint:
        name = old.get("name") if isinstance(old, dict) else None
        raise SweepError(f"output folder '{folder.display}' holds a different experiment ('{name}' "
                         "or other scenarios, design or seed); use another --out or --overwrite")
    links = sweep_links(folder.path)
    if links:
        raise SweepError(f"output folder '{folder.display}' holds symlinks where the sweep writes "
                         f"({', '.join(links[:3])}); fourpl does not write through symlinks")
    return True


def _clean_partials(out: Path):
    for kind in ("runs", "daily", "parcels"):
        root = out / kind
        if root.exists():
            for f in list(root.glob("scenario=*/.*")):
                if f.name.endswith((".tmp", ".partial")):
                    f.unlink(missing_ok=True)


def record_outcome(out: Path, plan: Plan, run: RunSpec, outcome: RunOutcome):
    """Write a finished run: its daily series, its line in the log, then its row (the row marks
    it done). A sweep killed between the log line and the row leaves a line for a run that will
    run again; :func:`reconcile_log` drops it when the sweep resumes, so the log has exactly one
    line per recorded run."""
    if outcome.status == "ok" and outcome.daily is not None:
        write_atomic(pa.Table.from_pandas(outcome.daily, preserve_index=False), _part(out, "daily", run))
    entry = {"run_id": run.run_id, "scenario": run.scenario, "status": outcome.status,
             "started": outcome.started, "finished": outcome.finished,
             "wall_seconds": round(outcome.wall_seconds, 4), "worker": outcome.worker}
    if outcome.status != "ok":
        entry["error"] = outcome.error
        entry["traceback"] = outcome.traceback
    try:
        with writing("log.jsonl", out), open(out / "log.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OutputError as exc:
        raise SweepError(str(exc)) from None
    write_atomic(run_row(plan, run, outcome), _part(out, "runs", run))


def reconcile_log(out: Path, recorded: dict[int, str]):
    """Keep one log line per recorded run (the last), and none for runs without a row (killed
    between their log line and their row) or cut short by a kill mid-write."""
    log = out / "log.jsonl"
    if not log.exists():
        return
    kept: dict[int, str] = {}
    for line in log.read_text().splitlines():
        try:
            rid = int(json.loads(line)["run_id"])
        except (ValueError, KeyError, TypeError):
            continue                                    # a line cut short by a kill
        if rid in recorded:
            kept[rid] = line
    text = "".join(line + "\n" for line in kept.values())
    if text != log.read_text():
        _write_text_atomic(log, text, "log.jsonl")


# ------------------------------------------------------------------------------------------
# Engines: each yields outcomes as runs finish
# ------------------------------------------------------------------------------------------
def _failed(task: RunTask, exc: BaseException, worker: str = "") -> RunOutcome:
    return RunOutcome(task.run_id, "failed", error=error_text(exc),
                      traceback="".join(traceback.format_exception(exc)), started=_now(), finished=_now(),
                      worker=worker)


def _inline(tasks: list[RunTask]) -> Iterator[RunOutcome]:
    for t in tasks:
        yield execute_run(t)


PARENT_POLL_SECONDS = 1.0


def _exit_with_parent(parent_pid: int):
    """In a pool worker: end this process when the sweep's main process is gone, whether it
    was killed by SIGKILL or ended any other way. Linux delivers SIGKILL at once
    (PR_SET_PDEATHSIG); everywhere a watchdog thread notices the new parent within a second."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:       # the parent died before the line above
        os._exit(1)

    def watch():
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)
    threading.Thread(target=watch, name="fourpl-parent-watch", daemon=True).start()


def _stop_pool(pool: ProcessPoolExecutor):
    """Drop queued runs and end the running ones now (their partial files are cleaned on resume)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def _process_pool(tasks: list[RunTask], workers: int) -> Iterator[RunOutcome]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(execute_run, t): t for t in tasks}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except BrokenProcessPool:
                raise SweepError("a worker process died (out of memory?); start the sweep again to resume") from None
            except Exception as exc:     # the outcome could not be sent back (e.g. pickling)
                yield _failed(futures[fut], exc, "process pool")
    except BaseException:
        # interrupted, stopped or failed: drop queued runs and end the running ones
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: str | None):
    """A Dask client (of the scheduler, or of a local cluster), closed on leaving."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ExperimentError("--engine dask needs dask.distributed: pip install 'fourpl-market[dask]'") from None
    cluster = None
    try:
        if scheduler:     # waits up to Dask's connect timeout (30 s; DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)
            client = Client(scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect", "30s"))
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise SweepError(f"cannot reach the Dask scheduler {scheduler!r}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask(tasks: list[RunTask], client, key_prefix: str) -> Iterator[RunOutcome]:
    from dask.distributed import as_completed as dask_completed
    futures = {client.submit(execute_run, t, key=f"{key_prefix}-run-{t.run_id}", pure=False): t
               for t in tasks}
    for fut in dask_completed(list(futures)):
        task = futures[fut]
        try:
            outcome = fut.result()
        except Exception as exc:          # the worker died or the task could not run
            outcome = _failed(task, exc, "dask")
        fut.release()
        yield outcome


# ------------------------------------------------------------------------------------------
# The sweep
# ------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    out: Path
    total: int
    skipped: int           # already done before this call
    ok: int                # finished ok in this call
    failed: int            # failed in this call
    wall_seconds: float

    @property
    def done(self) -> int:
        return self.skipped + self.ok + self.failed


def make_tasks(plan: Plan, runs: list[RunSpec], out: Path) -> list[RunTask]:
    o = plan.experiment.outputs
    return [RunTask(run_id=r.run_id, scenario=r.scenario, scenario_data=plan.scenario_data[r.scenario],
                    overrides=plan.overrides_of(r), days=plan.days[r.scenario], seed=r.seed,
                    keep_daily=o.daily, by_market=o.by_market,
                    parcels_path=str(_part(out.resolve(), "parcels", r)) if o.parcels else None)
            for r in runs]


def run_sweep(experiment: str | Path | Experiment, out: str | Path, *, workers: int | None = None,
              engine: str = "process", scheduler: str | None = None, overwrite: bool = False,
              retry_failed: bool = False, progress: bool = True) -> SweepResult:
    """Run (or resume) an experiment into ``out``; returns what was done.

    ``workers``: processes (default: all cores); 1 runs in this process. ``engine``:
    ``process`` (a local pool) or ``dask`` (``scheduler`` address, or a local cluster).
    """
    if engine not in ENGINES:
        raise ExperimentError(f"--engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if scheduler and engine != "dask":
        raise ExperimentError("--scheduler goes with --engine dask")
    if workers is not None and workers < 1:
        raise ExperimentError(f"--workers must be at least 1 (got {workers})")
    workers = workers or os.cpu_count() or 1
    if isinstance(experiment, Experiment):
        exp, base, source_text, source_path = experiment, None, None, None
    else:
        path = Path(experiment)
        exp = load_experiment(path)
        base, source_text, source_path = path.resolve().parent, path.read_text(), str(path)
    plan = plan_runs(exp, base)
    out = Path(out)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(OutputFolder(out, "sweep", replace=overwrite))
        resume = open_output(folder, plan, overwrite)
        done: dict[int, str] = {}
        if resume:
            _clean_partials(out)
            done = finished_runs(out)
            reconcile_log(out, done)
        if retry_failed:
            done = {k: v for k, v in done.items() if v == "ok"}
        todo = [r for r in plan.runs if r.run_id not in done]
        if not todo:
            return SweepResult(out, len(plan.runs), len(done), 0, 0, 0.0)
        client = stack.enter_context(_dask_client(workers, scheduler)) if engine == "dask" else None
        if not resume:        # the engine is up: now the new folder (staged, then moved into place)
            write_sweep_files(folder.stage(), plan, source_text, source_path, str(out))
            folder.install()
        by_id = {r.run_id: r for r in plan.runs}
        tasks = make_tasks(plan, todo, out)
        t0 = time.perf_counter()
        ok = failed = 0
        if client is not None:
            outcomes = _dask(tasks, client, f"fourpl-{plan.fingerprint[:12]}")
        elif workers == 1 or len(tasks) == 1:
            outcomes = _inline(tasks)
        else:
            outcomes = _process_pool(tasks, min(workers, len(tasks)))
        failed_before = sum(1 for v in done.values() if v != "ok")
        with tqdm(total=len(plan.runs), initial=len(done), desc=exp.name, unit="run", dynamic_ncols=True,
                  disable=not progress, smoothing=0.1) as bar:
            bar.set_postfix(failed=failed_before)
            try:
                for outcome in outcomes:
                    record_outcome(out, plan, by_id[outcome.run_id], outcome)
                    folder.confirm()         # a run is recorded: the folder stays, even if we stop now
                    if outcome.status == "ok":
                        ok += 1
                    else:
                        failed += 1
                    bar.update()
                    bar.set_postfix(failed=failed_before + failed)
            finally:
                close = getattr(outcomes, "close", None)
                if close is not None:
                    close()
        return SweepResult(out, len(plan.runs), len(done), ok, failed, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------
# Reading results
# ------------------------------------------------------------------------------------------
def _dataset(root: Path) -> pads.Dataset | None:
    if not root.exists() or not any(root.glob("scenario=*/run-*.parquet")):
        return None
    ds = pads.dataset(root, format="parquet", partitioning=PARTITION)
    schemas = [f.physical_schema for f in ds.get_fragments()]
    schema = pa.unify_schemas(schemas + [pa.schema([("scenario", pa.string())])], promote_options="permissive")
    return pads.dataset(root, format="parquet", partitioning=PARTITION, schema=schema)


def read_runs(out: str | Path) -> pd.DataFrame:
    """The run table of a sweep: one row per finished run, sorted by run id."""
    ds = _dataset(Path(out) / "runs")
    if ds is None:
        return pd.DataFrame(columns=["run_id", "scenario", "status"])
    df = ds.to_table().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return df.sort_values("run_id", kind="stable").reset_index(drop=True)


def read_daily(out: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The daily series of every run of a sweep (``run_id`` and ``day`` identify a row)."""
    ds = _dataset(Path(out) / "daily")
    if ds is None:
        return pd.DataFrame(columns=["run_id", "day"])
    if columns is not None:
        keep = ["run_id", "scenario", "day"] + [c for c in columns if c not in ("run_id", "scenario", "day")]
        columns = [c for c in keep if c in ds.schema.names]
    df = ds.to_table(columns=columns).to_pandas()
    return df.sort_values(["run_id", "day"], kind="stable").reset_index(drop=True)


def read_experiment(out: str | Path) -> dict:
    meta = Path(out) / "experiment.json"
    if not meta.exists():
        raise SweepError(f"'{out}' is not a sweep folder (no experiment.json)")
    return json.loads(meta.read_text())


# ------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------
def sweep_cli(experiment: Path, out: Path | None, workers: int | None, engine: str, scheduler: str | None,
              retry_failed: bool, overwrite: bool, quiet: bool, console) -> SweepResult:
    """``fourpl sweep``: run, print what happened and where the results are.

    Exit status: 0 when every run is recorded ok, 1 when some failed (it says how many), 2 for
    bad input, 128 + the signal when stopped (130 for Ctrl-C, 143 for SIGTERM)."""
    exp = load_experiment(experiment)
    out = out or Path("results") / "sweeps" / slug(exp.name, "sweep")
    try:
        result = run_sweep(experiment, out, workers=workers, engine=engine, scheduler=scheduler,
                           overwrite=overwrite, retry_failed=retry_failed, progress=not quiet)
    except KeyboardInterrupt as exc:
        if out.is_dir() and (out / "experiment.json").is_file():
            n = len(finished_runs(out))
            console.print(f"interrupted: {n} runs are recorded in {out}; run the same command again to resume",
                          highlight=False)
        else:
            console.print("interrupted before any run was recorded: nothing was kept", highlight=False)
        sys.exit(128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT))
    failed_total = sum(1 for v in finished_runs(out).values() if v != "ok")
    if result.ok + result.failed == 0:
        console.print(f"nothing to run: all {result.total} runs of '{exp.name}' are recorded in {out}"
                      + (f" ({failed_total} failed; --retry-failed runs them again)" if failed_total else ""),
                      highlight=False)
    else:
        rate = (result.ok + result.failed) / result.wall_seconds * 60 if result.wall_seconds > 0 else float("nan")
        console.print(f"'{exp.name}': {result.ok + result.failed} runs in {result.wall_seconds:.1f} s "
                      f"({rate:.1f} runs/min); {result.done} of {result.total} recorded, {failed_total} failed"
                      + (f" (errors in {out / 'log.jsonl'})" if failed_total else ""), highlight=False)
    console.print(f"results in [bold]{out}[/]; analyse with: fourpl report {out}", highlight=False)
    if failed_total:
        console.print(f"{failed_total} of {result.total} runs failed (errors in {out / 'log.jsonl'}; "
                      "--retry-failed runs them again)", highlight=False, style="bold red")
        sys.exit(1)
    return result
