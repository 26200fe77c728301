"""``fourpl calibrate SPEC``: free parameters fitted to published targets.

A calibration spec (TOML) names a scenario, the free parameters with their ranges (only keys
the schema marks as assumptions), the targets file, the replications and the seed::

    name = "baseline-2024"
    scenario = "baseline"
    days = 120                      # omit: the scenario's simulation.days
    replications = 2                # per trial, with common random numbers
    seed = 2024                     # root of the replications' seeds and of the sampler
    batch = 2                       # trials evaluated together (in parallel)
    targets = "2024"                # or a targets TOML file
    sampler = "tpe"                 # tpe | random
    [overrides]                     # fixed in every trial, like --set
    "merchants.exporters" = 8
    [[parameters]]
    key = "integrators.markup"
    low = 0.02
    high = 0.4
    log = false

**Loss** (method of simulated moments): every trial runs the scenario at its parameter values
``replications`` times with the same seeds as every other trial (common random numbers), the
moments of each target are averaged over the replications, and the loss is the
confidence-weighted mean of squared relative distances of those means from the published bands
(:func:`experiments.calibration.targets.loss`). The first trial is the scenario's own values
(the loss before calibration).

**Search**: Optuna (TPE, or random) in ``batch``-sized steps: the batch's trials are asked
together, their runs go through the sweep engine (:func:`experiments.sweep.execute_run` on a
process pool of ``--workers``, or on Dask with ``--engine dask [--scheduler ADDRESS]``), and
the losses are told in trial order, so the results depend on the spec, not on the workers.

**Output folder** (safe-output rules of :mod:`experiments.outputs`, kind ``calibrate``):
``study.db`` (the Optuna study, SQLite: a calibration stopped by Ctrl-C, SIGTERM or
``kill -9`` resumes when the same command runs again, its trial count continuing),
``calibration.toml`` and ``calibration.json`` (the spec and its resolution), and, when the
budget (``--trials`` total trials, or ``--timeout`` seconds for this call) is spent:
``trials.parquet`` (one row per trial: parameters, loss, each target's mean), ``calibrated.toml``
(the scenario with the best values), ``targets.csv`` (targets against the model before and after,
with 95% intervals over replications), ``importance.csv`` (Optuna's parameter importances),
``plots/`` and ``report.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.calibration.moments import RunData
from experiments.calibration.targets import (CalibrationError, TargetFile, compare, load_targets, loss,
                                             markdown_table, targets_path)
from experiments.designs import seed_from
from experiments.outputs import OutputFolder, Terminated, slug
from market.limits import MAX_DAYS
from market.scenario import (apply_overrides, format_validation_error, load_raw, parameter_table, read_toml,
                             validate)

STUDY = "calibration"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class FreeParameter(_Strict):
    key: str
    low: float
    high: float
    log: bool = False

    @field_validator("low", "high", mode="before")
    @classmethod
    def _number(cls, v):
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class Spec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str = ""
    scenario: str = "baseline"
    days: int | None = Field(None, ge=1, le=MAX_DAYS)
    replications: int = Field(2, ge=1, le=100)
    seed: int = Field(2024, ge=0, lt=2 ** 63)
    batch: int = Field(2, ge=1, le=64)
    targets: str = "2024"
    sampler: Literal["tpe", "random"] = "tpe"
    overrides: dict[str, Any] = Field(default_factory=dict)
    parameters: list[FreeParameter] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique(self):
        keys = [p.key for p in self.parameters]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"parameter '{sorted(dup)[0]}' is given twice")
        both = set(keys) & set(self.overrides)
        if both:
            raise ValueError(f"'{sorted(both)[0]}' is both a free parameter and a fixed override")
        return self


# ------------------------------------------------------------------------------------------
# The spec, resolved
# ------------------------------------------------------------------------------------------
class Calibration:
    """A validated spec with its scenario, targets, seeds and fingerprint."""

    def __init__(self, spec: Spec, base: Path | None, source_text: str | None = None):
        self.spec = spec
        self.source_text = source_text
        rows = {r["key"]: r for r in parameter_table()}
        for p in spec.parameters:
            row = rows.get(p.key)
            if row is None:
                raise CalibrationError(f"parameters: unknown scenario key '{p.key}'")
            if row["annotation"] not in (int, float) and "float" not in str(row["annotation"]):
                raise CalibrationError(f"parameters: '{p.key}' is not a number")
            if not str(row["source"]).lower().startswith("assumption"):
                raise CalibrationError(f"parameters: '{p.key}' has a published source ({row['source'][:80]}...); "
                                       "only parameters the schema marks as assumptions are calibrated")
            if not p.low < p.high:
                raise CalibrationError(f"parameters: '{p.key}' needs low < high (got {p.low}, {p.high})")
            if p.log and p.low <= 0:
                raise CalibrationError(f"parameters: '{p.key}' on a log scale needs low > 0")
            b = row["bounds"]
            if ("ge" in b and p.low < b["ge"]) or ("gt" in b and p.low <= b["gt"]) \
                    or ("le" in b and p.high > b["le"]) or ("lt" in b and p.high >= b["lt"]):
                raise CalibrationError(f"parameters: '{p.key}' range [{p.low}, {p.high}] leaves the schema's "
                                       f"range ({', '.join(f'{k} {v}' for k, v in b.items())})")
        self.integer = {p.key: rows[p.key]["annotation"] is int for p in spec.parameters}
        source = spec.scenario                # a built-in name, or a file relative to the spec
        if base is not None and (base / source).is_file():
            source = str((base / source).resolve())
        self.scenario_source = source
        self.raw = load_raw(source)
        fixed = apply_overrides(self.raw, spec.overrides)
        self.config = validate(fixed, f"scenario '{self.raw['name']}' with the spec's overrides")
        for p in spec.parameters:             # both ends of every range make a valid scenario
            for v in (p.low, p.high):
                validate(apply_overrides(fixed, {p.key: self._value(p.key, v)}),
                         f"scenario '{self.raw['name']}' with {p.key} = {v}")
        self.days = spec.days or self.config.simulation.days
        tpath = targets_path(spec.targets if base is None or not (base / spec.targets).is_file()
                             else str(base / spec.targets))
        self.targets_file = tpath
        self.targets: TargetFile = load_targets(tpath)
        children = np.random.SeedSequence(spec.seed).spawn(2)
        self.seeds = [seed_from(c) for c in children[1].spawn(spec.replications)]
        self.sampler_seed = int(seed_from(children[0]) % (2 ** 32))
        h = hashlib.sha256()
        h.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
        h.update(json.dumps(self.config.model_dump(mode="json"), sort_keys=True, default=str).encode())
        h.update(tpath.read_bytes())
        self.fingerprint = h.hexdigest()

    def _value(self, key: str, v: float):
        return int(round(v)) if self.integer.get(key) else float(v)

    def defaults(self) -> dict[str, float] | None:
        """The scenario's own values of the free parameters (None if one is outside its range)."""
        out = {}
        for p in self.spec.parameters:
            section, name = p.key.split(".", 1)
            v = getattr(getattr(self.config, section), name)
            if not p.low <= v <= p.high:
                return None
            out[p.key] = v
        return out


def load_spec(path: str | Path) -> Calibration:
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration spec '{path}' is not a file")
    data = read_toml(path, error=CalibrationError)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise CalibrationError(format_validation_error(exc, f"calibration spec '{path}'", Spec)) from None
    return Calibration(spec, path.resolve().parent, path.read_text())


# ------------------------------------------------------------------------------------------
# Evaluating trials through the sweep engine
# ------------------------------------------------------------------------------------------
def run_data(summary: dict, days: int) -> RunData:
    from experiments.sweep import flatten_summary
    figures = flatten_summary(summary)
    figures["days"] = days
    figures["start_date"] = summary.get("start_date")
    return RunData(figures)


class Engine:
    """Runs RunTasks: in this process, on a process pool, or on Dask (the sweep's engines)."""

    def __init__(self, workers: int, engine: str, scheduler: str | None, stack: contextlib.ExitStack, tag: str):
        from experiments.sweep import _dask_client, _exit_with_parent
        self.kind = engine
        self.tag = tag
        self.pool = None
        self.client = None
        if engine == "dask":
            self.client = stack.enter_context(_dask_client(workers, scheduler))
        elif workers > 1:
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                            initializer=_exit_with_parent, initargs=(os.getpid(),))
            stack.callback(self._close)

    def _close(self):
        from experiments.sweep import _stop_pool
        if self.pool is not None:
            _stop_pool(self.pool)
            self.pool = None

    def run(self, tasks):
        from experiments.sweep import _dask, _failed, execute_run
        if self.client is not None:
            yield from _dask(tasks, self.client, self.tag)
        elif self.pool is None:
            for t in tasks:
                yield execute_run(t)
        else:
            futures = {self.pool.submit(execute_run, t): t for t in tasks}
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:        # noqa: BLE001 - a worker lost is a failed run
                    yield _failed(futures[fut], exc, "process pool")


def evaluate(cal: Calibration, engine: Engine, trials: list[tuple[int, dict]]) -> dict[int, dict]:
    """Run every trial's replications; per trial its loss, moments and error (if a run failed)."""
    from experiments.sweep import RunTask
    R = cal.spec.replications
    tasks = []
    for number, params in trials:
        overrides = {**cal.spec.overrides, **{k: cal._value(k, v) for k, v in params.items()}}
        for r, seed in enumerate(cal.seeds):
            tasks.append(RunTask(run_id=number * R + r, scenario=cal.raw["name"], scenario_data=cal.raw,
                                 overrides=overrides, days=cal.days, seed=seed, keep_daily=False, by_market=True))
    outcomes: dict[int, dict[int, Any]] = {}
    for out in engine.run(tasks):
        outcomes.setdefault(out.run_id // R, {})[out.run_id % R] = out
    result = {}
    for number, _ in trials:
        outs = [outcomes.get(number, {}).get(r) for r in range(R)]
        bad = [o for o in outs if o is None or o.status != "ok"]
        if bad:
            result[number] = {"error": bad[0].error if bad[0] is not None else "run lost"}
            continue
        runs = [run_data(o.summary, cal.days) for o in outs]
        table = compare(cal.targets, runs)
        moments = {t.id: [_num(v) for v in _values(t, runs)] for t in cal.targets.target}
        result[number] = {"loss": loss(table), "moments": moments}
    return result


def _values(t, runs):
    from experiments.calibration.targets import measure
    return [measure(t, r) for r in runs]


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


# ------------------------------------------------------------------------------------------
# The study
# ------------------------------------------------------------------------------------------
def _study(cal: Calibration, folder: Path):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cal.spec.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=cal.sampler_seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=cal.sampler_seed, constant_liar=True,
                                             n_startup_trials=max(4, 2 * len(cal.spec.parameters)))
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}",
                                         engine_kwargs={"connect_args": {"timeout": 30}})
    return optuna.create_study(study_name=STUDY, storage=storage, sampler=sampler, direction="minimize",
                               load_if_exists=True)


def _distributions(cal: Calibration):
    from optuna.distributions import FloatDistribution, IntDistribution
    out = {}
    for p in cal.spec.parameters:
        if cal.integer[p.key]:
            out[p.key] = IntDistribution(int(math.ceil(p.low)), int(math.floor(p.high)), log=p.log)
        else:
            out[p.key] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def _recover(study, cal: Calibration) -> int:
    """Trials a killed calibration left running: marked failed, and their points asked again."""
    from optuna.trial import TrialState
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        if t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"repeat_of": t.number})
            n += 1
    return n


def completed(study) -> int:
    from optuna.trial import TrialState
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_calibration(spec_path: str | Path, out: str | Path, *, trials: int = 20, timeout: float | None = None,
                    workers: int | None = None, engine: str = "process", scheduler: str | None = None,
                    overwrite: bool = False, progress: bool = True, console=None) -> dict:
    """Run (or resume) a calibration until ``trials`` trials are complete or ``timeout``
    seconds have passed; then write the history, the calibrated scenario and the report."""
    from experiments.sweep import ENGINES
    if engine not in ENGINES:
        raise CalibrationError(f"--engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if scheduler and engine != "dask":
        raise CalibrationError("--scheduler goes with --engine dask")
    if trials < 1:
        raise CalibrationError(f"--trials must be at least 1 (got {trials})")
    if timeout is not None and not timeout > 0:
        raise CalibrationError(f"--timeout must be positive seconds (got {timeout})")
    cal = load_spec(spec_path)
    workers = workers or os.cpu_count() or 1
    out = Path(out)
    from tqdm import tqdm
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(OutputFolder(out, "calibrate", replace=overwrite))
        resume = _open(folder, cal, overwrite)
        if not resume:
            staging = folder.stage()
            _write_text(staging / "calibration.json", json.dumps(_info(cal), indent=2, sort_keys=True) + "\n")
            _write_text(staging / "calibration.toml", cal.source_text or "")
            folder.install()
        study = _study(cal, out)
        repeated = _recover(study, cal)
        if not resume and not study.trials:
            d = cal.defaults()
            if d is not None:
                study.enqueue_trial(d, user_attrs={"defaults": True})
        done = completed(study)
        eng = Engine(workers, engine, scheduler, stack, f"fourpl-calibrate-{cal.fingerprint[:12]}")
        dists = _distributions(cal)
        t0 = time.perf_counter()
        failed_batches = 0
        with tqdm(total=trials, initial=min(done, trials), desc=cal.spec.name, unit="trial", disable=not progress,
                  dynamic_ncols=True) as bar:
            if done:
                bar.set_postfix(best=f"{study.best_value:.4f}")
            asked_any = False          # a time budget stops asking only after this call's first batch
            while done < trials and (timeout is None or not asked_any or time.perf_counter() - t0 < timeout):
                asked_any = True
                k = min(cal.spec.batch, trials - done)
                asked = [study.ask(dists) for _ in range(k)]
                res = evaluate(cal, eng, [(t.number, t.params) for t in asked])
                if all("error" in r for r in res.values()):
                    failed_batches += 1
                    if failed_batches >= 3:
                        for t in asked:
                            study.tell(t, state=_fail())
                        raise CalibrationError(f"every run of {failed_batches} batches of trials failed, e.g.: "
                                               f"{next(iter(res.values()))['error']}")
                else:
                    failed_batches = 0
                for t in asked:
                    r = res[t.number]
                    if "error" in r:
                        t.set_user_attr("error", r["error"][:500])
                        study.tell(t, state=_fail())
                    else:
                        t.set_user_attr("moments", r["moments"])
                        study.tell(t, r["loss"])
                        done += 1
                        bar.update()
                folder.confirm()
                if done:
                    bar.set_postfix(best=f"{study.best_value:.4f}")
        if completed(study) == 0:
            raise CalibrationError("no trial completed (every trial's runs failed; see trials.parquet)")
        summary = write_outputs(cal, study, out)
        summary["repeated"] = repeated
        summary["resumed"] = resume
        return summary


def _fail():
    from optuna.trial import TrialState
    return TrialState.FAIL


def _info(cal: Calibration) -> dict:
    from experiments.run import package_versions
    return {"name": cal.spec.name, "fingerprint": cal.fingerprint, "spec": cal.spec.model_dump(mode="json"),
            "scenario": cal.raw["name"], "scenario_source": cal.scenario_source, "days": cal.days,
            "seeds": cal.seeds, "targets_file": str(cal.targets_file), "versions": package_versions()}


def _write_text(path: Path, text: str):
    from experiments.sweep import _write_text_atomic
    _write_text_atomic(path, text, str(path.parent))


def _open(folder: OutputFolder, cal: Calibration, overwrite: bool) -> bool:
    """Check the output folder; True if it holds this calibration already (a resume)."""
    state = folder.state()
    if state != "full":
        return False
    if overwrite:
        folder.check_replaceable()
        return False
    from experiments.outputs import replace_problem
    meta = folder.path / "calibration.json"
    problem = replace_problem(folder.path, "calibrate")
    if problem or not meta.is_file():
        raise CalibrationError(f"output folder '{folder.display}' is not a calibration's folder"
                               + (f" (it holds {problem})" if problem else "") + "; choose another --out")
    try:
        fp = json.loads(meta.read_text()).get("fingerprint")
    except (OSError, ValueError):
        fp = None
    if fp != cal.fingerprint:
        raise CalibrationError(f"output folder '{folder.display}' holds another calibration (its spec, scenario or "
                               "targets differ); use --overwrite to replace it or choose another --out")
    return True


# ------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------
def history(cal: Calibration, study) -> pd.DataFrame:
    """One row per trial: state, loss, best so far, parameters and each target's mean."""
    rows = []
    best = math.inf
    for t in sorted(study.trials, key=lambda t: t.number):
        loss_v = t.value if t.state.name == "COMPLETE" else None
        if loss_v is not None:
            best = min(best, loss_v)
        row = {"trial": t.number, "state": t.state.name.lower(), "loss": loss_v,
               "best_loss": None if math.isinf(best) else best,
               "defaults": bool(t.user_attrs.get("defaults", False)), "error": t.user_attrs.get("error", "")}
        for p in cal.spec.parameters:
            row[f"param.{p.key}"] = t.params.get(p.key)
        for tid, vals in (t.user_attrs.get("moments") or {}).items():
            got = [v for v in vals if v is not None]
            row[f"target.{tid}"] = float(np.mean(got)) if got else None
        rows.append(row)
    return pd.DataFrame(rows)


def importances(study, cal: Calibration) -> pd.DataFrame:
    """Optuna's fANOVA importances of the parameters for the loss (empty with too few trials)."""
    import optuna
    if len(cal.spec.parameters) < 2 or completed(study) < 4:
        return pd.DataFrame(columns=["parameter", "importance"])
    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=cal.sampler_seed))
    except (RuntimeError, ValueError):
        return pd.DataFrame(columns=["parameter", "importance"])
    return pd.DataFrame({"parameter": list(imp), "importance": [float(v) for v in imp.values()]})


def _table_of(cal: Calibration, trial) -> pd.DataFrame:
    """A trial's targets table, rebuilt from its per-replication moments."""
    from experiments.calibration.targets import target_row
    moments = trial.user_attrs.get("moments") or {}
    return pd.DataFrame([target_row(t, cal.targets.weight(t), moments.get(t.id, [None] * cal.spec.replications))
                         for t in cal.targets.target])


def calibrated_scenario(cal: Calibration, best, loss_before, loss_after) -> str:
    import tomli_w
    nested: dict = {}
    for p in cal.spec.parameters:
        section, name = p.key.split(".", 1)
        nested.setdefault(section, {})[name] = cal._value(p.key, best.params[p.key])
    extends = cal.raw["name"] if cal.scenario_source == cal.spec.scenario else cal.scenario_source
    head = {"extends": extends, "name": f"{cal.raw['name']}-calibrated",
            "description": f"{cal.raw['name']} with the values of calibration '{cal.spec.name}' (trial {best.number})"}
    fixed = ", ".join(f"{k} = {v!r}" for k, v in cal.spec.overrides.items()) or "none"
    before = "not measured (the scenario's values lie outside the ranges)" if loss_before is None else f"{loss_before:.4f}"
    comment = (f"# Written by fourpl calibrate ({cal.spec.name}): the best of the trials, trial {best.number}.\n"
               f"# Loss (method of simulated moments over targets '{cal.spec.targets}', {cal.spec.replications} "
               f"replications of {cal.days} days): {before} with the scenario's values, {loss_after:.4f} here.\n"
               f"# Fixed while calibrating: {fixed}.\n")
    return comment + tomli_w.dumps({**head, **nested})


def write_outputs(cal: Calibration, study, out: Path) -> dict:
    from experiments.sweep import write_atomic
    hist = history(cal, study)
    write_atomic(pa.Table.from_pandas(hist, preserve_index=False), out / "trials.parquet", str(out))
    best = study.best_trial
    first = next((t for t in sorted(study.trials, key=lambda t: t.number)
                  if t.user_attrs.get("defaults") and t.state.name == "COMPLETE"), None)
    before = _table_of(cal, first) if first is not None else None
    after = _table_of(cal, best)
    loss_before = loss(before) if before is not None else None
    loss_after = loss(after)
    _write_text(out / "calibrated.toml", calibrated_scenario(cal, best, loss_before, loss_after))
    both = after.assign(which="calibrated")
    if before is not None:
        both = pd.concat([before.assign(which="before"), both])
    _write_text(out / "targets.csv", both.to_csv(index=False, float_format="%.6g"))
    imp = importances(study, cal)
    _write_text(out / "importance.csv", imp.to_csv(index=False, float_format="%.6g"))
    plots = _plots(cal, hist, out)
    _write_text(out / "report.md", _report(cal, study, hist, best, before, after, loss_before, loss_after, imp, plots))
    return {"trials": completed(study), "best_trial": best.number, "loss_before": loss_before,
            "loss_after": loss_after, "best_params": dict(best.params),
            "inside_after": int(after["inside"].sum()), "targets": len(after),
            "inside_before": None if before is None else int(before["inside"].sum())}


def _plots(cal: Calibration, hist: pd.DataFrame, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (out / "plots").mkdir(exist_ok=True)
    names = []
    ok = hist[hist["state"] == "complete"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ok["trial"], ok["loss"], "o", color="0.6", ms=4, label="trial")
    ax.step(ok["trial"], ok["loss"].cummin(), where="post", color="C0", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss (MSM)")
    ax.set_yscale("log" if (ok["loss"] > 0).all() and len(ok) else "linear")
    ax.legend()
    ax.set_title(f"{cal.spec.name}: convergence")
    fig.tight_layout()
    _savefig(fig, out / "plots" / "convergence.png")
    plt.close(fig)
    names.append("plots/convergence.png")
    k = len(cal.spec.parameters)
    fig, axes = plt.subplots(1, k, figsize=(4 * k, 3.5), squeeze=False)
    for ax, p in zip(axes[0], cal.spec.parameters):
        ax.plot(ok[f"param.{p.key}"], ok["loss"], "o", ms=4)
        if p.log:
            ax.set_xscale("log")
        ax.set_xlabel(p.key)
        ax.set_ylabel("loss")
    fig.suptitle("loss against each free parameter (all trials)")
    fig.tight_layout()
    _savefig(fig, out / "plots" / "parameters.png")
    plt.close(fig)
    names.append("plots/parameters.png")
    return names


def _savefig(fig, path: Path):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    os.replace(tmp, path)


def _report(cal, study, hist, best, before, after, loss_before, loss_after, imp, plots) -> str:
    from optuna.trial import TrialState
    spec = cal.spec
    n_fail = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    lines = [f"# Calibration: {spec.name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += ["## Set-up", "",
              "| | |", "|---|---|",
              f"| scenario | `{cal.raw['name']}`, {cal.days} days |",
              f"| fixed overrides | {', '.join(f'`{k} = {v}`' for k, v in spec.overrides.items()) or 'none'} |",
              f"| targets | `{spec.targets}` ({len(cal.targets.target)} targets; weights {cal.targets.weights}) |",
              f"| replications per trial | {spec.replications}, the same seeds in every trial (common random numbers): "
              f"{', '.join(str(s) for s in cal.seeds)} |",
              f"| search | Optuna {spec.sampler.upper()} sampler (seed {cal.sampler_seed}), batches of {spec.batch} |",
              f"| trials | {completed(study)} complete, {n_fail} failed or interrupted |", "",
              "Loss: the method of simulated moments, the confidence-weighted mean of squared relative "
              "distances of each target's mean over replications from its published band (0 inside the band; "
              "a target the run cannot measure counts 1).", "",
              "## Result", ""]
    lines += ["| parameter | range | scenario's value | calibrated |", "|---|---|---|---|"]
    d = cal.defaults() or {}
    for p in spec.parameters:
        lines.append(f"| `{p.key}` | {p.low:g} - {p.high:g}{' (log)' if p.log else ''} | "
                     f"{d.get(p.key, '-')} | {cal._value(p.key, best.params[p.key]):.6g} |")
    lb = "-" if loss_before is None else f"{loss_before:.4f}"
    lines += ["", f"Loss **{lb}** with the scenario's values (trial 0), **{loss_after:.4f}** at the best trial "
              f"({best.number}). Targets inside their band: "
              f"{'-' if before is None else int(before['inside'].sum())} before, {int(after['inside'].sum())} after, "
              f"of {len(after)}.", "",
              "The calibrated scenario: [calibrated.toml](calibrated.toml); every trial: trials.parquet.", ""]
    lines += ["## Targets against the model, calibrated", "",
              f"Mean over {spec.replications} replications, with its 95% t-interval.", "",
              markdown_table(after), ""]
    if before is not None:
        lines += ["## Targets against the model, before calibration", "", markdown_table(before), ""]
    lines += ["## Sensitivity", ""]
    if imp.empty:
        lines += ["Parameter importances need at least two free parameters and four complete trials.", ""]
    else:
        lines += ["Optuna's fANOVA importances: the share of the loss's variance over the trials that each "
                  "parameter explains ([importance.csv](importance.csv)).", "",
                  "| parameter | importance |", "|---|---|"]
        lines += [f"| `{r.parameter}` | {r.importance:.3f} |" for r in imp.itertuples()]
        lines += [""]
    lines += ["![loss against each parameter](plots/parameters.png)", "", "## Convergence", "",
              "![best loss by trial](plots/convergence.png)", "",
              "## Reproduce", "", f"    fourpl calibrate CALIBRATION.toml --out OUT --trials {completed(study)}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------
def calibrate_cli(spec: Path, out: Path | None, trials: int, timeout: float | None, workers: int | None,
                  engine: str, scheduler: str | None, overwrite: bool, quiet: bool, console):
    cal = load_spec(spec)
    out = out or Path("results") / "calibration" / slug(cal.spec.name, "calibration")
    try:
        s = run_calibration(spec, out, trials=trials, timeout=timeout, workers=workers, engine=engine,
                            scheduler=scheduler, overwrite=overwrite, progress=not quiet, console=console)
    except KeyboardInterrupt as exc:
        n = 0
        if (out / "study.db").is_file():
            with contextlib.suppress(Exception):
                n = completed(_study(cal, out))
        console.print(f"interrupted: {n} trials are recorded in {out}; run the same command again to resume",
                      highlight=False)
        sys.exit(128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT))
    lb = "-" if s["loss_before"] is None else f"{s['loss_before']:.4f}"
    console.print(f"'{cal.spec.name}': {s['trials']} trials; loss {lb} with the scenario's values, "
                  f"{s['loss_after']:.4f} at trial {s['best_trial']}; targets inside their band: "
                  f"{s['inside_before'] if s['inside_before'] is not None else '-'} -> {s['inside_after']} of {s['targets']}",
                  highlight=False)
    for k, v in s["best_params"].items():
        console.print(f"  {k} = {v:.6g}", highlight=False)
    console.print(f"results in [bold]{out}[/] (report.md, calibrated.toml, trials.parquet)", highlight=False)
    return s
