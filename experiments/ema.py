"""An EMA Workbench adapter: the Marketplace as a Python model for exploratory modelling.

EMA Workbench (Kwakkel 2017) samples uncertainties and levers, runs a model for each
experiment and collects outcomes; it adds scenario discovery (PRIM, CART), feature scoring and
many-objective robust decision making. This module gives it the Marketplace::

    from ema_workbench import perform_experiments
    from experiments.ema import marketplace_model, parameter

    model = marketplace_model(
        scenario="baseline", days=180, replications=3, seed=2024,
        uncertainties=[parameter("demand.scale", 0.7, 1.5), parameter("network.capacity_scale", 0.5, 1.5)],
        levers=[parameter("integrators.count", 0, 3), parameter("market.auction")],
        constants={"merchants.exporters": 10})
    experiments, outcomes = perform_experiments(model, scenarios=50, policies=4)

Parameters are scenario keys; their kind (real, integer, categorical, boolean) and default range
come from the scenario schema (:func:`market.scenario.parameter_table`), and a range outside the
schema's bounds is refused with one line naming the key. EMA Workbench wants identifiers for
names, so ``demand.scale`` is called ``demand__scale`` there (``Marketplace`` accepts both).
Outcomes are figures of the run's summary, flattened as in the sweep's run table
(``on_time_rate``, ``by_channel.postal.mean_lead_time_days``, ``mean_landed_cost``, ...), likewise
with ``__`` for dots. With ``replications > 1`` each experiment runs that many times with seeds
spawned from ``seed`` (common to all experiments), and each outcome is the mean over them.

Needs the optional extra: ``pip install 'fourpl-market[ema]'``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from market.scenario import ScenarioError, parameter_table

DEFAULT_OUTCOMES = ("on_time_rate", "mean_lead_time_days", "mean_landed_cost", "mean_logistics_cost",
                    "fourpl_share", "parcels_created")


def ema_name(key: str) -> str:
    """``demand.scale`` -> ``demand__scale`` (EMA names must be identifiers)."""
    return key.replace(".", "__")


def scenario_key(name: str) -> str:
    return name.replace("__", ".")


def _ema():
    try:
        import ema_workbench
    except ImportError:
        raise ImportError("the EMA Workbench adapter needs ema-workbench: pip install 'fourpl-market[ema]'") from None
    return ema_workbench


def _schema_row(key: str) -> dict:
    rows = {r["key"]: r for r in parameter_table()}
    key = scenario_key(key)
    if key not in rows:
        import difflib
        close = difflib.get_close_matches(key, rows, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ScenarioError(f"EMA parameter '{key}' is not a scenario key{hint}")
    return rows[key]


def parameter(key: str, low: float | None = None, high: float | None = None, *,
              values: Sequence[Any] | None = None):
    """An EMA parameter for a scenario key, typed and bounded by the schema.

    ``values`` makes it categorical. Without ``low``/``high`` a numeric parameter takes the
    schema's bounds, which must then be finite.
    """
    ema = _ema()
    row = _schema_row(key)
    key, name, ann = row["key"], ema_name(row["key"]), row["annotation"]
    if values is not None:
        return ema.CategoricalParameter(name, list(values))
    if typing.get_origin(ann) is typing.Literal:
        return ema.CategoricalParameter(name, list(typing.get_args(ann)))
    if ann is bool:
        return ema.BooleanParameter(name)
    if ann not in (int, float):
        raise ScenarioError(f"EMA parameter '{key}' is a {getattr(ann, '__name__', ann)}; give its 'values'")
    b = row["bounds"]
    lo_bound = b.get("ge", b.get("gt", -math.inf))
    hi_bound = b.get("le", b.get("lt", math.inf))
    low = lo_bound if low is None else low
    high = hi_bound if high is None else high
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ScenarioError(f"EMA parameter '{key}': the schema has no finite range; give low and high")
    too_low = low < lo_bound or ("gt" in b and low <= b["gt"])
    too_high = high > hi_bound or ("lt" in b and high >= b["lt"])
    if too_low or too_high or not low < high:
        allowed = ", ".join(f"{k} {v:g}" for k, v in b.items())
        raise ScenarioError(f"EMA parameter '{key}': range [{low:g}, {high:g}] is outside what the schema "
                            f"allows ({allowed}) or empty")
    if ann is int:
        return ema.IntegerParameter(name, int(low), int(high))
    return ema.RealParameter(name, float(low), float(high))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def run_marketplace(base_scenario: str = "baseline", days: int | None = None, seed: int = 1,
                    outcomes: Sequence[str] = DEFAULT_OUTCOMES, **params) -> dict[str, float]:
    """One run with the given scenario keys (``demand__scale=1.2``, ...): the chosen outcomes.

    This is the function EMA Workbench calls for each experiment (and replication). Figures a
    run does not have (e.g. a channel nobody used) come back as NaN.
    """
    from experiments.sweep import flatten_summary
    from market.model import Marketplace

    overrides = {scenario_key(k): _plain(v) for k, v in params.items()}
    model = Marketplace(base_scenario, rng=int(seed), **overrides)
    model.run_for(int(days) if days is not None else model.config.simulation.days)
    flat = flatten_summary(model.finish())
    out = {}
    for o in outcomes:
        v = flat.get(scenario_key(o))
        out[ema_name(o)] = float("nan") if v is None else float(v)
    return out


def marketplace_model(name: str = "fourpl", *, scenario: str = "baseline", days: int | None = 180,
                      uncertainties: Iterable = (), levers: Iterable = (),
                      outcomes: Sequence[str] = DEFAULT_OUTCOMES,
                      constants: Mapping[str, Any] | None = None, replications: int = 1, seed: int = 0):
    """An EMA Workbench model of the Marketplace.

    ``constants`` are scenario keys fixed in every experiment. ``seed`` is the root of the runs'
    seeds: replication r of every experiment gets the r-th child of ``SeedSequence(seed)``
    (common random numbers across experiments, as EMA's replications are meant).
    """
    ema = _ema()
    from experiments.designs import seed_from
    for key in constants or {}:
        _schema_row(key)
    fixed = [ema.Constant("base_scenario", str(scenario)), ema.Constant("days", days),
             ema.Constant("outcomes", tuple(outcomes))]
    fixed += [ema.Constant(ema_name(k), v) for k, v in (constants or {}).items()]
    seeds = [seed_from(c) for c in np.random.SeedSequence(seed).spawn(replications)]
    if replications > 1:
        model = ema.ReplicatorModel(name, function=run_marketplace)
        model.replications = [{"seed": s} for s in seeds]
        model.outcomes = [ema.ScalarOutcome(ema_name(o), function=np.mean) for o in outcomes]
    else:
        model = ema.Model(name, function=run_marketplace)
        fixed.append(ema.Constant("seed", seeds[0]))
        model.outcomes = [ema.ScalarOutcome(ema_name(o)) for o in outcomes]
    model.uncertainties = list(uncertainties)
    model.levers = list(levers)
    model.constants = fixed
    return model
