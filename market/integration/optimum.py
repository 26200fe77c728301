"""Centralised optimum that a 4PL's realised routing cost is measured against.

The benchmark is the 4PL routing problem with parallel 3PL options (Huang et
al. 2013): a planner who sees every leg and all demand at once routes each
commodity (origin, destination, parcels per day, optional delivery-time
limit) over the same multimodal multigraph the integrator composes services
on, paying each leg's ``cost`` per parcel and respecting each leg's daily
``capacity``, shared by all commodities. It is a minimum-cost multicommodity
flow solved exactly with HiGHS through :func:`scipy.optimize.milp` (as an LP,
or with integer parcel flows).

Formulation
-----------
* Commodities without a time limit use arc flows ``x[k, leg] >= 0`` with flow
  conservation at every node.
* A time limit is a per-route constraint, which arc flows cannot express
  (split flow could be fast on average but late on some route). Commodities
  with ``max_time`` therefore use path flows over every simple route whose
  total ``time`` is within the limit, enumerated by depth-first search pruned
  by the fastest remaining time to the destination.
* Every commodity has an unserved volume ``u[k]`` in ``[0, volume]`` paid at
  ``unserved_penalty`` per parcel, so the problem is always feasible. The
  default penalty, 1 + the sum of all admissible leg costs, exceeds the cost
  of any route; hence the optimum leaves no parcel unserved while some route
  with spare capacity remains (for one commodity it is the min-cost maximum
  flow). Pass an economic value instead (lost margin, spot-market rate) to
  let the planner refuse uneconomic demand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = [
    "Commodity",
    "FlowSolution",
    "default_unserved_penalty",
    "min_cost_multicommodity_flow",
    "routing_cost",
    "integration_efficiency",
]

Leg = tuple[Hashable, Hashable, Hashable]
EdgeFilter = Callable[[Hashable, Hashable, Hashable, Mapping], bool]

_ZERO = 1e-9  # flows below this are solver noise


@dataclass(frozen=True)
class Commodity:
    """Daily demand between two nodes; ``max_time`` caps every route's days."""

    source: Hashable
    target: Hashable
    volume: float
    max_time: float | None = None
    name: Hashable = None

    @classmethod
    def coerce(cls, c: Commodity | Sequence) -> Commodity:
        """Accept a :class:`Commodity` or a ``(source, target, volume[, max_time])`` tuple."""
        return c if isinstance(c, Commodity) else cls(*c)


@dataclass
class FlowSolution:
    """Optimal routing of all commodities.

    ``flows[i]`` maps legs ``(u, v, key)`` to parcels per day of commodity
    ``i``; ``path_flows[i]`` maps routes (tuples of legs) to parcels per day
    for time-limited commodities (empty for arc-flow ones). ``total_cost`` is
    the LP objective: ``routing_cost + unserved_cost``.
    """

    commodities: list[Commodity]
    flows: list[dict[Leg, float]]
    path_flows: list[dict[tuple[Leg, ...], float]]
    unserved: np.ndarray
    routing_cost: float
    unserved_cost: float
    unserved_penalty: float
    integer: bool
    status: str
    edge_load: dict[Leg, float] = field(default_factory=dict)

    @property
    def total_cost(self) -> float:
        """Routing cost plus the penalty on unserved volume."""
        return self.routing_cost + self.unserved_cost

    @property
    def served(self) -> np.ndarray:
        """Parcels per day delivered, per commodity."""
        return np.array([c.volume for c in self.commodities], dtype=float) - self.unserved

    @property
    def feasible(self) -> bool:
        """Whether all demand is served (within solver tolerance)."""
        volume = np.array([c.volume for c in self.commodities], dtype=float)
        return bool(np.all(self.unserved <= 1e-7 * np.maximum(1.0, volume)))

    @property
    def unserved_volume(self) -> float:
        """Parcels per day no capacity could carry, over all commodities."""
        return float(self.unserved.sum())


def _admissible_legs(G: nx.MultiDiGraph, edge_ok: EdgeFilter | None):
    legs, costs, caps, times = [], [], [], []
    for u, v, k, d in G.edges(keys=True, data=True):
        if u == v:
            continue  # a self-loop never helps a non-negative-cost flow
        if edge_ok is not None and not edge_ok(u, v, k, d):
            continue
        cap = float(d.get("capacity", math.inf))
        if cap <= 0:
            continue
        cost = float(d["cost"])
        if not cost >= 0:
            raise ValueError(f"leg {(u, v, k)} has negative or NaN cost {cost}")
        legs.append((u, v, k))
        costs.append(cost)
        caps.append(cap)
        times.append(float(d.get("time", 0.0)))
    return legs, np.array(costs), np.array(caps), np.array(times)


def default_unserved_penalty(G: nx.MultiDiGraph, edge_ok: EdgeFilter | None = None) -> float:
    """1 + the sum of all admissible leg costs: above the cost of any simple route."""
    _, costs, _, _ = _admissible_legs(G, edge_ok)
    return 1.0 + float(costs.sum())


def _time_feasible_paths(legs, times, source, target, max_time, max_paths):
    """Every simple route source->target with total time <= max_time (DFS + bound)."""
    out_legs: dict[Hashable, list[int]] = {}
    R = nx.DiGraph()
    for i, (u, v, _) in enumerate(legs):
        out_legs.setdefault(u, []).append(i)
        w = times[i]
        if not R.has_edge(v, u) or R[v][u]["time"] > w:
            R.add_edge(v, u, time=w)
    if target not in R:
        return []
    # fastest time from each node to the target: a lower bound for pruning
    to_target = nx.single_source_dijkstra_path_length(R, target, weight="time")
    slack = 1e-9 * max(1.0, abs(max_time))
    paths: list[tuple[int, ...]] = []

    def dfs(node, elapsed, on_path, chosen):
        if node == target:
            paths.append(tuple(chosen))
            if len(paths) > max_paths:
                raise ValueError(
                    f"more than {max_paths} time-feasible routes {source!r}->{target!r}; "
                    "raise max_paths or filter legs"
                )
            return
        for i in out_legs.get(node, ()):
            v = legs[i][1]
            if v in on_path or v not in to_target:
                continue
            t = elapsed + times[i]
            if t + to_target[v] > max_time + slack:
                continue
            on_path.add(v)
            chosen.append(i)
            dfs(v, t, on_path, chosen)
            chosen.pop()
            on_path.discard(v)

    if source in to_target:
        dfs(source, 0.0, {source}, [])
    return paths


def min_cost_multicommodity_flow(
    G: nx.MultiDiGraph,
    commodities: Iterable[Commodity | Sequence],
    *,
    unserved_penalty: float | None = None,
    integer: bool = False,
    edge_ok: EdgeFilter | None = None,
    max_paths: int = 20_000,
    options: Mapping | None = None,
) -> FlowSolution:
    """Centralised minimum-cost routing of all commodities over shared capacity.

    Parameters
    ----------
    G:
        Multigraph whose legs carry ``cost`` (per parcel), ``capacity``
        (parcels per day, default ``inf``) and ``time`` (days, needed only
        for time-limited commodities).
    commodities:
        :class:`Commodity` objects or ``(source, target, volume[, max_time])``.
    unserved_penalty:
        Cost per unserved parcel; default :func:`default_unserved_penalty`.
    integer:
        Whole parcels on every leg (MILP). Unserved volume stays continuous,
        so fractional demand is still feasible.
    edge_ok:
        ``edge_ok(u, v, key, data) -> bool`` restricts the legs, as in
        :func:`market.composition.pareto_services`.
    max_paths:
        Guard on the routes enumerated per time-limited commodity.
    options:
        Passed to :func:`scipy.optimize.milp` (e.g. ``time_limit``).
    """
    comms = [Commodity.coerce(c) for c in commodities]
    for c in comms:
        if not c.volume >= 0:
            raise ValueError(f"commodity volume must be non-negative: {c}")
        for node in (c.source, c.target):
            if node not in G:
                raise nx.NodeNotFound(f"commodity node {node!r} not in graph")
    legs, costs, caps, times = _admissible_legs(G, edge_ok)
    penalty = 1.0 + float(costs.sum()) if unserved_penalty is None else float(unserved_penalty)

    # Directed reachability on admissible legs prunes arc variables.
    H = nx.DiGraph()
    H.add_nodes_from(G.nodes)
    H.add_edges_from((u, v) for u, v, _ in legs)

    col_cost: list[np.ndarray] = []  # objective blocks
    cap_rows, cap_cols, cap_vals = [], [], []  # capacity matrix entries
    eq_rows, eq_cols, eq_vals, eq_rhs = [], [], [], []
    blocks = []  # per commodity: (kind, offset, data)
    n_vars = 0
    n_eq = 0
    for c in comms:
        if c.source == c.target or c.volume == 0:
            blocks.append(("trivial", None, None))
            continue
        if c.max_time is None:
            fwd = nx.descendants(H, c.source) | {c.source}
            bwd = nx.ancestors(H, c.target) | {c.target}
            # legs on some source->target walk; legs into the source or out of
            # the target only carry cycles, never useful at non-negative cost
            use = [
                i for i, (u, v, _) in enumerate(legs) if u in fwd and v in bwd and v != c.source and u != c.target
            ]
            nodes = dict.fromkeys((c.source, c.target))  # ordered set
            for i in use:
                nodes.update(dict.fromkeys(legs[i][:2]))
            row_of = {n: n_eq + j for j, n in enumerate(nodes)}
            n_eq += len(nodes)
            for j, i in enumerate(use):
                u, v, _ = legs[i]
                col = n_vars + j
                eq_rows += [row_of[u], row_of[v]]
                eq_cols += [col, col]
                eq_vals += [1.0, -1.0]
                if caps[i] < math.inf:
                    cap_rows.append(i)
                    cap_cols.append(col)
                    cap_vals.append(1.0)
            u_col = n_vars + len(use)
            # out - in + u at the source = volume; out - in - u at the target = -volume
            eq_rows += [row_of[c.source], row_of[c.target]]
            eq_cols += [u_col, u_col]
            eq_vals += [1.0, -1.0]
            rhs = dict.fromkeys(nodes, 0.0)
            rhs[c.source], rhs[c.target] = c.volume, -c.volume
            eq_rhs += [rhs[n] for n in nodes]
            col_cost.append(np.append(costs[use], penalty))
            blocks.append(("arc", n_vars, use))
            n_vars += len(use) + 1
        else:
            paths = _time_feasible_paths(legs, times, c.source, c.target, float(c.max_time), max_paths)
            row = n_eq
            n_eq += 1
            for j, p in enumerate(paths):
                col = n_vars + j
                eq_rows.append(row)
                eq_cols.append(col)
                eq_vals.append(1.0)
                for i in p:
                    if caps[i] < math.inf:
                        cap_rows.append(i)
                        cap_cols.append(col)
                        cap_vals.append(1.0)
            u_col = n_vars + len(paths)
            eq_rows.append(row)
            eq_cols.append(u_col)
            eq_vals.append(1.0)
            eq_rhs.append(c.volume)
            col_cost.append(np.append([costs[list(p)].sum() for p in paths], penalty))
            blocks.append(("path", n_vars, paths))
            n_vars += len(paths) + 1

    flows: list[dict[Leg, float]] = [{} for _ in comms]
    path_flows: list[dict[tuple[Leg, ...], float]] = [{} for _ in comms]
    unserved = np.zeros(len(comms))
    if n_vars == 0:
        return FlowSolution(comms, flows, path_flows, unserved, 0.0, 0.0, penalty, integer, "optimal")

    c_vec = np.concatenate(col_cost)
    lb = np.zeros(n_vars)
    ub = np.full(n_vars, np.inf)
    integrality = np.full(n_vars, 1 if integer else 0)
    for (kind, off, data), c in zip(blocks, comms):
        if kind == "trivial":
            continue
        u_col = off + len(data)
        ub[u_col] = c.volume
        integrality[u_col] = 0  # unserved volume may be fractional

    constraints = [
        LinearConstraint(
            sparse.csr_array((eq_vals, (eq_rows, eq_cols)), shape=(n_eq, n_vars)), eq_rhs, eq_rhs
        )
    ]
    if cap_rows:
        # keep only legs with finite capacity as rows
        finite = sorted(set(cap_rows))
        row_index = {i: r for r, i in enumerate(finite)}
        A_cap = sparse.csr_array(
            (cap_vals, ([row_index[i] for i in cap_rows], cap_cols)), shape=(len(finite), n_vars)
        )
        constraints.append(LinearConstraint(A_cap, -np.inf, caps[finite]))

    res = milp(c_vec, integrality=integrality, bounds=Bounds(lb, ub), constraints=constraints, options=dict(options or {}))
    if res.x is None:
        raise RuntimeError(f"HiGHS failed on the routing benchmark: {res.message}")
    x = res.x
    edge_load: dict[Leg, float] = {}
    for idx, ((kind, off, data), c) in enumerate(zip(blocks, comms)):
        if kind == "trivial":
            continue
        if kind == "arc":
            for j, i in enumerate(data):
                f = x[off + j]
                if f > _ZERO:
                    flows[idx][legs[i]] = f
        else:
            for j, p in enumerate(data):
                f = x[off + j]
                if f > _ZERO:
                    route = tuple(legs[i] for i in p)
                    path_flows[idx][route] = f
                    for leg in route:
                        flows[idx][leg] = flows[idx].get(leg, 0.0) + f
        unserved[idx] = max(0.0, x[off + len(data)])
        for leg, f in flows[idx].items():
            edge_load[leg] = edge_load.get(leg, 0.0) + f
    routing = routing_cost(G, edge_load)
    return FlowSolution(
        commodities=comms,
        flows=flows,
        path_flows=path_flows,
        unserved=unserved,
        routing_cost=routing,
        unserved_cost=penalty * float(unserved.sum()),
        unserved_penalty=penalty,
        integer=integer,
        status="optimal" if res.status == 0 else res.message,
        edge_load=edge_load,
    )


def routing_cost(G: nx.MultiDiGraph, leg_volumes: Mapping[Leg, float] | Iterable[tuple[Leg, float]]) -> float:
    """Cost of moving the given parcels per day over legs ``(u, v, key)``.

    Use it on the integrator's realised bookings to get the numerator that
    :func:`integration_efficiency` compares with the optimum.
    """
    items = leg_volumes.items() if isinstance(leg_volumes, Mapping) else leg_volumes
    return float(sum(float(G.edges[leg]["cost"]) * float(vol) for leg, vol in items))


def integration_efficiency(realised_cost, optimum_cost):
    """``optimum / realised``: 1 means the 4PL routes as well as a central planner.

    It is at most 1 whenever the realised cost is that of a feasible routing
    of the same demand (priced the same way, unserved parcels included),
    because the optimum is the cheapest such routing. Zero realised and zero
    optimum cost count as fully efficient. Works elementwise on arrays.
    """
    r = np.asarray(realised_cost, dtype=float)
    o = np.asarray(optimum_cost, dtype=float)
    if np.any(r < 0) or np.any(o < 0):
        raise ValueError("costs must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(r > 0, o / np.where(r > 0, r, 1.0), np.where(o > 0, np.inf, 1.0))
    return float(eff) if eff.ndim == 0 else eff
