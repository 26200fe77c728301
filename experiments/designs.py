"""Experiment files: which scenarios, which design over parameters, how many replications.

An experiment is a TOML file validated by :class:`Experiment`::

    name = "fourpl-vs-diy"
    description = "..."
    scenarios = ["baseline", "no-4pl"]      # built-in names or files (relative to this file)
    days = 180                              # omit: each scenario's simulation.days
    replications = 3
    seed = 20240501                         # the root entropy of every run's seed
    common_random_numbers = false           # true: replication r has the same seed at every point

    [overrides]                             # applied to every run, like --set
    "merchants.exporters" = 12

    [design]
    kind = "grid"                           # grid | lhs | sobol | morris
    samples = 16                            # lhs: points; sobol: base samples N; morris: trajectories

    [[design.parameters]]
    key = "merchants.diy_transaction_cost"
    values = [0, 400, 1600]                 # or low / high (with levels = n for a grid)

    [outputs]
    daily = true                            # the daily series of every run
    by_market = false                       # per-market figures (from the parcels of each run)
    parcels = false                         # keep every run's parcels.parquet

:func:`plan_runs` turns an experiment into its runs, in a fixed order (scenario, then design
point, then replication), each with its own seed: the root ``SeedSequence(seed)`` spawns two
children, one that samples the design and one whose children (one per run, spawned in run
order) give the runs' integer seeds. The integer is what ``fourpl run --seed`` takes, so any
run can be reproduced alone.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from market.scenario import (Scenario, ScenarioError, apply_overrides, builtin_scenarios, dotted, is_file,
                             load_raw, parameter_table, read_toml, short, validate)
from market.limits import MAX_DAYS, one_line

DESIGN_KINDS = ("grid", "lhs", "sobol", "morris")
MAX_RUNS = 1_000_000            # the most runs one experiment plans (each is a whole simulation)


class ExperimentError(ScenarioError):
    """An experiment file is invalid; the message is one line naming the key."""


class _Section(BaseModel):
    # as the scenario schema: strict scalars ("3" is not a number), no NaN or infinity
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Parameter(_Section):
    """One parameter a design varies: a scenario key and its values or range."""

    key: str = Field(description="dotted scenario key, e.g. merchants.diy_transaction_cost")
    values: list[Any] | None = Field(None, min_length=1, strict=False, description="the levels (grid), or the discrete choices sampled")
    labels: list[str] | None = Field(None, strict=False, description="readable names of the values, e.g. for lists of channels")
    low: float | None = Field(None, description="lower end of a range")
    high: float | None = Field(None, description="upper end of a range")
    levels: int | None = Field(None, ge=2, le=1000, description="grid over [low, high]: this many evenly spaced levels")
    integer: bool = Field(False, description="a range of whole numbers (low and high included)")

    @model_validator(mode="after")
    def _either(self):
        has_range = self.low is not None or self.high is not None
        if (self.values is None) == (not has_range):
            raise ValueError(f"parameter '{self.key}' needs either 'values' or 'low' and 'high'")
        if has_range:
            if self.low is None or self.high is None:
                raise ValueError(f"parameter '{self.key}' needs both 'low' and 'high'")
            if not self.low < self.high:
                raise ValueError(f"parameter '{self.key}': 'low' must be below 'high'")
            if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
                raise ValueError(f"parameter '{self.key}': an integer range needs whole 'low' and 'high'")
        elif self.levels is not None:
            raise ValueError(f"parameter '{self.key}': 'levels' goes with 'low' and 'high', not 'values'")
        if self.labels is not None and (self.values is None or len(self.labels) != len(self.values)):
            raise ValueError(f"parameter '{self.key}': 'labels' needs one label per value")
        return self

    # ---- values ----
    def grid_values(self) -> list[Any]:
        """The levels a full grid takes."""
        if self.values is not None:
            return list(self.values)
        if self.levels is None:
            raise ValueError(f"parameter '{self.key}': a grid needs 'values' or 'levels' with low/high")
        xs = np.linspace(self.low, self.high, self.levels)
        if self.integer:
            return sorted({int(round(x)) for x in xs})
        return [float(x) for x in xs]

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in [0, 1] of the range (or of the list of values)."""
        if self.values is not None:
            k = len(self.values)
            return self.values[min(int(math.floor(u * k)), k - 1)]
        if self.integer:
            lo, hi = int(self.low), int(self.high)
            return min(int(math.floor(lo + u * (hi - lo + 1))), hi)
        return float(self.low + u * (self.high - self.low))

    def label_of(self, value: Any) -> str:
        if self.values is not None and self.labels is not None:
            for v, lab in zip(self.values, self.labels):
                if v == value:
                    return lab
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, list):
            return "+".join(str(v) for v in value) or "all"
        return str(value)


class Design(_Section):
    """Which points of the parameter space are run."""

    kind: Literal["grid", "lhs", "sobol", "morris"] = Field("grid", description="full grid, Latin hypercube, Sobol (Saltelli) or Morris")
    samples: int | None = Field(None, ge=1, le=1_000_000, description="lhs: points; sobol: base samples N (a power of 2); morris: trajectories")
    second_order: bool = Field(False, description="sobol: also second-order indices (N (2D + 2) points instead of N (D + 2))")
    morris_levels: int = Field(4, ge=2, le=20, description="morris: grid levels of each parameter")
    parameters: list[Parameter] = Field(default_factory=list, strict=False)

    @model_validator(mode="after")
    def _consistent(self):
        keys = [p.key for p in self.parameters]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"parameter '{sorted(dup)[0]}' is listed twice")
        if self.kind == "grid":
            if self.samples is not None:
                raise ValueError("'samples' is for lhs, sobol and morris designs; a grid runs every combination")
            for p in self.parameters:
                if p.values is None and p.levels is None:
                    raise ValueError(f"parameter '{p.key}': a grid needs 'values', or 'levels' with low and high")
        else:
            if self.samples is None:
                raise ValueError(f"a {self.kind} design needs 'samples'")
            if not self.parameters:
                raise ValueError(f"a {self.kind} design needs at least one parameter")
            if self.kind in ("sobol", "morris") and len(self.parameters) < 2:
                raise ValueError(f"{self.kind} sensitivity analysis needs at least two parameters")
            if self.kind == "sobol" and self.samples & (self.samples - 1):
                raise ValueError(f"a sobol design needs 'samples' a power of 2 (got {self.samples})")
        return self


class Outputs(_Section):
    """What is kept of each run (its summary always)."""

    daily: bool = Field(True, description="the daily series (one row a day) of every run")
    by_market: bool = Field(False, description="per-market and per-market-and-channel figures, computed from the run's parcels")
    parcels: bool = Field(False, description="every run's parcels.parquet (large)")


class Experiment(_Section):
    """A whole experiment file. Unknown keys are errors."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="short name (letters, digits, - _ .)")
    description: str = ""
    scenarios: list[str] = Field(default_factory=lambda: ["baseline"], min_length=1, strict=False)
    days: int | None = Field(None, ge=1, le=MAX_DAYS, description="days per run (omit: the scenario's simulation.days)")
    replications: int = Field(1, ge=1, le=100_000)
    seed: int = Field(ge=0, lt=2 ** 128, description="root entropy of the runs' seeds")
    common_random_numbers: bool = Field(False, description="replication r gets the same seed at every design point and scenario")
    overrides: dict[str, Any] = Field(default_factory=dict, description="scenario keys set in every run")
    design: Design = Field(default_factory=Design)
    outputs: Outputs = Field(default_factory=Outputs)

    @field_validator("scenarios", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v


# ------------------------------------------------------------------------------------------
# Loading and one-line errors
# ------------------------------------------------------------------------------------------
def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Experiment
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return model if fields else None
        ann = fields[part].annotation
        inner = getattr(ann, "__args__", ())
        cand = [a for a in (ann, *inner) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = cand[0] if cand else None
        if model is None:
            return None
    return model


def _one_line(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = dotted(loc)
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return one_line(f"{origin}: unknown key '{key}'{hint} (allowed here: {', '.join(allowed)})")
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    got_text = "" if isinstance(got, (dict, list, BaseModel)) or err["type"] == "missing" else f" (got {short(got)})"
    where = f"key '{key}': " if key else ""
    return one_line(f"{origin}: {where}{msg}{got_text}")


def _scenario_keys() -> set[str]:
    keys = {r["key"] for r in parameter_table()}
    for name, f in Scenario.model_fields.items():
        ann = f.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)) and name not in ("name", "description", "extends"):
            keys.add(name)
    return keys


def check_key(key: str, where: str):
    """A design parameter or override must be a scenario key (one line with a suggestion if not)."""
    key = key.replace("__", ".")
    known = _scenario_keys()
    if key in known:
        return
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else " (see `fourpl scenarios --params`)"
    raise ExperimentError(f"{where}: {short(key)} is not a scenario key{hint}")


def flatten_overrides(table: dict, prefix: str = "") -> dict[str, Any]:
    """``{"merchants": {"exporters": 5}}`` and ``{"merchants.exporters": 5}`` -> dotted keys."""
    out = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key.replace("__", ".") not in _scenario_keys():
            out.update(flatten_overrides(v, key + "."))
        else:
            out[key.replace("__", ".")] = v
    return out


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; raises ExperimentError with one line."""
    path = Path(path)
    origin = f"experiment '{one_line(path.name, 200)}'"
    if path.is_dir():
        raise ExperimentError(f"{origin}: is a folder, not an experiment file")
    data = read_toml(path, origin, ExperimentError)
    return parse_experiment(data, origin)


def parse_experiment(data: dict, origin: str = "experiment") -> Experiment:
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(_one_line(exc, origin)) from None
    exp.overrides = flatten_overrides(exp.overrides)
    for key in exp.overrides:
        check_key(key, f"{origin}: overrides")
    for i, p in enumerate(exp.design.parameters):
        check_key(p.key, f"{origin}: design.parameters[{i}].key")
        p.key = p.key.replace("__", ".")
        if p.key in exp.overrides:
            raise ExperimentError(f"{origin}: '{p.key}' is both a design parameter and an override")
    if len(set(exp.scenarios)) != len(exp.scenarios):
        raise ExperimentError(f"{origin}: key 'scenarios': a scenario is listed twice")
    n = count_runs(exp)
    if n > MAX_RUNS:
        raise ExperimentError(f"{origin}: the design makes {n:,} runs, more than the {MAX_RUNS:,} an experiment "
                              "may plan (fewer levels, samples, scenarios or replications)")
    return exp


def count_points(design: Design) -> int:
    """How many points a design has, computed without making them."""
    d = len(design.parameters)
    if design.kind == "grid":
        return math.prod(len(p.values) if p.values is not None else p.levels for p in design.parameters)
    if design.kind == "lhs":
        return design.samples
    if design.kind == "sobol":
        return design.samples * ((2 * d + 2) if design.second_order else (d + 2))
    return design.samples * (d + 1)          # morris: trajectories of D + 1 points


def count_runs(exp: Experiment) -> int:
    return len(exp.scenarios) * count_points(exp.design) * exp.replications


# ------------------------------------------------------------------------------------------
# Design points
# ------------------------------------------------------------------------------------------
@dataclass
class DesignPoints:
    """The points of a design: parameter values per point, and their positions in [0, 1]^D."""

    values: list[dict[str, Any]]
    unit: np.ndarray | None = None          # (points, D) for sampled designs; None for a grid

    def __len__(self) -> int:
        return len(self.values)


def salib_problem(design: Design) -> dict:
    """The SALib problem of a design, in unit coordinates (values are mapped afterwards)."""
    return {"num_vars": len(design.parameters), "names": [p.key for p in design.parameters],
            "bounds": [[0.0, 1.0]] * len(design.parameters)}


def _need_salib(kind: str):
    try:
        import SALib  # noqa: F401
    except ImportError:
        raise ExperimentError(f"a {kind} design needs SALib: pip install 'fourpl-market[sensitivity]'") from None


def design_points(design: Design, seed: int) -> DesignPoints:
    """Every point of the design, in a fixed order; sampled designs use ``seed``."""
    params = design.parameters
    if design.kind == "grid":
        if not params:
            return DesignPoints([{}])
        combos = itertools.product(*(p.grid_values() for p in params))
        return DesignPoints([{p.key: v for p, v in zip(params, combo)} for combo in combos])
    d = len(params)
    if design.kind == "lhs":
        from scipy.stats import qmc
        unit = qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(design.samples)
    elif design.kind == "sobol":
        _need_salib("sobol")
        from SALib.sample import sobol
        unit = sobol.sample(salib_problem(design), design.samples,
                            calc_second_order=design.second_order, seed=seed)
    else:
        _need_salib("morris")
        from SALib.sample import morris
        unit = morris.sample(salib_problem(design), design.samples,
                             num_levels=design.morris_levels, seed=seed)
    unit = np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0)
    values = [{p.key: p.from_unit(float(u)) for p, u in zip(params, row)} for row in unit]
    return DesignPoints(values, unit)


def point_label(design: Design, values: dict[str, Any]) -> str:
    """A short readable name of a point, e.g. ``diy_transaction_cost=400, count=3``."""
    if not values:
        return "default"
    short = [p.key.rsplit(".", 1)[-1] for p in design.parameters]
    names = short if len(set(short)) == len(short) else [p.key for p in design.parameters]
    if len(design.parameters) == 1 and design.parameters[0].labels:
        return design.parameters[0].label_of(values[design.parameters[0].key])
    return ", ".join(f"{n}={p.label_of(values[p.key])}" for n, p in zip(names, design.parameters))


# ------------------------------------------------------------------------------------------
# Runs and their seeds
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: a scenario at a design point, one replication, one seed."""

    run_id: int
    scenario: str                 # the scenario's name
    source: str                   # how the scenario was named (built-in name or resolved path)
    point: int                    # design point index (the same points in every scenario)
    replication: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""


def seed_from(ss: np.random.SeedSequence) -> int:
    """A non-negative 63-bit integer seed drawn from a SeedSequence child."""
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def seed_streams(root: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(design sampling stream, parent of the runs' streams) from the root entropy."""
    design_ss, runs_ss = np.random.SeedSequence(root).spawn(2)
    return design_ss, runs_ss


def resolve_scenario(name: str, base: Path | None) -> str:
    """A built-in name stays a name; a file is resolved relative to the experiment's folder."""
    if name in builtin_scenarios():
        return name
    for cand in ([base / name] if base is not None else []) + [Path(name)]:
        for c in (cand, cand.with_suffix(".toml")):
            if is_file(c):
                return str(c.resolve())
    raise ExperimentError(f"experiment: scenario {short(name)} is neither a built-in "
                          f"({', '.join(builtin_scenarios())}) nor a file")


@dataclass
class Plan:
    """An experiment resolved into runs."""

    experiment: Experiment
    runs: list[RunSpec]
    points: DesignPoints
    scenario_data: dict[str, dict]          # scenario name -> raw scenario (extends resolved)
    days: dict[str, int]                    # scenario name -> days per run
    fingerprint: str

    def overrides_of(self, run: RunSpec) -> dict[str, Any]:
        return {**self.experiment.overrides, **run.params}


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def plan_runs(exp: Experiment, base: Path | None = None) -> Plan:
    """Every run of the experiment, in order, with its seed; each point is validated first."""
    design_ss, runs_ss = seed_streams(exp.seed)
    points = design_points(exp.design, seed_from(design_ss))
    scenario_data, days, sources = {}, {}, []
    for s in exp.scenarios:
        src = resolve_scenario(s, base)
        raw = load_raw(src)
        name = raw.get("name", Path(src).stem)
        if name in scenario_data:
            raise ExperimentError(f"experiment: two scenarios are named '{name}'")
        scenario_data[name] = raw
        sources.append((name, src))
    # validate every (scenario, point) before anything runs: one line naming the point and key
    for name, src in sources:
        for i, values in enumerate(points.values):
            ov = {**exp.overrides, **values}
            try:
                scn = validate(apply_overrides(scenario_data[name], ov), f"scenario '{name}'")
            except ScenarioError as exc:
                where = f"design point {i} ({point_label(exp.design, values)})" if values else "overrides"
                raise ExperimentError(f"experiment '{exp.name}': {where}: {exc}") from None
            if i == 0:
                days[name] = exp.days if exp.days is not None else scn.simulation.days
    n_points = len(points)
    n_runs = len(sources) * n_points * exp.replications
    children = runs_ss.spawn(exp.replications if exp.common_random_numbers else n_runs)
    seeds = [seed_from(c) for c in children]
    runs = []
    for name, src in sources:
        for p, values in enumerate(points.values):
            label = point_label(exp.design, values)
            if exp.design.kind != "grid":         # sampled points may share rounded values
                label = f"p{p}: {label}"
            for r in range(exp.replications):
                rid = len(runs)
                runs.append(RunSpec(rid, name, src, p, r, seeds[r if exp.common_random_numbers else rid],
                                    dict(values), label))
    fp = hashlib.sha256(json.dumps(_jsonable({
        "experiment": exp.model_dump(mode="json"), "scenarios": scenario_data, "days": days,
        "runs": [(r.run_id, r.scenario, r.point, r.replication, r.seed, r.params) for r in runs],
    }), sort_keys=True).encode()).hexdigest()
    return Plan(exp, runs, points, scenario_data, days, fp)
