"""End-to-end service composition for a 4PL integrator.

A 4PL does not own assets: it *composes* a door-to-door service out of legs it
can buy from 3PLs (a transport lane run by one provider, a warehouse stage, a
customs brokerage stage, a last-mile leg). The legs form a multimodal
``networkx.MultiDiGraph``; parallel edges between two nodes are competing
providers or modes for the same hop. Every edge carries

``cost``      USD per parcel (float, >= 0)
``time``      expected days (float, >= 0)
``risk``      probability the leg fails (loss or serious delay), 0..1;
              defaults to 0 when absent
``capacity``  parcels per day (may be ``inf``); defaults to ``inf``

plus free attributes such as ``mode``, ``provider`` or ``stage`` that filters
can look at.

The composition problem is multi-objective: a merchant trades cost against
time against risk, so the integrator needs the whole Pareto front of routes,
not one shortest path. :func:`pareto_services` computes it with Martins'
multi-objective label-setting algorithm; :func:`brute_force_pareto` is the
exhaustive reference used in tests; :func:`pick_offers` turns a front into a
small menu of named offers; :class:`ServiceCache` keeps fronts between parcels
and invalidates only what a graph change can affect.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

__all__ = [
    "Leg",
    "EdgeFilter",
    "Service",
    "pareto_services",
    "brute_force_pareto",
    "pick_offers",
    "ServiceCache",
    "OFFER_NAMES",
]

Leg = tuple[Hashable, Hashable, Hashable]
"""One bought leg: ``(u, v, key)`` of an edge in the multigraph."""

EdgeFilter = Callable[[Hashable, Hashable, Hashable, Mapping], bool]
"""``edge_ok(u, v, key, data) -> bool``: whether a leg may be used."""

DEFAULT_OBJECTIVES: tuple[str, ...] = ("cost", "time", "risk")

# Objectives that are failure probabilities: they combine as 1 - prod(1 - r),
# which label setting handles as the additive cost -log(1 - r).
_PROBABILITY_OBJECTIVES = frozenset({"risk"})


# ---------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    """A composed door-to-door service: a simple path of legs.

    ``cost`` and ``time`` are sums over legs, ``risk`` is the probability that
    at least one leg fails (legs fail independently), ``capacity`` is the
    bottleneck leg capacity in parcels per day. ``extras`` holds the totals of
    any further additive objectives the front was computed on, as
    ``(name, value)`` pairs.
    """

    legs: tuple[Leg, ...]
    nodes: tuple[Hashable, ...]
    cost: float
    time: float
    risk: float
    capacity: float = math.inf
    extras: tuple[tuple[str, float], ...] = ()

    @property
    def reliability(self) -> float:
        """Probability that the parcel arrives without a failure."""
        return 1.0 - self.risk

    @property
    def hops(self) -> int:
        """Number of legs."""
        return len(self.legs)

    def value(self, name: str) -> float:
        """Total of one objective (``cost``, ``time``, ``risk`` or an extra)."""
        if name in ("cost", "time", "risk", "capacity"):
            return getattr(self, name)
        for key, val in self.extras:
            if key == name:
                return val
        raise KeyError(f"service has no objective {name!r}")

    def vector(self, objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> tuple[float, ...]:
        """The service's objective values in the given order."""
        return tuple(self.value(name) for name in objectives)

    def label(self, G: nx.MultiDiGraph | None = None, attrs: Sequence[str] = ("mode", "provider")) -> str:
        """Human-readable route, e.g. ``SZX -[air/DHL]-> LEJ -[road/DPD]-> BER``.

        Without ``G`` the edge keys are shown instead of leg attributes.
        """
        if not self.legs:
            return str(self.nodes[0]) if self.nodes else ""
        parts = [str(self.legs[0][0])]
        for u, v, k in self.legs:
            if G is not None:
                data = G.edges[u, v, k]
                tag = "/".join(str(data[a]) for a in attrs if a in data) or str(k)
            else:
                tag = str(k)
            parts.append(f" -[{tag}]-> {v}")
        return "".join(parts)


def _leg_value(data: Mapping, name: str) -> float:
    """Additive label-setting value of one leg for one objective."""
    if name in _PROBABILITY_OBJECTIVES:
        r = float(data.get(name, 0.0))
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"leg {name} must lie in [0, 1], got {r}")
        # -log(1 - r): sums along a path to -log(prob. no leg fails).
        return -math.log1p(-r) if r < 1.0 else math.inf
    try:
        x = float(data[name])
    except KeyError:
        raise KeyError(f"leg is missing objective attribute {name!r}") from None
    if not x >= 0.0:  # also rejects NaN
        raise ValueError(f"leg {name} must be non-negative for label setting, got {x}")
    return x


def _make_service(G: nx.MultiDiGraph, source: Hashable, legs: Sequence[Leg], objectives: Sequence[str]) -> Service:
    """Totals of a path computed from the legs themselves (not from labels)."""
    cost = time = 0.0
    survive = 1.0
    capacity = math.inf
    extra_names = [n for n in objectives if n not in ("cost", "time", "risk")]
    extra_tot = dict.fromkeys(extra_names, 0.0)
    nodes = [source]
    for u, v, k in legs:
        data = G.edges[u, v, k]
        cost += float(data.get("cost", 0.0))
        time += float(data.get("time", 0.0))
        survive *= 1.0 - float(data.get("risk", 0.0))
        capacity = min(capacity, float(data.get("capacity", math.inf)))
        for name in extra_names:
            if name in _PROBABILITY_OBJECTIVES:  # pragma: no cover - only "risk" today
                extra_tot[name] = 1.0 - (1.0 - extra_tot[name]) * (1.0 - float(data.get(name, 0.0)))
            else:
                extra_tot[name] += float(data[name])
        nodes.append(v)
    return Service(
        legs=tuple(legs),
        nodes=tuple(nodes),
        cost=cost,
        time=time,
        risk=1.0 - survive,
        capacity=capacity,
        extras=tuple(extra_tot.items()),
    )


def _check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    objectives = tuple(objectives)
    if not objectives:
        raise ValueError("need at least one objective")
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"duplicate objectives in {objectives}")
    return objectives


def _strictly_dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere (minimisation)."""
    better = False
    for x, y in zip(a, b):
        if x > y:
            return False
        if x < y:
            better = True
    return better


def _dominates_3(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """:func:`_strictly_dominates` for three objectives, unrolled (the search's inner test):
    no worse everywhere, and not equal, is better somewhere (values are never NaN)."""
    return a[0] <= b[0] and a[1] <= b[1] and a[2] <= b[2] and a != b


def _dominates_for(n_objectives: int):
    return _dominates_3 if n_objectives == 3 else _strictly_dominates


# ---------------------------------------------------------------------------
# Martins' label-setting algorithm
# ---------------------------------------------------------------------------


class _Label:
    __slots__ = ("values", "hops", "node", "leg", "parent", "nodes_on_path", "dead")

    def __init__(self, values, hops, node, leg, parent, nodes_on_path):
        self.values = values
        self.hops = hops
        self.node = node
        self.leg = leg
        self.parent = parent
        self.nodes_on_path = nodes_on_path
        self.dead = False

    def legs(self) -> list[Leg]:
        out = []
        lab = self
        while lab.leg is not None:
            out.append(lab.leg)
            lab = lab.parent
        out.reverse()
        return out


@dataclass
class _SearchTrace:
    """What a search read, so a cache can tell which graph changes matter."""

    expanded: set  # nodes whose out-legs were read
    truncated: bool = False


def _martins(
    G: nx.MultiDiGraph,
    source: Hashable,
    target: Hashable,
    objectives: tuple[str, ...],
    edge_ok: EdgeFilter | None,
    max_hops: int | None,
    max_labels: int | None,
) -> tuple[list[_Label], _SearchTrace]:
    """Core of :func:`pareto_services`; returns permanent labels at ``target``."""
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} not in graph")
    if target not in G:
        raise nx.NodeNotFound(f"target {target!r} not in graph")
    trace = _SearchTrace(expanded=set())
    zero = (0.0,) * len(objectives)
    start = _Label(zero, 0, source, None, None, (source,))
    if source == target:
        return [start], trace

    hop_aware = max_hops is not None
    # Labels at each node that are alive (permanent or still in the queue).
    labels_at: dict[Hashable, list[_Label]] = {source: [start]}
    target_labels: list[_Label] = []  # alive labels at the target
    permanent_at_target: list[_Label] = []
    counter = itertools.count()
    heap: list = [(zero, 0, next(counter), start)]
    n_permanent = 0
    dominates = _dominates_for(len(objectives))
    # A node's out-legs, read once per search: [head, key, data, admissible, leg values], the
    # last two filled in the first time a label tries the leg (as the search would read them).
    out_legs: dict[Hashable, list[list]] = {}

    while heap:
        values, hops, _, lab = heapq.heappop(heap)
        if lab.dead:
            continue
        node = lab.node
        if node == target:
            # Lexicographically smallest remaining label: nothing later can
            # dominate it, so it is an efficient route.
            permanent_at_target.append(lab)
            n_permanent += 1
            if max_labels is not None and n_permanent >= max_labels and heap:
                trace.truncated = True
                break
            continue
        # A label strictly dominated by a complete route can only yield
        # dominated routes: legs add non-negative amounts.
        if any(dominates(t.values, values) for t in target_labels):
            lab.dead = True
            labels_at[node].remove(lab)
            continue
        n_permanent += 1
        if max_labels is not None and n_permanent > max_labels:
            trace.truncated = True
            break
        if hop_aware and hops >= max_hops:
            continue
        trace.expanded.add(node)
        legs = out_legs.get(node)
        if legs is None:
            legs = out_legs[node] = [[v, key, data, None, None]
                                     for _, v, key, data in G.out_edges(node, keys=True, data=True)]
        on_path = lab.nodes_on_path
        for leg in legs:
            v, key, data, ok, leg_values = leg
            if v in on_path:  # simple paths only
                continue
            if ok is None:
                ok = leg[3] = edge_ok is None or bool(edge_ok(node, v, key, data))
            if not ok:
                continue
            if leg_values is None:
                leg_values = leg[4] = tuple(_leg_value(data, name) for name in objectives)
            new_values = tuple(x + y for x, y in zip(values, leg_values))
            new_hops = hops + 1
            if any(dominates(t.values, new_values) for t in target_labels):
                continue
            here = labels_at.setdefault(v, [])
            # The target's front ignores hops (no leg leaves it); elsewhere a
            # label with fewer hops may still be needed under a hop limit.
            use_hops = hop_aware and v != target
            if use_hops:
                if any(dominates(o.values, new_values) and o.hops <= new_hops for o in here):
                    continue
            elif any(dominates(o.values, new_values) for o in here):
                continue
            # Drop queued labels the new one dominates. Permanent ones are
            # never dominated: they are lexicographically smaller.
            keep = []
            for o in here:
                if not o.dead and dominates(new_values, o.values) and (not use_hops or new_hops <= o.hops):
                    o.dead = True
                    if v == target:
                        target_labels.remove(o)
                else:
                    keep.append(o)
            here[:] = keep
            new = _Label(new_values, new_hops, v, (node, v, key), lab, on_path + (v,))
            here.append(new)
            if v == target:
                target_labels.append(new)
            heapq.heappush(heap, (new_values, new_hops, next(counter), new))
    return permanent_at_target, trace


def pareto_services(
    G: nx.MultiDiGraph,
    source: Hashable,
    target: Hashable,
    *,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    edge_ok: EdgeFilter | None = None,
    max_hops: int | None = None,
    max_labels: int | None = None,
) -> list[Service]:
    """All Pareto-efficient simple routes from ``source`` to ``target``.

    Martins' multi-objective label-setting algorithm: every node keeps a set
    of mutually non-dominated labels (objective vectors of partial routes); the
    lexicographically smallest queued label is made permanent and extended
    along every admissible out-leg; new labels strictly dominated at their
    node, or by a label already at the target, are discarded. Objectives are
    edge attribute names minimised as sums, except ``risk``, which combines as
    ``1 - prod(1 - r)`` and is handled internally as the additive
    ``-log(1 - r)`` so that label setting stays exact.

    Routes with identical objective vectors are all returned (none dominates
    the other). Results come in lexicographic order of ``objectives``.

    Parameters
    ----------
    edge_ok:
        ``edge_ok(u, v, key, data) -> bool`` keeps only admissible legs, e.g.
        a channel's allowed modes, open lanes, spare capacity >= volume.
    max_hops:
        Only routes with at most this many legs. Labels then also compete on
        hop count so the front under the limit stays exact.
    max_labels:
        Safety valve: stop after this many labels became permanent. The
        routes returned are then still efficient, but possibly not all of
        them (the lexicographically first ones).
    """
    objectives = _check_objectives(objectives)
    found, _ = _martins(G, source, target, objectives, edge_ok, max_hops, max_labels)
    return [_make_service(G, source, lab.legs(), objectives) for lab in found]


def brute_force_pareto(
    G: nx.MultiDiGraph,
    source: Hashable,
    target: Hashable,
    *,
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    edge_ok: EdgeFilter | None = None,
    max_hops: int | None = None,
) -> list[Service]:
    """Reference Pareto front by enumerating every simple path (exponential).

    Same semantics and ordering as :func:`pareto_services`; meant for tests
    and tiny graphs.
    """
    objectives = _check_objectives(objectives)
    if edge_ok is not None:
        H = nx.subgraph_view(G, filter_edge=lambda u, v, k: edge_ok(u, v, k, G.edges[u, v, k]))
    else:
        H = G
    candidates = []
    for path in nx.all_simple_edge_paths(H, source, target, cutoff=max_hops):
        values = (0.0,) * len(objectives)
        for u, v, k in path:  # accumulate in path order, as label setting does
            data = G.edges[u, v, k]
            values = tuple(x + _leg_value(data, name) for x, name in zip(values, objectives))
        candidates.append((values, len(path), tuple(path)))
    front = [c for c in candidates if not any(_strictly_dominates(o[0], c[0]) for o in candidates)]
    front.sort(key=lambda c: (c[0], c[1]))
    return [_make_service(G, source, path, objectives) for _, _, path in front]


# ---------------------------------------------------------------------------
# Offers
# ---------------------------------------------------------------------------

OFFER_NAMES = ("economy", "standard", "express", "secure")
"""Built-in offer names: min cost, best compromise, min time, min risk."""

_EXTREME_OFFERS = {
    "economy": ("cost", "time", "risk"),
    "express": ("time", "cost", "risk"),
    "secure": ("risk", "cost", "time"),
}


def pick_offers(
    services: Iterable[Service],
    names: Sequence[str] = ("economy", "standard", "express"),
    *,
    weights: Mapping[str, float] | None = None,
) -> dict[str, Service]:
    """Choose a small menu of distinct named offers from a Pareto front.

    ``economy`` is the cheapest route, ``express`` the fastest, ``secure`` the
    least risky (ties broken on the other objectives). ``standard`` is the
    compromise: objectives are min-max normalised over the front and the
    route nearest (weighted Euclidean) to the ideal point is chosen, among
    routes not already offered. A route is offered under one name only:
    extreme offers are picked first, and a name whose best route is already
    taken is left out, so the menu can be shorter than ``names``.

    ``weights`` (for ``standard``) maps ``cost``/``time``/``risk`` to
    importance, default equal. The result keeps the order of ``names``.
    """
    pool = list(dict.fromkeys(services))  # dedupe, keep order
    unknown = set(names) - set(OFFER_NAMES)
    if unknown:
        raise ValueError(f"unknown offer names {sorted(unknown)}; known: {OFFER_NAMES}")
    chosen: dict[str, Service] = {}
    taken: set[Service] = set()
    for name in names:  # extremes first: they are the front's anchors
        if name in _EXTREME_OFFERS and pool:
            order = _EXTREME_OFFERS[name]
            best = min(pool, key=lambda s: tuple(s.value(o) for o in order) + (s.hops,))
            if best not in taken:
                chosen[name] = best
                taken.add(best)
    if "standard" in names:
        rest = [s for s in pool if s not in taken]
        if rest:
            chosen["standard"] = _compromise(pool, rest, weights)
    return {name: chosen[name] for name in names if name in chosen}


def _compromise(front: list[Service], candidates: list[Service], weights: Mapping[str, float] | None) -> Service:
    objs = ("cost", "time", "risk")
    w = np.array([1.0 if weights is None else float(weights.get(o, 0.0)) for o in objs])
    X = np.array([[s.value(o) for o in objs] for s in front], dtype=float)
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant objective does not discriminate
    C = (np.array([[s.value(o) for o in objs] for s in candidates], dtype=float) - lo) / span
    dist = np.sqrt(((w * C) ** 2).sum(axis=1))
    return candidates[int(np.argmin(dist))]


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


@dataclass
class _Entry:
    services: list[Service]
    used_legs: frozenset
    expanded: frozenset
    truncated: bool


class ServiceCache:
    """Pareto fronts kept per ``(source, target, filter_key)`` across parcels.

    The cache does not watch the graph: whoever changes a leg tells it.

    * :meth:`leg_changed` with ``worsened=True`` (the leg got costlier, slower,
      riskier, lost capacity or was closed - anything that can only make it
      fail a filter it used to pass) invalidates exactly the entries whose
      routes use that leg. A worse leg off every efficient route cannot enter
      the front.
    * :meth:`leg_changed` without ``worsened`` (any change, including a leg
      getting better) and :meth:`leg_added` invalidate the entries whose search
      read the legs leaving that node (it held a non-dominated partial route).
      The search is deterministic and never looked at the other legs, so those
      entries are unaffected. This is sound and far from "all entries"; call
      :meth:`clear` when in doubt.
    * :meth:`leg_removed` is a worsening of one leg.

    Fronts truncated by ``max_labels`` are dropped on any change. ``hits`` and
    ``misses`` count lookups.

    ``edge_ok`` filters must be pure functions of the leg data (plus whatever
    ``filter_key`` stands for); ``filter_key`` defaults to the filter object
    itself, so pass a stable key when filters are rebuilt per call.
    """

    def __init__(
        self,
        G: nx.MultiDiGraph,
        *,
        objectives: Sequence[str] = DEFAULT_OBJECTIVES,
        max_hops: int | None = None,
        max_labels: int | None = None,
    ):
        self.G = G
        self.objectives = _check_objectives(objectives)
        self.max_hops = max_hops
        self.max_labels = max_labels
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple, _Entry] = {}
        self._by_leg: dict[Leg, set[tuple]] = {}
        self._by_node: dict[Hashable, set[tuple]] = {}
        self._truncated: set[tuple] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def get(
        self,
        source: Hashable,
        target: Hashable,
        *,
        edge_ok: EdgeFilter | None = None,
        filter_key: Hashable = None,
    ) -> list[Service]:
        """Pareto front for the pair, computed once and reused until invalidated."""
        key = (source, target, filter_key if filter_key is not None else edge_ok)
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            return list(entry.services)
        self.misses += 1
        found, trace = _martins(
            self.G, source, target, self.objectives, edge_ok, self.max_hops, self.max_labels
        )
        services = [_make_service(self.G, source, lab.legs(), self.objectives) for lab in found]
        entry = _Entry(
            services=services,
            used_legs=frozenset(leg for s in services for leg in s.legs),
            expanded=frozenset(trace.expanded),
            truncated=trace.truncated,
        )
        self._entries[key] = entry
        for leg in entry.used_legs:
            self._by_leg.setdefault(leg, set()).add(key)
        for node in entry.expanded:
            self._by_node.setdefault(node, set()).add(key)
        if entry.truncated:
            self._truncated.add(key)
        return list(services)

    def leg_changed(self, u: Hashable, v: Hashable, key: Hashable, *, worsened: bool = False) -> int:
        """Invalidate what a change of leg ``(u, v, key)`` can affect; returns count."""
        if worsened:
            doomed = set(self._by_leg.get((u, v, key), ()))
        else:
            doomed = set(self._by_node.get(u, ()))
        return self._drop(doomed | self._truncated)

    def leg_added(self, u: Hashable, v: Hashable, key: Hashable) -> int:
        """Invalidate entries a new leg out of ``u`` can affect; returns count."""
        return self._drop(set(self._by_node.get(u, ())) | self._truncated)

    def leg_removed(self, u: Hashable, v: Hashable, key: Hashable) -> int:
        """Invalidate entries whose routes used a removed leg; returns count."""
        return self.leg_changed(u, v, key, worsened=True)

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        self._entries.clear()
        self._by_leg.clear()
        self._by_node.clear()
        self._truncated.clear()

    def _drop(self, keys: set) -> int:
        dropped = 0
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is None:
                continue
            dropped += 1
            for leg in entry.used_legs:
                bucket = self._by_leg.get(leg)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._by_leg[leg]
            for node in entry.expanded:
                bucket = self._by_node.get(node)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._by_node[node]
            self._truncated.discard(key)
        return dropped
