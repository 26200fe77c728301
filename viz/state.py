"""The app's own state: how it builds a model from the controls, and what it records each day.

* :class:`AppModel` is the :class:`market.Marketplace` built from the app's settings (a
  built-in scenario, a seed and the values of the sliders). Mesa's ``ModelController`` rebuilds
  the model on Reset as ``type(model)(**settings)``; this class takes those settings.
* :func:`ui_params` turns the scenario schema's ``ui=True`` rows into slider specifications
  (there is no second list of parameters: the schema decides what is a control).
* :class:`History` records, every day the model steps, each agent's cash, volume, reputation,
  utilisation and profit (by ledger kind), for the agent inspector. It lives beside the model
  (a Mesa recurring event after each step), not in it.

Everything here reads the model through names that may be absent in other versions of the
engine (``getattr`` with defaults): a missing column or attribute leaves a blank, not an error.
"""

from __future__ import annotations

import math
import typing
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from market import Marketplace
from market.scenario import builtin_scenarios, load_raw, load_scenario, parameter_table

DEFAULT_SCENARIO = "baseline"
DEFAULT_SEED = 1


# ---------------------------------------------------------------- parameters from the schema


@dataclass(frozen=True)
class ParamSpec:
    """One control, generated from a ``ui=True`` row of ``market.scenario.parameter_table()``."""

    key: str  # dotted scenario key, e.g. "demand.scale"
    section: str  # "demand"
    label: str  # "Scale"
    kind: str  # "int" | "float" | "choice" | "bool"
    default: Any
    unit: str
    description: str
    step: float | None
    lower: float | None  # the schema's bounds (inclusive or not, see lower_open)
    upper: float | None
    lower_open: bool
    upper_open: bool
    choices: tuple = ()
    source: str = ""

    def help_text(self) -> str:
        """Description, unit, the schema's range, default and source: the control's tooltip."""
        lo = "" if self.lower is None else f"{'(' if self.lower_open else '['}{self.lower:g}"
        hi = "" if self.upper is None else f"{self.upper:g}{')' if self.upper_open else ']'}"
        parts = [self.description or self.key]
        if self.unit:
            parts.append(f"unit: {self.unit}")
        if self.choices:
            parts.append("one of: " + ", ".join(map(str, self.choices)))
        elif lo or hi:
            parts.append(f"range: {lo or '(-∞'}, {hi or '∞)'}")
        parts.append(f"default: {self.default}")
        parts.append(f"source: {self.source or 'not given'}")
        parts.append(f"key: {self.key}")
        return " · ".join(parts)

    def slider_range(self, value: Any = None) -> tuple[float, float, float]:
        """(min, max, step) of a slider: the schema's bounds, cut to a useful span.

        Wide schema bounds (``demand.scale`` up to 200) make a slider useless, so the top is
        the bound or a few times the default (and twice the current value), whichever is less.
        A float ``value`` off the step's grid (a calibrated 0.0107 on a 0.001 slider) makes
        the step finer until it sits on it: a slider snaps its value to its grid, and the
        snapped value would read as a change the user never made.
        """
        step = self.step if self.step else (1 if self.kind == "int" else _nice_step(self.default))
        lo = self.lower if self.lower is not None else 0.0
        if self.kind == "float" and value is not None and _is_number(value):
            step = _fit_step(float(value), lo, step, self.lower_open)
        if self.lower_open:
            lo = lo + step
        ref = [abs(float(self.default or 0)) * 4, lo + 10 * step]
        if value is not None and _is_number(value):
            ref.append(abs(float(value)) * 2)
        hi = _round_up(max(ref), step)
        if self.upper is not None:
            hi = min(hi, self.upper - (step if self.upper_open else 0))
        if self.kind == "int":
            lo, hi, step = int(math.ceil(lo)), int(math.floor(hi)), max(int(step), 1)
        return lo, hi, step


def _fit_step(value: float, lower: float, step: float, lower_open: bool) -> float:
    """The step, or the first of step/2, step/5, step/10, ... on whose grid ``value`` lies."""
    for div in (1, 2, 5, 10, 20, 50, 100, 1000, 10_000, 100_000):
        st = step / div
        lo = lower + st if lower_open else lower
        k = (value - lo) / st
        if abs(k - round(k)) < 1e-6:
            return st
    return step


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _nice_step(default) -> float:
    x = abs(float(default or 1.0)) / 20 or 0.01
    p = 10 ** math.floor(math.log10(x))
    return min((p, 2 * p, 5 * p, 10 * p), key=lambda s: abs(s - x))


def _round_up(x: float, step: float) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 10)


@lru_cache(maxsize=1)
def ui_params() -> tuple[ParamSpec, ...]:
    """The controls: every scenario parameter the schema marks ``ui=True``, in schema order."""
    out = []
    for row in parameter_table():
        if not row.get("ui"):
            continue
        ann = row.get("annotation")
        default = row["default"]
        choices: tuple = ()
        if typing.get_origin(ann) is typing.Literal:
            kind, choices = "choice", tuple(typing.get_args(ann))
        elif ann is bool or isinstance(default, bool):
            kind = "bool"
        elif ann is int or (isinstance(default, int) and not isinstance(default, bool)):
            kind = "int"
        elif ann is float or isinstance(default, float):
            kind = "float"
        else:
            continue  # a list or table: not a slider
        b = row.get("bounds", {})
        lower = b.get("ge", b.get("gt"))
        upper = b.get("le", b.get("lt"))
        section, _, _ = row["key"].partition(".")
        from viz.style import humanize

        out.append(
            ParamSpec(
                key=row["key"],
                section=section,
                label=humanize(row["key"]),
                kind=kind,
                default=default,
                unit=row.get("unit", ""),
                description=row.get("description", ""),
                step=row.get("step"),
                lower=lower,
                upper=upper,
                lower_open="gt" in b,
                upper_open="lt" in b,
                choices=choices,
                source=str(row.get("source", "") or ""),
            )
        )
    return tuple(out)


def scenario_names() -> list[str]:
    """The built-in scenarios' names."""
    return list(builtin_scenarios())


@lru_cache(maxsize=64)
def scenario_description(name: str) -> str:
    """A built-in scenario's description (empty if its file cannot be read)."""
    try:
        return str(load_raw(name).get("description", ""))
    except Exception:  # noqa: BLE001 - a broken scenario file shows no description, not an error
        return ""


def _get_dotted(obj, key: str):
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


@lru_cache(maxsize=64)
def _scenario_values_cached(name: str) -> tuple:
    scn = load_scenario(name)
    return tuple((p.key, _get_dotted(scn, p.key)) for p in ui_params())


def scenario_values(name: str) -> dict[str, Any]:
    """The scenario's own value of every control (what the sliders show after picking it)."""
    return dict(_scenario_values_cached(name))


def overrides_for(scenario_name: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """The slider values that differ from the scenario's own: the overrides to build with."""
    if not values:
        return {}
    base = scenario_values(scenario_name)
    out = {}
    for key, value in values.items():
        if key not in base:
            out[key] = value
        elif _differs(value, base[key]):
            out[key] = value
    return out


def _differs(a, b) -> bool:
    if _is_number(a) and _is_number(b):
        return not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a != b


def default_settings(scenario_name: str = DEFAULT_SCENARIO, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """What the controls start with, and what Mesa's Reset passes to :class:`AppModel`."""
    return {"scenario_name": scenario_name, "seed": int(seed), "values": scenario_values(scenario_name)}


# ---------------------------------------------------------------- the model the app runs


class AppModel(Marketplace):
    """A :class:`Marketplace` built from the app's controls.

    ``AppModel(scenario_name, seed, values)``: ``values`` are the sliders' values; those that
    differ from the scenario's own become overrides. Any other keyword is an override too
    (dotted keys, as for ``Marketplace``). Mesa's Reset also passes a ``scenario`` object of
    its own (a ``mesa.experimental.scenarios.Scenario``): ignored, unless it is a scenario
    name or file.

    The run stops (``running = False``: Play and Step disable) at the scenario's horizon.
    """

    def __init__(
        self,
        scenario_name: str = DEFAULT_SCENARIO,
        seed: int | None = DEFAULT_SEED,
        values: dict[str, Any] | None = None,
        scenario: Any = None,
        rng: Any = None,
        **overrides: Any,
    ):
        if isinstance(scenario, str):
            scenario_name = scenario
        ovr = overrides_for(scenario_name, values)
        ovr.update(overrides)
        seed = rng if rng is not None else seed
        super().__init__(scenario_name, rng=seed, **ovr)
        self.app_seed = seed
        self.app_overrides = ovr
        self.horizon = int(self.config.simulation.days)
        history_for(self)  # records from day 0

    def step(self):  # noqa: D102 - Marketplace.step, then the horizon check
        super().step()
        if self.steps >= self.horizon:
            self.running = False


def settings_of(model) -> dict[str, Any]:
    """The settings a model was built with (to compare with the controls)."""
    name = getattr(model, "scenario_name", DEFAULT_SCENARIO)
    values = {}
    cfg = getattr(model, "config", None)
    for p in ui_params():
        try:
            values[p.key] = _get_dotted(cfg, p.key)
        except AttributeError:
            continue
    return {"scenario_name": name, "seed": getattr(model, "app_seed", None), "values": values}


def pending_changes(settings: dict[str, Any], model) -> list[str]:
    """Human-readable differences between the controls and the running model."""
    built = settings_of(model)
    out = []
    if settings.get("scenario_name") != built["scenario_name"]:
        out.append(f"scenario {settings.get('scenario_name')}")
    if built["seed"] is not None and settings.get("seed") != built["seed"]:
        out.append(f"seed {settings.get('seed')}")
    specs = {p.key: p for p in ui_params()}
    if settings.get("scenario_name") == built["scenario_name"]:
        for key, value in (settings.get("values") or {}).items():
            if key in built["values"] and _differs(value, built["values"][key]):
                label = specs[key].label if key in specs else key
                out.append(f"{label} {value}")
    return out


# ---------------------------------------------------------------- reading the model


ROLES = ("merchant", "carrier", "warehouse_operator", "customs_agent", "integrator")
_ROLE_LISTS = {
    "merchant": "merchants",
    "carrier": "carriers",
    "warehouse_operator": "operators",
    "customs_agent": "brokers",
    "integrator": "integrators",
}


def agents_of(model, role: str) -> list:
    """The model's agents of one role (``merchant``, ``carrier``, ...)."""
    return list(getattr(model, _ROLE_LISTS[role], []) or [])


def all_agents(model) -> list:
    """Every agent of the model, role by role."""
    return [a for role in ROLES for a in agents_of(model, role)]


def names_of(model) -> dict[int, str]:
    """Agent unique id -> name."""
    return {a.unique_id: getattr(a, "name", str(a.unique_id)) for a in all_agents(model)}


def column(model, key: str, default=None):
    """Today's value of a daily figure (``model.today``), or ``default`` if absent."""
    today = getattr(model, "today", None) or {}
    return today.get(key, default)


def series(model) -> dict[str, list]:
    """The daily series collected so far: column -> list (no DataFrame copy)."""
    dc = getattr(model, "datacollector", None)
    return getattr(dc, "model_vars", {}) or {}


def resource_totals(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's use, capacity and base capacity per resource (summed over offers)."""
    o = model.offers
    n = len(model.world.resources)
    res = np.asarray(o.resource)
    used = np.bincount(res, weights=np.asarray(o.used_today, dtype=float), minlength=n)[:n]
    active = np.asarray(getattr(o, "active", np.ones(res.size, dtype=bool)), dtype=bool)
    cap = np.bincount(res, weights=np.where(active, o.capacity, 0.0), minlength=n)[:n]
    base = getattr(o, "base_capacity", o.capacity)
    base_cap = np.bincount(res, weights=np.asarray(base, dtype=float), minlength=n)[:n]
    return used, cap, base_cap


def resource_label(model, r: int) -> str:
    """A readable name of a resource: 'Shenzhen air hub → Los Angeles air gateway (express air)'."""
    w = model.world
    try:
        if int(r) < 0:  # e.g. a 4PL's end-to-end service contract: no single resource
            return "End-to-end service"
        res = w.resources[int(r)]
    except (IndexError, ValueError, TypeError):
        return str(r)
    g = w.graph

    def short(node):  # the map's labels: gateways by code (PVG, LAX), others by a short name
        from viz.style import node_label

        return node_label(node, g.nodes[node]) if node in g.nodes else str(node)

    lane = getattr(res, "lane", None)
    if lane is not None:
        from viz.style import mode_label

        bulk = ", bulk" if getattr(res, "bulk", False) else ""
        return f"{short(lane.u)} → {short(lane.v)} ({mode_label(lane.spec.mode).split(' (')[0].lower()}{bulk})"
    kind = getattr(res, "kind", None)
    if kind == 1:
        return f"Handling at {short(res.node)}"
    if kind in (2, 3):
        what = "Export customs" if kind == 2 else "Import customs"
        regime = f" [{res.regime}{', bulk' if res.bulk else ''}]" if getattr(res, "regime", "") else ""
        return f"{what} at {short(res.node)}{regime}"
    return getattr(res, "name", str(r))


# ---------------------------------------------------------------- per-agent history


class _Table:
    """A growable (days x agents) float table, NaN where nothing was recorded."""

    def __init__(self, cols: int):
        self.data = np.full((64, max(cols, 1)), np.nan)
        self.n = 0

    def append(self, idx: np.ndarray, values: np.ndarray) -> None:
        rows, cols = self.data.shape
        need = int(idx.max()) + 1 if idx.size else 0  # agents may enter the market: more columns
        if self.n >= rows or need > cols:
            grown = np.full((rows * 2 if self.n >= rows else rows, max(cols, 2 * need)), np.nan)
            grown[: self.n, :cols] = self.data[: self.n]
            self.data = grown
        self.data[self.n, idx] = values
        self.n += 1

    def column(self, i: int) -> np.ndarray:
        if i >= self.data.shape[1]:
            return np.full(self.n, np.nan)
        return self.data[: self.n, i]


class History:
    """Each agent's cash, volume, reputation, utilisation and profit, one row a day.

    Rows: the state before the first step (day 0), then one after every step. Columns are agent
    unique ids. ``pnl_by_kind(uid)`` is the agent's cumulative net money flow per ledger kind.
    """

    FIELDS = ("cash", "volume", "volume_kg", "reputation", "utilisation", "pnl")

    def __init__(self, model):
        self._model = weakref.ref(model)
        self.steps: list[int] = []
        self.dates: list = []
        width = max((a.unique_id for a in all_agents(model)), default=0) + 1
        self.tables = {f: _Table(width) for f in self.FIELDS}
        self._journal_seen = 0
        self.flows = np.zeros((0, 0), dtype=np.int64)  # (account, kind) cumulative net cents
        self._prev_flows = None
        self.kinds: tuple[str, ...] = ()
        try:
            from market.money.ledger import KINDS

            self.kinds = tuple(KINDS)
        except ImportError:  # pragma: no cover - the ledger always has KINDS today
            pass
        self._event = None
        try:
            from mesa.time import Priority, Schedule

            # after the day's step (Priority.HIGH) at every whole time unit
            self._event = model.schedule_recurring(
                self.record, Schedule(interval=1.0, start=float(model.time) + 1.0), priority=Priority.LOW
            )
        except (ImportError, AttributeError, ValueError, TypeError):
            self._event = None  # older Mesa: record() is called by the components instead
        self.record()

    @property
    def n(self) -> int:
        """Number of days recorded."""
        return len(self.steps)

    def catch_up(self) -> None:
        """Record today if the model stepped without the event (older Mesa)."""
        m = self._model()
        if m is not None and (not self.steps or self.steps[-1] != m.steps):
            self.record()

    def record(self) -> None:
        """Record today's row for every agent (once a step): cash, volume, reputation,
        utilisation and profit."""
        m = self._model()
        if m is None:
            return
        if self.steps and self.steps[-1] == m.steps:
            return
        agents = all_agents(m)
        if not agents:
            return
        uids = np.array([a.unique_id for a in agents], dtype=np.int64)
        accts = np.array([getattr(a, "acct", -1) for a in agents], dtype=np.int64)
        balances = np.asarray(m.ledger.balances)
        cash = np.where(accts >= 0, balances[np.clip(accts, 0, None)] / 100.0, np.nan)

        # volume today: parcels created (merchants, integrators); parcels or entries served and
        # kg carried on bulk lanes (providers)
        width = int(uids.max()) + 1
        vol = np.zeros(width)
        vol_kg = np.full(width, np.nan)
        util = np.full(width, np.nan)
        if m.steps > 0:
            P = m.parcels
            try:
                today = P["created_day"] == m.day
                vol += np.bincount(np.clip(P["merchant"][today], 0, None), minlength=width)[:width]
                integ = P["integrator"][today]
                vol += np.bincount(integ[integ >= 0], minlength=width)[:width]
            except (KeyError, IndexError, ValueError):
                pass
        o = m.offers
        if getattr(o, "n", 0):
            prov = np.asarray(o.provider)
            ok = (prov >= 0) & (prov < width)
            bulk = np.asarray(m.net.res_bulk)[np.asarray(o.resource)]
            used = np.asarray(o.used_today, dtype=float) if m.steps > 0 else np.zeros(o.n)
            cap = np.where(np.asarray(getattr(o, "active", np.ones(o.n, bool))), o.capacity, 0.0)
            parcel = ok & ~bulk
            vol += np.bincount(prov[parcel], weights=used[parcel], minlength=width)[:width]
            kg = np.bincount(prov[ok & bulk], weights=used[ok & bulk], minlength=width)[:width]
            has_bulk = np.bincount(prov[ok & bulk], minlength=width)[:width] > 0
            vol_kg[has_bulk] = kg[has_bulk]
            u = np.bincount(prov[parcel], weights=used[parcel], minlength=width)[:width]
            c = np.bincount(prov[parcel], weights=cap[parcel], minlength=width)[:width]
            has = np.bincount(prov[parcel], minlength=width)[:width] > 0
            util[has] = np.divide(u[has], c[has], out=np.zeros(int(has.sum())), where=c[has] > 0)

        rep = np.full(uids.size, np.nan)
        book = getattr(m, "reputation", None)
        if book is not None:
            try:
                n_ent = getattr(book, "n_entities", uids.max() + 1)
                known = uids < n_ent
                rep[known] = np.asarray(book.score(uids[known]), dtype=float)
            except Exception:  # noqa: BLE001 - a reputation book of another shape: leave blank
                pass

        pnl = self._pnl_today(m, accts)

        self.tables["cash"].append(uids, cash)
        self.tables["volume"].append(uids, vol[uids])
        self.tables["volume_kg"].append(uids, vol_kg[uids])
        self.tables["reputation"].append(uids, rep)
        self.tables["utilisation"].append(uids, util[uids])
        self.tables["pnl"].append(uids, pnl)
        self.steps.append(int(m.steps))
        self.dates.append(m.date if m.steps > 0 else m.config.simulation.start_date)

    def _pnl_today(self, m, accts: np.ndarray) -> np.ndarray:
        """Net money each agent made today (ledger flows, starting capital left out)."""
        L = m.ledger
        journal, n_blocks = L.lines_since(self._journal_seen)
        n_acc = int(L.n_accounts)
        K = max(len(self.kinds), 1)
        if self.flows.shape != (n_acc, K):
            grown = np.zeros((n_acc, K), dtype=np.int64)
            r, c = min(self.flows.shape[0], n_acc), min(self.flows.shape[1], K)
            grown[:r, :c] = self.flows[:r, :c]
            self.flows = grown
        for line in journal:
            _day, payer, payee, kind, sums = line[:5]
            np.add.at(self.flows, (payee, kind), sums)
            np.subtract.at(self.flows, (payer, kind), sums)
        self._journal_seen = n_blocks
        prev = self._prev_flows
        if prev is None or prev.shape != self.flows.shape:
            p = np.zeros_like(self.flows)
            if prev is not None:
                r, c = min(prev.shape[0], p.shape[0]), min(prev.shape[1], p.shape[1])
                p[:r, :c] = prev[:r, :c]
            prev = p
        today = self.flows - prev
        self._prev_flows = self.flows.copy()
        if "capital" in self.kinds:
            today[:, self.kinds.index("capital")] = 0
        net = today.sum(axis=1) / 100.0
        ok = (accts >= 0) & (accts < n_acc)
        out = np.full(accts.size, np.nan)
        out[ok] = net[accts[ok]]
        if not self.steps:
            out[ok] = 0.0  # day 0: starting capital only
        return out

    def of(self, uid: int, field: str) -> np.ndarray:
        """One agent's series of a field, a value a day recorded."""
        return self.tables[field].column(int(uid))

    def pnl_by_kind(self, acct: int) -> dict[str, float]:
        """Cumulative net flow (USD) of one account per ledger kind, starting capital left out."""
        if acct is None or acct < 0 or acct >= self.flows.shape[0]:
            return {}
        row = self.flows[acct] / 100.0
        return {k: float(v) for k, v in zip(self.kinds, row) if v != 0 and k != "capital"}


_HISTORIES: "weakref.WeakKeyDictionary[Any, History]" = weakref.WeakKeyDictionary()


def history_for(model) -> History:
    """The model's history recorder (created, and recording from now on, at first call)."""
    h = _HISTORIES.get(model)
    if h is None:
        h = History(model)
        _HISTORIES[model] = h
    elif h._event is None:
        h.catch_up()
    return h
