"""The built world: the multimodal network, resources, routes and their variants.

:func:`load_world` validates a world file (:mod:`market.world.spec`) and builds a
:class:`World`: a networkx ``MultiDiGraph`` of lanes; a table of *resources* (a transport lane,
a warehouse's handling, an export or import customs point) that parcels pass through one
*stage* at a time; and the *routes* each channel takes from an origin to a market.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from market.scenario import ScenarioError
from market.world.spec import (EXPORT, HANDLING, IMPORT, MAX_HOPS, MAX_VARIANTS, STAGE_NAMES, TRANSPORT,
                               DutyRuleSpec, LaneSpec, NodeSpec, TerritorySpec, WorldSpec,
                               load_world_spec)


@dataclass
class Lane:
    """One lane of the network: a directed move from node ``u`` to node ``v``, expanded from a
    lane template of the world file (``spec``)."""

    id: str
    index: int
    u: str
    v: str
    spec: LaneSpec


@dataclass
class Resource:
    """Something a parcel (or consignment) is served by for one stage."""

    index: int
    kind: int                   # TRANSPORT / HANDLING / EXPORT / IMPORT
    name: str
    node: str                   # where it is (for transport: the lane's origin)
    territory: str
    lane: Lane | None = None    # for transport
    bulk: bool = False
    regime: str = ""            # for customs


@dataclass
class Route:
    """A path through resources: the stages a parcel or replenishment consignment takes."""

    index: int
    channel: str
    origin: str                 # where the route starts (seller cluster or warehouse)
    market: str
    resources: list[int]        # resource index per stage
    regimes: list[str]          # customs regime per stage ('' when not customs)
    nodes: list[str]
    bulk: bool = False
    warehouse: str | None = None  # the warehouse node the route serves from / replenishes
    family: tuple = ()            # key of its variants in World.route_variants

    @property
    def n_stages(self) -> int:
        """Number of stages (resources) on the route."""
        return len(self.resources)


@dataclass
class World:
    """The built world: the lane graph, resources, routes and their lookups, and the world
    file's figures (``spec``); ``rule_patches`` hold the duty-rule changes of shocks in force."""

    spec: WorldSpec
    graph: nx.MultiDiGraph
    lanes: list[Lane]
    resources: list[Resource]
    routes: list[Route]
    territories: list[str]
    markets: list[str]
    channels: list[str]
    categories: list[str]
    # route lookups
    rule_patches: dict[str, list[dict]] = field(default_factory=dict)   # shocks: territory -> rule changes
    _rule_cache: dict = field(default_factory=dict, repr=False)
    direct_route: dict[tuple[str, str, str], int] = field(default_factory=dict)       # (origin, market, channel)
    order_route: dict[tuple[str, str], int] = field(default_factory=dict)             # (market, channel) from its warehouse
    replenish_route: dict[tuple[str, str], int] = field(default_factory=dict)         # (origin, warehouse node)
    # every route's alternatives with the same ends and channel (the default first)
    route_variants: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    # ---- lookups ----
    def node(self, node_id: str) -> dict:
        """A node's attributes in the lane graph."""
        return self.graph.nodes[node_id]

    def channel_routes(self, origin: str, market: str) -> dict[str, tuple[int, int | None]]:
        """Feasible channels from an origin to a market: channel -> (parcel route, replenish route or None)."""
        out = {}
        for ch in self.channels:
            spec = self.spec.channels[ch]
            if spec.kind == "direct":
                r = self.direct_route.get((origin, market, ch))
                if r is not None:
                    out[ch] = (r, None)
            else:
                r = self.order_route.get((market, ch))
                if r is None:
                    continue
                wh = self.routes[r].warehouse
                rep = self.replenish_route.get((origin, wh))
                if rep is not None:
                    out[ch] = (r, rep)
        return out

    def duty_rule(self, territory: str, day_date: dt.date) -> DutyRuleSpec:
        """The duty rule in force in a territory on a date: the last rule set starting on or
        before it (before the first one, the first), with any shock's changes on top."""
        rules = self.spec.duty_rules[territory]
        current = rules[0]
        for r in rules:
            if r.start <= day_date:
                current = r
        patches = self.rule_patches.get(territory)
        if not patches:
            return current
        key = (territory, id(current), tuple(id(p) for p in patches))
        got = self._rule_cache.get(key)
        if got is None:
            got = self._rule_cache[key] = patched_rule(current, patches)
        return got

    def fx(self, currency: str) -> float:
        """USD per unit of a currency."""
        return self.spec.fx[currency]


def patched_rule(rule: DutyRuleSpec, patches: list[dict]) -> DutyRuleSpec:
    """A duty rule with shocks' changes on top, in order, validated: each patch replaces the
    fields it names, except ``postal``, whose fields are merged into the rule's postal duty
    (e.g. ``{"postal": {"method": {"CN": "specific"}}}`` switches one operator's method and keeps
    the rest; a rule with no postal duty takes the patch's table as it is)."""
    data = rule.model_dump()
    for patch in patches:
        for k, v in patch.items():
            if k == "postal" and isinstance(v, dict) and data.get("postal") is not None:
                data["postal"] = {**data["postal"], **v}
            else:
                data[k] = v
    return DutyRuleSpec.model_validate(data)


def _stage_of_lane_crossing(lane: LaneSpec, u: str, v: str, nodes: dict[str, NodeSpec],
                            territories: dict[str, TerritorySpec]):
    """Customs stages a lane adds: [(kind, node, territory)] before and after the move."""
    tu, tv = nodes[u].territory, nodes[v].territory
    if tu == tv:
        return [], []
    before, after = [], []
    if territories[tu].export_procedure:
        before.append((EXPORT, u, tu))
    at = lane.import_customs_at or v
    # goods leaving a bonded zone clear import customs at its gate, before they move on
    (before if at == u else after).append((IMPORT, at, tv))
    return before, after


def build_world(spec: WorldSpec, replenish_time_value: float = 0.02) -> World:
    """Expand lane templates, build the graph, resources and every channel's routes.

    replenish_time_value: USD per kg and day of transit used to choose replenishment paths
    (cheap slow sea vs dearer fast rail).
    """
    nodes = {n.id: n for n in spec.nodes}
    G = nx.MultiDiGraph(name="cross-border network")
    for n in spec.nodes:
        G.add_node(n.id, **n.model_dump())

    lanes: list[Lane] = []
    seen = set()
    for lane_spec in spec.lanes:
        for u, v in lane_spec.pairs:
            lid = f"{u}>{v}:{lane_spec.group}:{lane_spec.mode}" + (":bulk" if lane_spec.bulk else "")
            if lid in seen:
                raise ScenarioError(f"world: lane {lid} is defined twice")
            seen.add(lid)
            lane = Lane(id=lid, index=len(lanes), u=u, v=v, spec=lane_spec)
            lanes.append(lane)
            G.add_edge(u, v, key=lid, lane=lane.index, mode=lane_spec.mode, group=lane_spec.group,
                       channels=tuple(lane_spec.channels), bulk=lane_spec.bulk,
                       cost_per_parcel=lane_spec.cost_per_parcel, cost_per_kg=lane_spec.cost_per_kg,
                       transit=lane_spec.transit, capacity=lane_spec.capacity)

    resources: list[Resource] = []
    res_index: dict[tuple, int] = {}

    def resource(key: tuple, **kw) -> int:
        if key not in res_index:
            res_index[key] = len(resources)
            resources.append(Resource(index=len(resources), **kw))
        return res_index[key]

    for lane in lanes:
        resource(("lane", lane.index), kind=TRANSPORT, name=lane.id, node=lane.u,
                 territory=nodes[lane.u].territory, lane=lane, bulk=lane.spec.bulk)
    for wh in spec.warehouses:
        resource(("wh", wh), kind=HANDLING, name=f"handling@{wh}", node=wh,
                 territory=nodes[wh].territory)

    routes: list[Route] = []

    def stages_for_path(edge_path, import_regime: str, bulk: bool):
        """Resources, customs regimes and nodes of the stages along a path of lanes."""
        res, regimes, nodes_on = [], [], []

        def customs(kind, node, terr):
            regime = "export" if kind == EXPORT else import_regime
            tag = f"{regime}{', bulk' if bulk else ''}"
            res.append(resource(("customs", kind, node, terr, regime, bulk), kind=kind,
                                name=f"{STAGE_NAMES[kind]}@{node}[{tag}]", node=node,
                                territory=terr, bulk=bulk, regime=regime))
            regimes.append(regime)
            nodes_on.append(node)

        for u, v, key in edge_path:
            lane = lanes[G.edges[u, v, key]["lane"]]
            before, after = _stage_of_lane_crossing(lane.spec, u, v, nodes, spec.territories)
            for kind, node, terr in before:
                customs(kind, node, terr)
            res.append(res_index[("lane", lane.index)])
            regimes.append("")
            nodes_on.append(u)
            for kind, node, terr in after:
                customs(kind, node, terr)
        return res, regimes, nodes_on

    def best_path(tag: str, src: str, dst: str, bulk: bool):
        def ok(u, v, k):
            d = G.edges[u, v, k]
            return tag in d["channels"] and d["bulk"] == bulk
        view = nx.subgraph_view(G, filter_edge=ok)
        if src not in view or dst not in view:
            return None

        def weight(u, v, d):
            # d maps key -> attrs for a multigraph; take the cheapest parallel lane
            best = np.inf
            for attrs in d.values():
                t = attrs["transit"][1]
                cost = attrs["cost_per_parcel"] + attrs["cost_per_kg"] \
                    + (replenish_time_value * t if bulk else 0.01 * t)
                best = min(best, cost)
            return best
        try:
            node_path = nx.shortest_path(view, src, dst, weight=weight)
        except nx.NetworkXNoPath:
            return None
        edge_path = []
        for u, v in zip(node_path[:-1], node_path[1:]):
            keys = [k for k in view[u][v]]
            k = min(keys, key=lambda kk: weight(u, v, {kk: G.edges[u, v, kk]}))
            edge_path.append((u, v, k))
        return edge_path

    world = World(spec=spec, graph=G, lanes=lanes, resources=resources, routes=routes,
                  territories=list(spec.territories), markets=list(spec.markets),
                  channels=list(spec.channels), categories=list(spec.categories))

    origins = [n.id for n in spec.nodes if n.kind == "origin"]
    warehouses = [n.id for n in spec.nodes if n.kind == "warehouse"]

    def variants(tag: str, src: str, dst: str, bulk: bool):
        """Every simple path of the tagged lanes (the cheapest first): a route's variants."""
        best = best_path(tag, src, dst, bulk)
        if best is None:
            return []
        view = nx.subgraph_view(G, filter_edge=lambda u, v, k: tag in G.edges[u, v, k]["channels"]
                                and G.edges[u, v, k]["bulk"] == bulk)
        paths = [list(p) for p in nx.all_simple_edge_paths(view, src, dst, cutoff=MAX_HOPS)]
        others = [p for p in paths if p != best]
        return [best] + others[: MAX_VARIANTS - 1]

    def add(channel, origin, market, path, regime, bulk, warehouse=None, handling=None) -> int | None:
        res, regimes, nodes_on = stages_for_path(path, regime, bulk)
        imports = sum(resources[r].kind == IMPORT for r in res)
        if (not bulk and channel in direct_channels and imports != 1) or imports > 1:
            return None   # transhipment through a third country is not a channel here
        if handling is not None:
            res, regimes, nodes_on = [handling] + res, [""] + regimes, [warehouse] + nodes_on
        end_node = warehouse if bulk else spec.markets[market].node
        routes.append(Route(index=len(routes), channel=channel, origin=origin if handling is None else warehouse,
                            market=market, resources=res, regimes=regimes, nodes=nodes_on + [end_node],
                            bulk=bulk, warehouse=warehouse))
        return len(routes) - 1

    direct_channels = {ch for ch, c in spec.channels.items() if c.kind == "direct"}
    for ch, cspec in spec.channels.items():
        for market, mspec in spec.markets.items():
            if cspec.kind == "direct":
                for origin in origins:
                    if nodes[origin].territory == nodes[mspec.node].territory:
                        continue  # not cross-border
                    ids = [i for p in variants(ch, origin, mspec.node, False)
                           if (i := add(ch, origin, market, p, cspec.regime, False)) is not None]
                    if ids:
                        world.direct_route[(origin, market, ch)] = ids[0]
                        world.route_variants[(origin, market, ch)] = ids
            else:
                for wh in warehouses:
                    if nodes[wh].warehouse != cspec.warehouse or wh not in spec.warehouses:
                        continue
                    ids = [i for p in variants(ch, wh, mspec.node, False)
                           if (i := add(ch, wh, market, p, cspec.regime, False, wh, res_index[("wh", wh)])) is not None]
                    if not ids:
                        continue
                    world.order_route[(market, ch)] = ids[0]
                    world.route_variants[(wh, market, ch)] = ids
                    for origin in origins:
                        if (origin, wh) in world.replenish_route:
                            continue
                        rids = [i for p in variants("replenish", origin, wh, True)
                                if (i := add(ch, origin, market, p, cspec.replenish_regime or "general", True, wh))
                                is not None]
                        if rids:
                            world.replenish_route[(origin, wh)] = rids[0]
                            world.route_variants[(origin, wh, "replenish")] = rids
                    break  # one warehouse of a kind serves a market
    for key, ids in world.route_variants.items():
        for i in ids:
            world.routes[i].family = key
    return world


def load_world(name_or_path: str | Path = "world", replenish_time_value: float = 0.02) -> World:
    """Read, validate and build a world file (a path, or a name in ``market/data``); see
    :func:`build_world` for ``replenish_time_value``."""
    return build_world(load_world_spec(name_or_path), replenish_time_value)
