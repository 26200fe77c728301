"""Targets files, and runs compared with them.

A targets file (``market/data/targets-2024.toml``, ``market/data/validation-2025.toml``) lists
published figures, each with the moment of a run that measures it (see
:mod:`experiments.calibration.moments`). :func:`compare` measures every target over the
replications of a run (or of a sweep's design point): the mean, its 95% t-interval over
replications, whether it lies in the published band, and its distance from the band.

Distance from a band [low, high] of a model value m: 0 inside; else the relative distance to
the nearer edge, (low - m) / |low| or (m - high) / |high| (a single published figure is a band
of width zero). A target the run cannot measure counts as distance 1. The loss of the method
of simulated moments is the weighted mean of squared distances of the mean over replications,
weighted by the targets' confidence ([weights] of the file).

"Inside" means: the mean over replications lies in the band; "interval reaches band": the
band and the 95% interval of the mean overlap (with few replications the interval is wide, so
this says only that the model is not clearly off; with one replication there is no interval).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.calibration.moments import MOMENTS, RunData
from experiments.designs import ExperimentError
from market.scenario import format_validation_error, is_file, read_toml

DATA = Path(str(resources.files("market") / "data"))        # the targets files ship with the package
BUILTIN_TARGETS = {"2024": "targets-2024.toml", "validation-2025": "validation-2025.toml"}


class CalibrationError(ExperimentError):
    """A targets file, a calibration spec or a folder to compare is not usable (one line)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Target(_Strict):
    id: str = Field(min_length=1, max_length=100)
    moment: str
    args: dict[str, Any] = Field(default_factory=dict)
    low: float
    high: float
    unit: str = ""
    source: str = Field(min_length=1)
    url: str = ""
    date: str = Field(min_length=1)
    confidence: Literal["H", "M", "L"]
    note: str = ""
    scenario: str = ""          # validation: the scenario whose runs measure it
    relative_to: str = ""       # validation: divided by the same moment in this scenario's run (same replication)

    @field_validator("low", "high", mode="before")
    @classmethod
    def _number(cls, v):
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        return v

    @field_validator("moment")
    @classmethod
    def _known(cls, v):
        if v not in MOMENTS:
            raise ValueError(f"unknown moment {v!r} (known: {', '.join(sorted(MOMENTS))})")
        return v

    @model_validator(mode="after")
    def _band(self):
        if self.low > self.high:
            raise ValueError(f"target '{self.id}': low must not exceed high")
        return self


class TargetFile(_Strict):
    weights: dict[str, float] = Field(default_factory=lambda: {"H": 1.0, "M": 0.5, "L": 0.25})
    target: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        seen = set()
        for t in self.target:
            if t.id in seen:
                raise ValueError(f"target id '{t.id}' is given twice")
            seen.add(t.id)
        for c in ("H", "M", "L"):
            w = self.weights.get(c)
            if w is None or w < 0:
                raise ValueError(f"weights.{c} must be given and not negative")
        return self

    def weight(self, t: Target) -> float:
        return float(self.weights[t.confidence])


def targets_path(name_or_file: str | Path) -> Path:
    """A built-in targets name ('2024', 'validation-2025') or a file."""
    text = str(name_or_file)
    if text in BUILTIN_TARGETS:
        return DATA / BUILTIN_TARGETS[text]
    p = Path(text)
    if not is_file(p):
        raise CalibrationError(f"targets {text!r} is neither a built-in ({', '.join(BUILTIN_TARGETS)}) nor a file")
    return p


def load_targets(name_or_file: str | Path = "2024") -> TargetFile:
    """Read and validate a targets file; one line naming the key when it is wrong."""
    path = targets_path(name_or_file)
    data = read_toml(path, error=CalibrationError)
    try:
        return TargetFile.model_validate(data)
    except ValidationError as exc:
        raise CalibrationError(format_validation_error(exc, f"targets file '{path}'", TargetFile)) from None


# ------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------
def measure(t: Target, run: RunData) -> float | None:
    """The target's moment in one run (None: not measurable there)."""
    try:
        v = MOMENTS[t.moment](run, **t.args)
    except TypeError as exc:          # args that do not fit the moment
        raise CalibrationError(f"target '{t.id}': moment '{t.moment}' {exc}") from None
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else v


def distance(value: float | None, low: float, high: float) -> float:
    """Relative distance of a value from the band [low, high] (0 inside; 1 if not measured)."""
    if value is None:
        return 1.0
    if value < low:
        return (low - value) / abs(low) if low else low - value
    if value > high:
        return (value - high) / abs(high) if high else value - high
    return 0.0


def target_row(t: Target, weight: float, values: list[float | None], confidence: float = 0.95) -> dict:
    """A target against the model values of its replications: mean, interval, inside, distance."""
    from experiments.report.stats import mean_ci
    got = [v for v in values if v is not None]
    n, mean, sd, lo, hi = mean_ci(got, confidence, share=t.unit.startswith("share"))
    m = None if n == 0 else mean
    inside = n > 0 and t.low <= mean <= t.high
    reaches = inside or (n > 1 and not math.isnan(lo) and lo <= t.high and hi >= t.low)
    return {"id": t.id, "moment": t.moment, "unit": t.unit, "runs": len(values), "measured": n,
            "model_mean": m, "model_sd": None if n < 2 else sd,
            "ci_low": None if n < 2 else lo, "ci_high": None if n < 2 else hi,
            "low": t.low, "high": t.high, "inside": inside, "interval_reaches_band": reaches,
            "distance": distance(m, t.low, t.high), "weight": weight, "confidence": t.confidence, "date": t.date, "source": t.source, "url": t.url,
            "scenario": t.scenario, "relative_to": t.relative_to, "note": t.note}


def compare(tf: TargetFile, runs: list[RunData], confidence: float = 0.95) -> pd.DataFrame:
    """One row per target: model mean, its interval over the runs (replications), the
    published band, source, inside or not, distance and weight."""
    return pd.DataFrame([target_row(t, tf.weight(t), [measure(t, r) for r in runs], confidence)
                         for t in tf.target])


def _years_between(run: RunData, ref: RunData) -> int:
    a, b = run.start_date, ref.start_date
    return 0 if a is None or b is None else b.year - a.year


def _shift_dates(args: dict, years: int) -> dict:
    """``args`` with every ISO date (in lists too) moved by whole years (29 Feb -> 28 Feb)."""
    import datetime as dt

    def move(v):
        if isinstance(v, list):
            return [move(x) for x in v]
        if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
            try:
                d = dt.date.fromisoformat(v)
            except ValueError:
                return v
            try:
                return d.replace(year=d.year + years).isoformat()
            except ValueError:
                return d.replace(year=d.year + years, day=28).isoformat()
        return v
    return {k: move(v) for k, v in args.items()} if years else args


def _replication(run: RunData, i: int) -> int:
    r = run.figures.get("replication")
    try:
        return int(r)
    except (TypeError, ValueError):
        return i


def compare_validation(tf: TargetFile, by_scenario: dict[str, list[RunData]], confidence: float = 0.95) -> pd.DataFrame:
    """Targets measured each on its own scenario's runs (``scenario``), or as the ratio of a
    moment in that scenario to the same moment in another (``relative_to``), replication by
    replication (sweeps with common random numbers pair them on the same seed)."""
    rows = []
    for t in tf.target:
        runs = by_scenario.get(t.scenario, []) if t.scenario else next(iter(by_scenario.values()), [])
        if not t.relative_to:
            values = [measure(t, r) for r in runs]
        else:
            refs = {_replication(r, i): r for i, r in enumerate(by_scenario.get(t.relative_to, []))}
            values = []
            for i, r in enumerate(runs):
                ref = refs.get(_replication(r, i))
                a = measure(t, r)
                b = None
                if ref is not None:           # the same dates in the reference run's year
                    years = _years_between(r, ref)
                    b = measure(t.model_copy(update={"args": _shift_dates(t.args, years)}), ref)
                values.append(None if a is None or not b else a / b)
        rows.append(target_row(t, tf.weight(t), values, confidence))
    return pd.DataFrame(rows)


def loss(table: pd.DataFrame) -> float:
    """Method of simulated moments: the weighted mean of squared distances (of the mean over
    replications) from the published bands."""
    w = table["weight"].astype(float)
    if w.sum() <= 0:
        return math.nan
    return float((w * table["distance"].astype(float) ** 2).sum() / w.sum())


# ------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------
def fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = float(v)
    if abs(v) >= 1e6:
        return f"{v / 1e9:.3g} bn" if abs(v) >= 1e8 else f"{v / 1e6:.3g} M"
    if unit in ("share", "share of finished parcels", "share of delivered parcels", "share of revenue"):
        return f"{100 * v:.2f}%"
    return f"{v:.3g}"


def band_text(low: float, high: float, unit: str) -> str:
    return fmt(low, unit) if low == high else f"{fmt(low, unit)} - {fmt(high, unit)}"


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (one line per target), sources below it."""
    lines = ["| target | model mean | 95% interval | published | unit | inside | interval reaches band | distance | conf. | source (date) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        ci = "-" if r.ci_low is None or pd.isna(r.ci_low) else f"{fmt(r.ci_low, r.unit)} - {fmt(r.ci_high, r.unit)}"
        mark = "yes" if r.inside else ("not measured" if r.measured == 0 else "**no**")
        src = r.source.replace("|", "/") + (f" <{r.url}>" if r.url else "")
        reach = "-" if ci == "-" else ("yes" if r.interval_reaches_band else "no")
        lines.append(f"| {r.id} | {fmt(r.model_mean, r.unit)} | {ci} | {band_text(r.low, r.high, r.unit)} | {r.unit} "
                     f"| {mark} | {reach} | {r.distance:.3f} | {r.confidence} | {src} ({r.date}) |")
    return "\n".join(lines)
