"""Replay a kept ``fourpl run`` folder day by day: its network, and what each lane did, from the files.

Plain data (numpy, pandas), no Solara, so it is tested without a browser. :func:`replay_of`
reads a run folder (a :class:`viz.runs.Run` with a ``folder``) into a :class:`Replay`:

* the network: the world rebuilt from the run's ``config.toml`` with the project's own builder
  (``market.world.load_world``; no simulation). Only when the scenario has shocks is the
  day-0 model built as well (``Marketplace``, no step) so that the real ``ShockBoard`` says
  which lanes each shock disrupts and which places it closes on each day;
* per resource (lane, warehouse handling, customs point) per day:

  - ``used``: the parcels that started a leg on it that day (``parcels.parquet``: each leg k
    of a parcel is stage k of its route, ``legk_start`` its first day; a re-routed parcel
    keeps the legs it has done, so its final route names them all). Bulk sea and rail lanes
    carry stock consignments, which the files do not hold: they show no volume;
  - ``capacity`` and ``rate``: the summed capacity and the mean per-parcel rate of the leg
    contracts in force that day (``contracts.parquet``: ``start <= day < end``; a terminated
    contract, whose end the file does not say, counts until the last day a parcel used it);
  - ``providers``: the providers that carried parcels on it that day (names from
    ``agents.parquet``), and ``contract_providers``: those holding a contract on it in force.

:meth:`Replay.map_data` gives one day's :class:`viz.components.network_map.MapData`, drawn by
the live map's own :func:`viz.lanes.map_figure`; :meth:`Replay.lane_frame` /
:meth:`Replay.node_frame` a lane's or node's history with the columns of the live model's
(:mod:`viz.lanes`), so :func:`viz.lanes.selection_figure` draws them the same way.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from viz.components.network_map import MapData
from viz.runs import LoadError, Run

__all__ = ["Replay", "leg_table", "load_replay", "replay_of", "world_of_config"]

MAX_LEGS = 16  # legk_* columns looked for (a route has at most this many stages)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _scenario_of(folder: Path):
    """The run's resolved scenario from its config.toml (the ``[run]`` table, seed and versions, set
    aside) and the run's seed."""
    path = folder / "config.toml"
    if not path.is_file():
        raise LoadError(f"{folder}: no config.toml, so the run's network cannot be rebuilt")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: cannot be read ({_one_line(exc)})") from None
    run = data.pop("run", {}) or {}
    from market.scenario import ScenarioError, validate

    try:
        cfg = validate(data, str(data.get("name", folder.name)))
    except ScenarioError as exc:
        raise LoadError(f"{path}: {_one_line(exc)}") from None
    return cfg, run.get("seed")


def world_of_config(folder: str | Path):
    """(scenario, world) of a run folder: the world built from the world file its config names."""
    from market.scenario import ScenarioError
    from market.world import load_world

    cfg, _seed = _scenario_of(Path(folder))
    try:
        return cfg, load_world(cfg.world)
    except (ScenarioError, OSError, ValueError) as exc:
        raise LoadError(f"{folder}: world '{cfg.world}' cannot be built ({_one_line(exc)})") from None


def leg_table(parcels: pd.DataFrame, route_resources: np.ndarray) -> pd.DataFrame:
    """One row per leg started: ``day`` (its start), ``resource``, ``provider`` and ``contract`` (-1 spot).

    ``route_resources``: (routes x stages) resource index of each route's stages, -1 past its end.
    """
    route = parcels["route"].to_numpy(dtype=np.int64)
    if route.size and (route.min() < 0 or route.max() >= route_resources.shape[0]):
        raise LoadError(f"parcels.parquet names route {int(route.max())}, the world has "
                        f"{route_resources.shape[0]} routes: the world file changed since the run")
    cols: dict[str, list] = {"day": [], "resource": [], "provider": [], "contract": []}
    for k in range(1, MAX_LEGS + 1):
        if f"leg{k}_start" not in parcels.columns:
            break
        start = parcels[f"leg{k}_start"].to_numpy(dtype=np.int64)
        ok = start >= 0
        if not ok.any():
            continue
        if k - 1 >= route_resources.shape[1]:
            raise LoadError(f"parcels.parquet has a leg {k} that no route of the world has: the world file changed")
        r = route_resources[route[ok], k - 1]
        if (r < 0).any():
            raise LoadError(f"parcels.parquet has a leg {k} past its route's end: the world file changed since the run")
        cols["day"].append(start[ok])
        cols["resource"].append(r)
        for name in ("provider", "contract"):
            c = f"leg{k}_{name}"
            cols[name].append(parcels[c].to_numpy(dtype=np.int64)[ok] if c in parcels.columns
                              else np.full(int(ok.sum()), -1, dtype=np.int64))
    return pd.DataFrame({k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()})


@dataclass
class Replay:
    """A run folder's days: the network, and per resource a day its volume, contracts and providers."""

    run: Run
    world: object  # market.world.World (``.world``, as a live model has: the map draws either)
    dates: list  # pd.Timestamp per day (day 0 first)
    used: np.ndarray  # (days x resources) legs started
    capacity: np.ndarray  # (days x resources) contract capacity in force
    rate: np.ndarray  # (days x resources) mean contract rate a parcel (USD), NaN without a contract
    carriers: dict  # (day, resource) -> provider names that carried parcels
    contract_holders: dict  # (day, resource) -> provider names holding a contract in force
    disrupted: np.ndarray  # (days x lanes)
    closed_lanes: np.ndarray  # (days x lanes)
    closed_nodes: list = field(default_factory=list)  # a set per day
    shocks: list = field(default_factory=list)  # names in force per day ("" for none)

    @property
    def days(self) -> int:
        return len(self.dates)

    def clamp(self, day: int) -> int:
        return int(min(max(int(day), 0), self.days - 1))

    def row(self, day: int) -> pd.Series:
        """The day's row of timeseries.parquet (the headline figures)."""
        return self.run.daily.iloc[self.clamp(day)]

    def map_data(self, day: int) -> MapData:
        """What the map shows on ``day``: each lane's parcels and contract capacity, disruptions."""
        d = self.clamp(day)
        idx = np.array([ln.index for ln in self.world.lanes], dtype=np.int64)
        bulk = np.array([bool(ln.spec.bulk) for ln in self.world.lanes])
        return MapData(flow=self.used[d, idx].copy(), capacity=self.capacity[d, idx].copy(), bulk=bulk,
                       disrupted=self.disrupted[d].copy(), closed_lanes=self.closed_lanes[d].copy(),
                       closed_nodes=set(self.closed_nodes[d]), shocks=self.shocks[d])

    def _names(self, table: dict, resources: list[int]) -> list[str]:
        return [", ".join(sorted({n for r in resources for n in table.get((d, r), ())})) for d in range(self.days)]

    def resource_frame(self, resource: int) -> pd.DataFrame:
        """One resource's days: date, used, capacity, contract rate, utilisation, providers."""
        r = int(resource)
        df = pd.DataFrame({"date": self.dates, "used": self.used[:, r], "capacity": self.capacity[:, r],
                           "contract_rate_usd": self.rate[:, r], "providers": self._names(self.carriers, [r]),
                           "contract_providers": self._names(self.contract_holders, [r])})
        with np.errstate(invalid="ignore", divide="ignore"):
            df["utilisation"] = df["used"] / df["capacity"].where(df["capacity"] > 0)
        return df

    def lane_frame(self, i: int) -> pd.DataFrame:
        return self.resource_frame(self.world.lanes[int(i)].index)

    def node_frame(self, node: str) -> pd.DataFrame:
        """A node's days: its own resources (handling, customs) summed, and the parcels on its lanes."""
        from viz.lanes import node_resources

        w = self.world
        res = node_resources(w, node)
        lanes_in = [ln.index for ln in w.lanes if ln.v == node]
        lanes_out = [ln.index for ln in w.lanes if ln.u == node]

        def total(rs, arr):
            return arr[:, rs].sum(axis=1) if rs else np.full(self.days, np.nan)

        return pd.DataFrame({"date": self.dates, "inbound_flow": total(lanes_in, self.used),
                             "outbound_flow": total(lanes_out, self.used), "used": total(res, self.used),
                             "capacity": total(res, self.capacity), "providers": self._names(self.carriers, res)})

    def selection_frame(self, selected: tuple | None) -> tuple[str, pd.DataFrame]:
        """The title and history table of a clicked lane or node (as :func:`viz.lanes.selection_frame`)."""
        from viz.lanes import lane_name

        if not selected:
            return "", pd.DataFrame()
        kind, ident = selected
        if kind == "lane":
            return lane_name(self.world, int(ident)), self.lane_frame(int(ident))
        g = self.world.graph
        return (str(g.nodes[ident].get("name", ident)) if ident in g.nodes else str(ident)), self.node_frame(ident)


def _contracts_in_force(contracts: pd.DataFrame | None, legs: pd.DataFrame, days: int, n_res: int,
                        names: dict[int, str]):
    """(capacity, rate, holders) a day per resource from the leg contracts in force."""
    cap = np.zeros((days, n_res))
    rate = np.full((days, n_res), np.nan)
    holders: dict = {}
    if contracts is None or contracts.empty:
        return cap, rate, holders
    c = contracts
    leg = (c["resource"].to_numpy() >= 0) & (c["offer"].to_numpy() >= 0 if "offer" in c.columns else True)
    c = c[leg & (c["resource"].to_numpy() < n_res)]
    if c.empty:
        return cap, rate, holders
    start = c["start"].to_numpy(dtype=np.int64)
    end = c["end"].to_numpy(dtype=np.int64)
    if "status" in c.columns:
        term = (c["status"].astype(str) == "terminated").to_numpy()
        if term.any():
            # the file keeps a terminated contract's planned end: it counts until it was last used
            ids = c["contract_id"].to_numpy(dtype=np.int64)
            last = legs.groupby("contract")["day"].max() if "contract" in legs.columns else pd.Series(dtype=int)
            last_used = last.reindex(ids[term]).to_numpy(dtype=float)
            end = end.copy()
            end[term] = np.where(np.isnan(last_used), start[term], last_used + 1).astype(np.int64)
    res = c["resource"].to_numpy(dtype=np.int64)
    capv = c["capacity"].to_numpy(dtype=float)
    ratev = c["rate_parcel"].to_numpy(dtype=float)
    prov = c["provider"].to_numpy(dtype=np.int64) if "provider" in c.columns else np.full(len(c), -1)
    pname = (c["provider_name"].astype(str).to_numpy() if "provider_name" in c.columns
             else np.array([names.get(int(p), str(p)) for p in prov], dtype=object))
    for d in range(days):
        on = (start <= d) & (d < end)
        if not on.any():
            continue
        r = res[on]
        cap[d] = np.bincount(r, weights=capv[on], minlength=n_res)[:n_res]
        n = np.bincount(r, minlength=n_res)[:n_res]
        s = np.bincount(r, weights=ratev[on], minlength=n_res)[:n_res]
        rate[d] = np.divide(s, n, out=np.full(n_res, np.nan), where=n > 0)
        for rr, nm in zip(r, pname[on]):
            holders.setdefault((d, int(rr)), set()).add(str(nm))
    return cap, rate, {k: tuple(sorted(v)) for k, v in holders.items()}


def _disruptions(cfg, seed, world, days: int):
    """Per day: disrupted lanes, closed lanes, closed nodes and the shocks in force, from the
    real ShockBoard on the run's day-0 model (built, never stepped); none without shocks."""
    L = len(world.lanes)
    dis = np.zeros((days, L), dtype=bool)
    closed = np.zeros((days, L), dtype=bool)
    nodes: list[set] = [set() for _ in range(days)]
    names = [""] * days
    if not cfg.shocks:
        return dis, closed, nodes, names
    from market.model import Marketplace
    from viz.components.network_map import map_data

    model = Marketplace(cfg, rng=seed if seed is not None else 0)
    model.world = world  # the map's world object (the same file): lane indices agree
    sb = model.shockboard
    for d in range(days):
        sb.update(d)
        md = map_data(model)
        dis[d], closed[d], nodes[d], names[d] = md.disrupted, md.closed_lanes, set(md.closed_nodes), md.shocks
    return dis, closed, nodes, names


def load_replay(run: Run) -> Replay:
    """A :class:`Replay` of a run loaded from a folder; :class:`LoadError` (one line) if it cannot be."""
    if run.folder is None:
        raise LoadError(f"{run.label}: not a run folder (only a kept `fourpl run` folder can be replayed)")
    folder = Path(run.folder)
    cfg, world = world_of_config(folder)
    seed = _scenario_of(folder)[1]
    ppath = folder / "parcels.parquet"
    if not ppath.is_file():
        raise LoadError(f"{folder}: no parcels.parquet, so the lanes' volumes are unknown")
    try:
        import pyarrow.parquet as pq

        names_in = set(pq.read_schema(ppath).names)
        want = ["route"] + [c for k in range(1, MAX_LEGS + 1)
                            for c in (f"leg{k}_start", f"leg{k}_provider", f"leg{k}_contract") if c in names_in]
        parcels = pd.read_parquet(ppath, columns=want)
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"{ppath}: cannot be read ({_one_line(exc)})") from None
    stages = max((len(rt.resources) for rt in world.routes), default=0)
    route_res = np.full((len(world.routes), max(stages, 1)), -1, dtype=np.int64)
    for rt in world.routes:
        route_res[rt.index, : len(rt.resources)] = rt.resources
    legs = leg_table(parcels, route_res)
    n_res = len(world.resources)
    days = run.days
    dates = list(pd.to_datetime(run.daily["date"])) if "date" in run.daily.columns else list(range(days))
    inside = (legs["day"].to_numpy() >= 0) & (legs["day"].to_numpy() < days)
    lg = legs[inside]
    used = np.bincount(lg["day"].to_numpy() * n_res + lg["resource"].to_numpy(),
                       minlength=days * n_res)[: days * n_res].reshape(days, n_res).astype(float)
    agents = run.table("agents")
    names = ({int(a): str(n) for a, n in zip(agents["agent_id"], agents["name"])}
             if agents is not None and {"agent_id", "name"} <= set(agents.columns) else {})
    carriers: dict = {}
    trio = lg[["day", "resource", "provider"]].drop_duplicates()
    for (d, r), grp in trio.groupby(["day", "resource"], sort=False):
        carriers[(int(d), int(r))] = tuple(sorted({names.get(int(p), str(int(p))) for p in grp["provider"] if p >= 0}))
    cap, rate, holders = _contracts_in_force(run.table("contracts"), legs, days, n_res, names)
    dis, closed, cnodes, shocks = _disruptions(cfg, seed, world, days)
    if "shocks_in_force" in run.daily.columns:  # the run's own record of what was in force
        shocks = [str(s) if isinstance(s, str) else "" for s in run.daily["shocks_in_force"]]
    return Replay(run=run, world=world, dates=dates, used=used, capacity=cap, rate=rate, carriers=carriers,
                  contract_holders=holders, disrupted=dis, closed_lanes=closed, closed_nodes=cnodes, shocks=shocks)


_CACHE: dict[tuple, Replay] = {}
CACHE_SIZE = 4


def replay_of(run: Run) -> Replay:
    """The run's replay, kept for the next call while its files are unchanged (a few runs)."""
    folder = Path(run.folder) if run.folder is not None else None
    stamp: tuple = ()
    if folder is not None:
        stamp = tuple((f, (folder / f).stat().st_mtime_ns if (folder / f).is_file() else 0)
                      for f in ("config.toml", "parcels.parquet", "contracts.parquet", "timeseries.parquet"))
    key = (run.key, stamp)
    got = _CACHE.get(key)
    if got is None:
        got = load_replay(run)
        while len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = got
    return got
