"""Runs the app can show: a live model, a ``fourpl run`` folder, a ``fourpl sweep`` folder.

Everything here is plain data (pandas), no Solara, so it is tested without a browser:

* :class:`Run`: one run's daily record (one row a day, the columns of
  ``market/metrics/recorder.py`` ``daily()``, whatever they are), its parameters (the scenario
  flattened to dotted keys), seed, summary, and where it came from. :func:`run_from_model`
  snapshots a live model; :func:`load_run` reads a ``fourpl run`` folder (timeseries.parquet,
  summary.json, config.toml, and the other Parquet files on demand).
* :class:`Sweep`: a ``fourpl sweep`` folder: the runs table, the design points and the daily
  series of every run (``daily/``); :meth:`Sweep.band` gives the mean over replications and a
  95% t confidence band; :meth:`Sweep.run` one replication as a :class:`Run`.
* :func:`open_results`: either, from a path; a bad path raises :class:`LoadError` with one line.
* :func:`differing_params`: the parameters in which runs differ (named on overlays);
  :func:`paired_difference`: B minus A of a column, paired by day (and by seed in sweeps).
* :func:`column_families`: the daily record's columns grouped by breakdown, found from their
  names (``orders_US`` is ``orders`` by market ``US``; ``created_postal`` by channel; ...),
  so a column another module adds tomorrow shows up with no change here.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from viz.figures import FX_COLUMN

__all__ = ["LoadError", "Run", "Sweep", "run_from_model", "load_run", "load_sweep", "open_results",
           "flatten", "differing_params", "paired_difference", "column_families", "Family",
           "breakdown_dims", "sweep_paired_difference", "rule_changes", "shock_spans", "derived_parcel_series"]


class LoadError(ValueError):
    """A results folder that cannot be opened (the message is one line, for the user)."""


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """A nested dict as dotted keys (``{"demand": {"scale": 1}}`` -> ``{"demand.scale": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass
class Run:
    """One run's results, however it was produced."""

    key: str  # unique within a session
    label: str
    scenario: str
    seed: int | None
    params: dict[str, Any]  # dotted scenario keys -> values (the whole config)
    daily: pd.DataFrame  # one row a day; a 'date' column (datetime64) when known
    source: str = "live"  # "live", or the folder it was loaded from
    summary: dict = field(default_factory=dict)
    folder: Path | None = None
    world: str = "world"

    @property
    def days(self) -> int:
        return len(self.daily)

    def table(self, name: str) -> pd.DataFrame | None:
        """Another Parquet file of a run folder (``contracts``, ``parcels``, ...), or None."""
        if self.folder is None:
            return None
        return _read_table(str(self.folder / f"{name}.parquet"))


@lru_cache(maxsize=16)
def _read_table(path: str) -> pd.DataFrame | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        return pd.read_parquet(p)
    except Exception:  # noqa: BLE001 - an unreadable optional file is shown as absent
        return None


def _with_dates(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"], errors="coerce")
    return df


def run_from_model(model, key: str | None = None, label: str | None = None) -> Run:
    """A snapshot of a live model's results so far (a copy: the model may go on running)."""
    from market.scenario import to_toml_dict

    cols = getattr(getattr(model, "datacollector", None), "model_vars", {}) or {}
    daily = _with_dates(pd.DataFrame({k: list(v) for k, v in cols.items()}))
    params = flatten(to_toml_dict(model.config))
    seed = getattr(model, "app_seed", None)
    name = getattr(model, "scenario_name", params.get("name", "?"))
    return Run(key=key or f"live-{id(model)}-{int(model.steps)}", label=label or f"{name} · seed {seed}",
               scenario=name, seed=None if seed is None else int(seed), params=params, daily=daily,
               source="live", world=str(params.get("world", "world")))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_run(folder: str | Path, key: str | None = None) -> Run:
    """A ``fourpl run`` output folder as a :class:`Run`."""
    folder = Path(folder).expanduser()
    ts = folder / "timeseries.parquet"
    if not ts.is_file():
        raise LoadError(f"{folder}: not a fourpl run folder (no timeseries.parquet)")
    try:
        daily = _with_dates(pd.read_parquet(ts))
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{ts}: cannot be read ({_one_line(exc)})") from None
    summary, params = {}, {}
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads((folder / "summary.json").read_text())
        except (OSError, ValueError) as exc:
            raise LoadError(f"{folder / 'summary.json'}: cannot be read ({_one_line(exc)})") from None
    if (folder / "config.toml").is_file():
        try:
            params = flatten(tomllib.loads((folder / "config.toml").read_text()))
        except (OSError, ValueError) as exc:
            raise LoadError(f"{folder / 'config.toml'}: cannot be read ({_one_line(exc)})") from None
    seed = params.pop("run.seed", summary.get("seed"))
    for k in [k for k in params if k.startswith("run.")]:
        params.pop(k)
    scenario = str(params.get("name", summary.get("scenario", folder.name)))
    extra = derived_parcel_series(_parcel_costs(folder / "parcels.parquet"), daily)
    for c in extra.columns:
        if c not in daily.columns:
            daily[c] = extra[c].values
    return Run(key=key or f"run:{folder.resolve()}", label=f"{folder.name} ({scenario} · seed {seed})",
               scenario=scenario, seed=None if seed is None else int(seed), params=params, daily=daily,
               source=str(folder), summary=summary, folder=folder, world=str(params.get("world", "world")))


PARCEL_COST_COLUMNS = ("finished_day", "market", "price_usd", "cost_usd", "duty_usd", "upstream_duty_usd")


def _parcel_costs(path: Path) -> pd.DataFrame | None:
    """The few columns of parcels.parquet the duty and landed-cost series need (or None)."""
    if not path.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in PARCEL_COST_COLUMNS if c in names])
    except Exception:  # noqa: BLE001 - no parcels to derive from: the series are left out
        return None


# ---------------------------------------------------------------- sweeps


@dataclass
class Sweep:
    """A ``fourpl sweep`` folder: runs (one row a run), the daily series of every run."""

    folder: Path
    name: str
    runs: pd.DataFrame  # run_id, point, replication, seed, label, status, param.* , summary figures
    daily: pd.DataFrame  # run_id, day, date, the daily columns
    experiment: dict = field(default_factory=dict)
    _stats: dict = field(default_factory=dict, repr=False, compare=False)  # see _day_stats

    @property
    def points(self) -> list[tuple[int, str]]:
        """(design point, its label), in point order."""
        ok = self.runs.drop_duplicates("point").sort_values("point")
        return [(int(p), str(lab)) for p, lab in zip(ok["point"], ok["label"])]

    @property
    def replications(self) -> list[int]:
        return sorted(int(r) for r in self.runs["replication"].unique())

    def param_columns(self) -> list[str]:
        return [c for c in self.runs.columns if c.startswith("param.")]

    def run_ids(self, point: int, replications: list[int] | None = None) -> list[int]:
        r = self.runs[(self.runs["point"] == point) & (self.runs["status"] == "ok")]
        if replications is not None:
            r = r[r["replication"].isin(replications)]
        return [int(x) for x in r["run_id"]]

    def run(self, run_id: int) -> Run:
        """One replication as a :class:`Run` (its daily series; its parameters from the design)."""
        row = self.runs[self.runs["run_id"] == run_id]
        if row.empty:
            raise LoadError(f"{self.folder}: no run {run_id}")
        row = row.iloc[0]
        daily = self.daily[self.daily["run_id"] == run_id].sort_values("day").drop(
            columns=[c for c in ("run_id", "scenario") if c in self.daily.columns]).reset_index(drop=True)
        base = flatten(self.experiment.get("experiment", {}).get("overrides", {}) or {})
        params = {**base, **{c[len("param."):]: _plain(row[c]) for c in self.param_columns()}}
        scenario = str(row.get("scenario", self.daily.get("scenario", pd.Series(["?"])).iloc[0]))
        return Run(key=f"sweep:{self.folder.resolve()}:{run_id}",
                   label=f"{self.name} · {row['label']} · rep {int(row['replication'])}",
                   scenario=scenario, seed=int(row["seed"]), params=params, daily=daily,
                   source=f"{self.folder} run {run_id}", folder=None)

    def band(self, point: int, column: str, replications: list[int] | None = None,
             level: float = 0.95) -> pd.DataFrame:
        """Mean of ``column`` over the point's replications a day, with a t confidence band.

        Columns: date (or day), mean, lo, hi, n. With one replication lo = hi = mean.
        """
        from scipy import stats

        grouped = self._day_stats(point, replications)
        if grouped is None or column not in grouped["mean"].columns:
            return pd.DataFrame(columns=["x", "mean", "lo", "hi", "n"])
        out = pd.DataFrame({"mean": grouped["mean"][column], "n": grouped["n"][column]})
        sd = grouped["sd"][column]
        t = np.where(out["n"] > 1, stats.t.ppf(0.5 + level / 2, np.maximum(out["n"] - 1, 1)), 0.0)
        half = np.nan_to_num(t * sd / np.sqrt(np.maximum(out["n"], 1)))
        out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
        return out.reset_index()

    def _day_stats(self, point: int, replications: list[int] | None) -> dict | None:
        """Per day over the point's replications, for every column at once: mean, sd and count
        (one groupby, kept: a chart grid asks for a hundred bands of the same few points)."""
        key = (point, None if replications is None else tuple(replications))
        if key in self._stats:
            return self._stats[key]
        d = self.daily[self.daily["run_id"].isin(self.run_ids(point, replications))]
        xcol = "date" if "date" in d.columns else "day"
        values = d.drop(columns=[c for c in ("run_id", "day", "date", "scenario") if c in d.columns])
        values = values.apply(pd.to_numeric, errors="coerce")
        values.insert(0, "x", d[xcol].values)
        g = values.groupby("x", sort=True)
        stats = {"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()} if len(values.columns) > 1 else None
        self._stats[key] = stats
        return stats


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def load_sweep(folder: str | Path) -> Sweep:
    """A ``fourpl sweep`` output folder as a :class:`Sweep`."""
    folder = Path(folder).expanduser()
    if not (folder / "runs").is_dir():
        raise LoadError(f"{folder}: not a fourpl sweep folder (no runs/)")
    try:
        runs = pd.read_parquet(folder / "runs")
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{folder / 'runs'}: cannot be read ({_one_line(exc)})") from None
    if "scenario" in runs.columns:
        runs["scenario"] = runs["scenario"].astype(str)
    daily = pd.DataFrame(columns=["run_id", "day"])
    if (folder / "daily").is_dir():
        try:
            daily = pd.read_parquet(folder / "daily")
        except Exception as exc:  # noqa: BLE001
            raise LoadError(f"{folder / 'daily'}: cannot be read ({_one_line(exc)})") from None
        if "scenario" in daily.columns:
            daily["scenario"] = daily["scenario"].astype(str)
        daily = _with_dates(daily)
    experiment = {}
    if (folder / "experiment.json").is_file():
        try:
            experiment = json.loads((folder / "experiment.json").read_text())
        except (OSError, ValueError):
            experiment = {}
    name = str(experiment.get("experiment", {}).get("name", folder.name))
    return Sweep(folder=folder, name=name, runs=runs, daily=daily, experiment=experiment)


def open_results(path: str | Path) -> Run | Sweep:
    """A run folder or a sweep folder, whichever ``path`` is."""
    p = Path(str(path).strip()).expanduser()
    if not str(path).strip():
        raise LoadError("no folder given")
    if not p.exists():
        raise LoadError(f"{p}: no such folder")
    if not p.is_dir():
        raise LoadError(f"{p}: not a folder")
    if (p / "runs").is_dir():
        return load_sweep(p)
    if (p / "timeseries.parquet").is_file():
        return load_run(p)
    raise LoadError(f"{p}: neither a fourpl run folder (timeseries.parquet) nor a sweep folder (runs/)")


# ---------------------------------------------------------------- comparing runs


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def differing_params(runs: list[Run]) -> dict[str, list]:
    """Parameters (and the seed, and the scenario) whose values are not the same in every run."""
    out: dict[str, list] = {}
    if len(runs) < 2:
        return out
    keys = ["scenario", "seed"] + sorted(set().union(*(r.params for r in runs)) - {"name", "description"})
    for k in keys:
        vals = [r.scenario if k == "scenario" else r.seed if k == "seed" else r.params.get(k, "—") for r in runs]
        if any(not _same(vals[0], v) for v in vals[1:]):
            out[k] = vals
    return out


def paired_difference(a: Run, b: Run, column: str) -> pd.DataFrame:
    """B minus A of ``column`` on the days both have (x, a, b, diff)."""
    x = "date" if "date" in a.daily.columns and "date" in b.daily.columns else "day"
    if column not in a.daily.columns or column not in b.daily.columns:
        return pd.DataFrame(columns=["x", "a", "b", "diff"])
    da = pd.DataFrame({"x": a.daily[x], "a": pd.to_numeric(a.daily[column], errors="coerce")})
    db = pd.DataFrame({"x": b.daily[x], "b": pd.to_numeric(b.daily[column], errors="coerce")})
    m = da.merge(db, on="x", how="inner").sort_values("x").reset_index(drop=True)
    m["diff"] = m["b"] - m["a"]
    return m


def sweep_paired_difference(sweep: Sweep, point_a: int, point_b: int, column: str,
                            level: float = 0.95) -> pd.DataFrame:
    """B minus A a day, paired by seed (common random numbers): mean, lo, hi, n pairs."""
    from scipy import stats

    d = sweep.daily
    if column not in d.columns:
        return pd.DataFrame(columns=["x", "mean", "lo", "hi", "n"])
    xcol = "date" if "date" in d.columns else "day"
    meta = sweep.runs[["run_id", "point", "seed"]]
    dd = d[["run_id", xcol, column]].merge(meta, on="run_id")
    a = dd[dd["point"] == point_a][[xcol, "seed", column]].rename(columns={column: "a"})
    b = dd[dd["point"] == point_b][[xcol, "seed", column]].rename(columns={column: "b"})
    m = a.merge(b, on=[xcol, "seed"])
    m["diff"] = pd.to_numeric(m["b"], errors="coerce") - pd.to_numeric(m["a"], errors="coerce")
    g = m.groupby(xcol, sort=True)["diff"]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()})
    t = np.where(out["n"] > 1, stats.t.ppf(0.5 + level / 2, np.maximum(out["n"] - 1, 1)), 0.0)
    half = np.nan_to_num(t * out["sd"] / np.sqrt(np.maximum(out["n"], 1)))
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    return out.drop(columns="sd").reset_index().rename(columns={xcol: "x"})


# ---------------------------------------------------------------- breakdowns from column names


@dataclass(frozen=True)
class Family:
    """Columns that are one figure broken down: ``stem`` by ``dim`` (member -> column)."""

    stem: str
    dim: str
    members: dict[str, str]


@lru_cache(maxsize=8)
def _world_dims(world: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        from market.world.spec import load_world_spec

        spec = load_world_spec(world)
    except Exception:  # noqa: BLE001 - an unknown world: breakdowns from names alone
        return ()
    dims = [("market", tuple(sorted(spec.markets))),
            ("channel", tuple(sorted(spec.channels))),
            ("mode", tuple(sorted({str(ln.mode) for ln in spec.lanes}))),
            ("warehouse", tuple(sorted(n.id for n in spec.nodes if n.kind == "warehouse")))]
    return tuple(dims)


def breakdown_dims(columns, world: str = "world") -> dict[str, tuple[str, ...]]:
    """Dimension -> members: markets, channels, modes, warehouses from the world file;
    integrators and provider groups from the columns (``share_<integrator>``,
    ``active_<group>``, ``hhi_<segment>``)."""
    cols = list(columns)
    dims = {k: v for k, v in _world_dims(world) if v}
    ints = sorted(c[len("share_"):] for c in cols if c.startswith("share_") and f"markup_{c[6:]}" in cols)
    if ints:
        dims["integrator"] = tuple(ints)
    groups = sorted(c[len("active_"):] for c in cols if c.startswith("active_") and c != "active_contracts")
    if groups:
        dims["provider group"] = tuple(groups)
    segs = sorted(c[len("hhi_"):] for c in cols if c.startswith("hhi_"))
    if segs:
        dims["segment"] = tuple(segs)
    currencies = sorted(c[len("rate_"):] for c in cols if FX_COLUMN.match(c))
    if currencies:
        dims["currency"] = tuple(currencies)
    return dims


def column_families(columns, world: str = "world") -> tuple[list[Family], list[str]]:
    """See :func:`_column_families` (cached per set of columns)."""
    fams, singles = _column_families(tuple(columns), world)
    return list(fams), list(singles)


@lru_cache(maxsize=64)
def _column_families(columns: tuple, world: str = "world") -> tuple[tuple[Family, ...], tuple[str, ...]]:
    """The columns as families (a figure by market, channel, ...) and the rest (single series).

    A column ``<stem>_<member>`` joins the family (stem, dim) when ``member`` is a member of a
    dimension; a family needs two columns or more. Longer members are tried first (so
    ``carriers_truck`` is matched before ``truck``).
    """
    cols = [c for c in columns if c not in ("day", "date", "run_id", "scenario")]
    dims = breakdown_dims(cols, world)
    cands = sorted(((m, d) for d, ms in dims.items() for m in ms), key=lambda t: -len(t[0]))
    cand_of: dict[str, list[tuple[str, str, str]]] = {}
    size: dict[tuple[str, str], int] = {}
    for c in cols:
        seen_stems = set()
        for m, d in cands:
            if c.endswith("_" + m) and len(c) > len(m) + 1:
                stem = c[: -len(m) - 1]
                if (stem, d) in seen_stems:
                    continue
                seen_stems.add((stem, d))
                cand_of.setdefault(c, []).append((stem, d, m))
                size[(stem, d)] = size.get((stem, d), 0) + 1
    # a member that belongs to two dimensions (postal: a mode and a channel) goes where its
    # stem has the most columns (utilisation_postal with utilisation_truck: by mode)
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for c, cs in cand_of.items():
        stem, d, m = max(cs, key=lambda t: (size[(t[0], t[1])], len(t[2])))
        groups.setdefault((stem, d), {})[m] = c
    fams = [Family(s, d, dict(sorted(ms.items()))) for (s, d), ms in groups.items() if len(ms) >= 2]
    in_fam = {c for f in fams for c in f.members.values()}
    singles = [c for c in cols if c not in in_fam]
    return tuple(fams), tuple(singles)


# ---------------------------------------------------------------- events on the time axis


def shock_spans(daily: pd.DataFrame) -> list[tuple[Any, Any, str]]:
    """(first day, last day, names) of each stretch with the same shocks in force."""
    if "shocks_in_force" not in daily.columns or daily.empty:
        return []
    x = daily["date"] if "date" in daily.columns else daily["day"]
    s = daily["shocks_in_force"].fillna("").astype(str).tolist()
    out, start = [], None
    for i, v in enumerate(s + [""]):
        if start is not None and (i == len(s) or v != s[start]):
            out.append((x.iloc[start], x.iloc[i - 1], s[start]))
            start = None
        if i < len(s) and v and start is None:
            start = i
    return out


@lru_cache(maxsize=8)
def _rules(world: str) -> tuple[tuple[str, str, str], ...]:
    try:
        from market.world.spec import load_world_spec

        spec = load_world_spec(world)
    except Exception:  # noqa: BLE001
        return ()
    out = []
    for territory, rules in (getattr(spec, "duty_rules", {}) or {}).items():
        for r in rules:
            out.append((str(r.start), str(territory), str(getattr(r, "source", "") or "")))
    return tuple(sorted(out))


def rule_changes(daily: pd.DataFrame, world: str = "world") -> list[tuple[pd.Timestamp, str, str]]:
    """Dated customs rules (the world file's duty rule sets) that start inside the run:
    (date, territory, source)."""
    if "date" not in daily.columns or daily.empty:
        return []
    lo, hi = daily["date"].min(), daily["date"].max()
    out = []
    for start, terr, src in _rules(world):
        t = pd.Timestamp(start)
        if lo < t <= hi:
            out.append((t, terr, src))
    return out


# ---------------------------------------------------------------- duty, VAT and landed cost


def derived_parcel_series(parcels: pd.DataFrame | None, daily: pd.DataFrame) -> pd.DataFrame:
    """Daily duty and landed cost per delivered parcel, overall and by market, from a run's
    parcels (finished day): ``duty_per_parcel[_<market>]``, ``landed_cost_per_parcel[_<market>]``
    (logistics price + duty), ``duty_usd[_<market>]``. Empty without parcels."""
    if parcels is None or parcels.empty or "finished_day" not in parcels.columns:
        return pd.DataFrame()
    p = parcels[parcels["finished_day"] >= 0]
    cost = p["price_usd"] if "price_usd" in p.columns else p.get("cost_usd")
    duty = p["duty_usd"].fillna(0) + (p["upstream_duty_usd"].fillna(0) if "upstream_duty_usd" in p.columns else 0)
    f = pd.DataFrame({"day": p["finished_day"].astype(int), "market": p["market"].astype(str),
                      "duty": duty, "landed": cost.fillna(0) + duty})
    days = daily["day"] if "day" in daily.columns else pd.Series(range(len(daily)))
    out = pd.DataFrame({"day": days.values})

    def add(g: pd.DataFrame, suffix: str):
        agg = g.groupby("day").agg(n=("duty", "size"), duty=("duty", "sum"), landed=("landed", "sum"))
        agg = agg.reindex(out["day"].values)
        out[f"duty_usd{suffix}"] = agg["duty"].fillna(0.0).values
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"duty_per_parcel{suffix}"] = (agg["duty"] / agg["n"]).values
            out[f"landed_cost_per_parcel{suffix}"] = (agg["landed"] / agg["n"]).values

    add(f, "")
    for m, g in f.groupby("market", sort=True):
        add(g, f"_{m}")
    return out.drop(columns="day")
