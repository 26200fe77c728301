"""Moments: the figures of a run that published targets are compared with.

A moment is a plain function ``f(run: RunData, **args) -> float | None`` registered by name in
:data:`MOMENTS`; a targets file names it (``moment = "lead_days"``) with its ``args``. ``None``
means the run cannot measure it (no parcel of that channel, a ratio over zero, a file the run
did not keep).

A :class:`RunData` is one run's output, read from

- a ``fourpl run`` folder (:func:`from_run_folder`): ``summary.json`` flattened, plus per-market
  and per-(market, channel) figures computed from ``parcels.parquet``, which period moments
  also read;
- a row of a ``fourpl sweep`` run table (:func:`from_sweep`): the flattened summary
  (``by_market...`` figures only when the experiment set ``outputs.by_market``), plus the run's
  parcels file when it set ``outputs.parcels``.

Flat keys are those of :func:`experiments.sweep.flatten_summary`: ``by_channel.postal.
mean_lead_time_days``, ``by_market_channel.US.express.parcels_created``, ``real_world.
sample_rate``, ...
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

DIRECT_CHANNELS = ("postal", "express", "dedicated_line")     # world.toml: kind = "direct"
PARCEL_COLUMNS = ["created_day", "market", "channel", "status", "lead_time_days", "on_time", "integrator",
                  "price_usd", "upstream_usd", "duty_usd", "upstream_duty_usd", "sale_usd"]


@dataclass
class RunData:
    """One run's figures (flat summary), and where its parcels are (read on first use)."""

    figures: dict
    parcels_path: Path | None = None
    label: str = ""
    _parcels: pd.DataFrame | None = field(default=None, repr=False)

    def get(self, key: str):
        v = self.figures.get(key)
        if v is None:
            return None
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(v) else v

    @property
    def days(self) -> int | None:
        d = self.get("days")
        return int(d) if d else None

    @property
    def start_date(self) -> dt.date | None:
        s = self.figures.get("start_date")
        return dt.date.fromisoformat(str(s)) if s else None

    def parcels(self) -> pd.DataFrame | None:
        """The run's parcels (the columns moments use), or None if the run did not keep them."""
        if self._parcels is None and self.parcels_path is not None and Path(self.parcels_path).is_file():
            import pyarrow.parquet as pq
            names = set(pq.read_schema(self.parcels_path).names)
            df = pq.read_table(self.parcels_path, columns=[c for c in PARCEL_COLUMNS if c in names]).to_pandas()
            for c in ("market", "channel", "status"):
                df[c] = df[c].astype(str)
            self._parcels = df
        return self._parcels


# ------------------------------------------------------------------------------------------
# Reading runs
# ------------------------------------------------------------------------------------------
def _start_date_of(folder: Path) -> str | None:
    cfg = folder / "config.toml"
    if not cfg.is_file():
        return None
    import tomllib
    with open(cfg, "rb") as fh:
        sim = tomllib.load(fh).get("simulation", {})
    d = sim.get("start_date")
    return d.isoformat() if isinstance(d, dt.date) else (str(d) if d else None)


def from_run_folder(folder: str | Path) -> RunData:
    """A ``fourpl run`` folder as RunData (raises FileNotFoundError without summary.json)."""
    from experiments.sweep import flatten_summary, market_figures
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    parcels = folder / "parcels.parquet"
    if parcels.is_file():
        by_market, by_mc = market_figures(parcels)
        for m, figs in by_market.items():          # keep the summary's own by_market figures (sales)
            summary.setdefault("by_market", {}).setdefault(m, {}).update(figs)
        summary["by_market_channel"] = by_mc
    figures = flatten_summary(summary)
    figures["days"] = summary.get("days")
    figures["start_date"] = summary.get("start_date") or _start_date_of(folder)
    return RunData(figures, parcels if parcels.is_file() else None, label=f"seed {summary.get('seed')}")


def from_sweep(folder: str | Path, scenario: str | None = None) -> list[tuple[str, int, RunData]]:
    """Every ok run of a sweep as (scenario, design point, RunData)."""
    from experiments.sweep import read_experiment, read_runs
    folder = Path(folder)
    read_experiment(folder)               # raises if this is no sweep folder
    runs = read_runs(folder)
    if "status" in runs:
        runs = runs[runs["status"] == "ok"]
    if scenario is not None:
        runs = runs[runs["scenario"] == scenario]
    from experiments.outputs import partition_dir
    out = []
    for _, row in runs.iterrows():
        figures = {k: (None if _isna(v) else v) for k, v in row.items()}
        p = folder / "parcels" / partition_dir("scenario", row["scenario"]) / f"run-{int(row['run_id']):06d}.parquet"
        out.append((str(row["scenario"]), int(row["point"]),
                    RunData(figures, p if p.is_file() else None, label=f"run {int(row['run_id'])}")))
    return out


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------
# The moments
# ------------------------------------------------------------------------------------------
MOMENTS: dict[str, Callable[..., float | None]] = {}


def moment(fn):
    MOMENTS[fn.__name__] = fn
    return fn


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


@moment
def figure(run: RunData, key: str):
    """Any number of the flattened summary, by its key (e.g. ``fourpl_share``)."""
    return run.get(key)


@moment
def lead_days(run: RunData, channel: str, market: str | None = None):
    """Mean door-to-door lead time (days) of delivered parcels of a channel (into one market)."""
    if market is None:
        return run.get(f"by_channel.{channel}.mean_lead_time_days")
    return run.get(f"by_market_channel.{market}.{channel}.mean_lead_time_days")


@moment
def cost_ratio(run: RunData, numerator: str, denominator: str):
    """Mean logistics price per delivered parcel of one channel over another's."""
    return _ratio(run.get(f"by_channel.{numerator}.mean_logistics_cost"),
                  run.get(f"by_channel.{denominator}.mean_logistics_cost"))


@moment
def spot_over_contract(run: RunData, mode: str):
    """Spot over contract price on the same lanes of a mode (summary.json market_structure)."""
    return run.get(f"market_structure.spot_over_contract_by_mode.{mode}")


@moment
def contract_share_of_legs(run: RunData, mode: str):
    """Share of a mode's legs carried under contract (not at spot)."""
    c = run.get(f"prices_by_mode.{mode}.contract_legs")
    s = run.get(f"prices_by_mode.{mode}.spot_legs")
    return _ratio(c, (c or 0) + (s or 0)) if c is not None or s is not None else None


@moment
def role_margin(run: RunData, role: str):
    """Operating margin of a provider role as a group (summary.json market_structure)."""
    return run.get(f"market_structure.margins_by_role.{role}.role_margin")


def _has_markets(run: RunData) -> bool:
    """Does the run carry per-market figures at all (a market missing from them had no parcel)?"""
    return any(k.startswith("by_market_channel.") for k in run.figures)


def _direct_parcels(run: RunData, market: str):
    if not _has_markets(run):
        return None
    return sum(run.get(f"by_market_channel.{market}.{ch}.parcels_created") or 0.0 for ch in DIRECT_CHANNELS)


@moment
def real_direct_parcels_per_year(run: RunData, market: str):
    """Direct-channel parcels into a market (those entered as low-value consignments), as
    real-world parcels a year: simulated parcels x the sample rate x 365 / days simulated."""
    n = _direct_parcels(run, market)
    rate = run.get("real_world.sample_rate")
    days = run.days
    if n is None or rate is None or not days:
        return None
    return n * rate * 365.0 / days


@moment
def direct_parcel_ratio(run: RunData, numerator: str, denominator: str):
    """Direct-channel parcels into one market over those into another."""
    return _ratio(_direct_parcels(run, numerator), _direct_parcels(run, denominator))


@moment
def direct_share_not_postal(run: RunData, market: str):
    """Share of a market's direct-channel parcels carried by express or dedicated line (air)."""
    total = _direct_parcels(run, market)
    postal = run.get(f"by_market_channel.{market}.postal.parcels_created")
    if total is None:
        return None
    return _ratio(total - (postal or 0.0), total)


@moment
def channel_share(run: RunData, market: str, channel: str):
    """Share of a market's parcels sent by one channel."""
    if not _has_markets(run):
        return None
    return _ratio(run.get(f"by_market_channel.{market}.{channel}.parcels_created") or 0.0,
                  run.get(f"by_market.{market}.parcels_created"))


@moment
def loss_rate(run: RunData):
    """Parcels lost over parcels finished (delivered or lost)."""
    lost, delivered = run.get("parcels_lost"), run.get("parcels_delivered")
    if lost is None or delivered is None:
        return None
    return _ratio(lost, lost + delivered)


@moment
def damage_rate(run: RunData):
    """Parcels damaged over parcels delivered."""
    return _ratio(run.get("parcels_damaged"), run.get("parcels_delivered"))


# -- period moments (validation): need the run's parcels -------------------------------------
def _days_of(run: RunData, start: str, end: str) -> tuple[int, int] | None:
    """[first, last] day numbers of a date range within the run (None if the run misses it)."""
    s0 = run.start_date
    if s0 is None or not run.days:
        return None
    a = (dt.date.fromisoformat(start) - s0).days
    b = (dt.date.fromisoformat(end) - s0).days
    a, b = max(a, 0), min(b, run.days - 1)
    return (a, b) if a <= b else None


def _per_day(run: RunData, start: str, end: str, market: str | None, channels, what: str = "parcels"):
    df = run.parcels()
    span = _days_of(run, start, end)
    if df is None or span is None:
        return None
    sel = (df["created_day"] >= span[0]) & (df["created_day"] <= span[1])
    if market is not None:
        sel &= df["market"] == market
    if channels:
        sel &= df["channel"].isin(list(channels))
    n_days = span[1] - span[0] + 1
    if what == "sales":
        return float(df.loc[sel, "sale_usd"].sum()) / n_days
    return float(sel.sum()) / n_days


@moment
def period_change(run: RunData, before: list[str], after: list[str], market: str | None = None,
                  channels: list[str] | None = None, what: str = "parcels"):
    """Parcels (or sales, ``what = "sales"``) a day created in the ``after`` dates over the
    ``before`` dates ([first, last] ISO dates), of a market and channels: 1 = no change."""
    return _ratio(_per_day(run, after[0], after[1], market, channels, what),
                  _per_day(run, before[0], before[1], market, channels, what))


@moment
def period_level(run: RunData, period: list[str], market: str | None = None, channels: list[str] | None = None,
                 what: str = "parcels"):
    """Parcels (or sales in USD, ``what = "sales"``) a day created in a period ([first, last]
    ISO dates) of a market and channels; compared between scenarios with ``relative_to``."""
    return _per_day(run, period[0], period[1], market, channels, what)


@moment
def period_share(run: RunData, period: list[str], market: str, channels: list[str]):
    """Share of a market's parcels created in a period that went by the given channels."""
    df = run.parcels()
    span = _days_of(run, period[0], period[1])
    if df is None or span is None:
        return None
    sel = (df["created_day"] >= span[0]) & (df["created_day"] <= span[1]) & (df["market"] == market)
    return _ratio(float((sel & df["channel"].isin(list(channels))).sum()), float(sel.sum()))


@moment
def real_direct_parcels_in_period(run: RunData, period: list[str], market: str):
    """Direct-channel parcels into a market created in a period, a year, in real-world parcels."""
    n = _per_day(run, period[0], period[1], market, DIRECT_CHANNELS)
    rate = run.get("real_world.sample_rate")
    if n is None or rate is None:
        return None
    return n * rate * 365.0
