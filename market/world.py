"""The physical and regulatory world: the multimodal network, resources, routes and customs rules.

The world file (``market/data/world.toml``) is validated by :class:`WorldSpec` and built into a
:class:`World`: a networkx ``MultiDiGraph`` of lanes; a table of *resources* (a transport lane,
a warehouse's handling, an export or import customs point) that parcels pass through one
*stage* at a time; and the *routes* each channel takes from an origin to a market.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from market.scenario import ScenarioError, format_validation_error, is_file, read_toml, short

DATA_DIR = Path(__file__).parent / "data"

# Stage kinds a parcel passes through.
TRANSPORT, HANDLING, EXPORT, IMPORT = 0, 1, 2, 3
STAGE_NAMES = ("transport", "handling", "export_customs", "import_customs")
MODES = ("truck", "postal", "express_air", "dedicated_line", "sea", "rail", "last_mile")
REGIMES = ("postal", "express", "general", "bonded_entry", "retail_from_bonded", "domestic", "export")
MAX_HOPS = 8        # longest path (lanes) a route variant may take
MAX_VARIANTS = 6    # most variants kept per (origin, market, channel)

Triangle = tuple[float, float, float]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_triangle(t: Triangle, what: str):
    lo, mode, hi = t
    if not (0 <= lo <= mode <= hi):
        raise ValueError(f"{what} must be [min, mode, max] with 0 <= min <= mode <= max")


class TerritorySpec(_Spec):
    name: str
    currency: str
    export_procedure: bool = True


class NodeSpec(_Spec):
    id: str
    name: str
    kind: Literal["origin", "gateway", "border", "warehouse", "market"]
    territory: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    warehouse: Literal["overseas", "border", "bonded"] | None = None


class MarketSpec(_Spec):
    node: str
    weight: float = Field(1.0, gt=0, description="how often sellers pick this market (relative)")


class ChannelSpec(_Spec):
    label: str
    kind: Literal["direct", "warehouse"]
    regime: Literal["postal", "express", "general", "bonded_entry", "retail_from_bonded", "domestic"]
    promised_days: int = Field(ge=1, le=120)
    warehouse: Literal["overseas", "border", "bonded"] | None = None
    replenish_regime: Literal["general", "bonded_entry"] | None = None


class CategorySpec(_Spec):
    value: tuple[float, float]
    weight: tuple[float, float]
    inspection_multiplier: float = Field(ge=0)
    cost_share: float = Field(gt=0, lt=1)


class OriginSpec(_Spec):
    categories: dict[str, float]
    weight: float = Field(1.0, gt=0, description="share of sellers located here (relative)")


class CarrierGroupSpec(_Spec):
    label: str
    count: int = Field(ge=1, le=50)


class LaneSpec(_Spec):
    group: str
    mode: Literal["truck", "postal", "express_air", "dedicated_line", "sea", "rail", "last_mile"]
    channels: list[str]
    pairs: list[tuple[str, str]]
    transit: Triangle
    cost_per_parcel: float = Field(0.0, ge=0)
    cost_per_kg: float = Field(0.0, ge=0)
    cost_per_shipment: float = Field(0.0, ge=0)
    capacity: float = Field(gt=0)
    loss: float = Field(ge=0, le=1)
    damage: float = Field(ge=0, le=1)
    delay: float = Field(ge=0, le=1)
    delay_days: Triangle
    bulk: bool = False
    source: str
    import_customs_at: str | None = None

    @model_validator(mode="after")
    def _tri(self):
        _check_triangle(self.transit, "transit")
        _check_triangle(self.delay_days, "delay_days")
        return self


class WarehouseSpec(_Spec):
    operators: int = Field(ge=1, le=50)
    storage_units: float = Field(gt=0)
    handling_per_day: float = Field(gt=0)
    storage_cost_per_unit_day: float = Field(ge=0)
    peak_storage_multiplier: float = Field(ge=1)
    handling_cost: float = Field(ge=0)
    handling_days: Triangle
    source: str


class CustomsSpec(_Spec):
    brokers_per_point: int = Field(ge=1, le=50)
    broker_capacity: float = Field(gt=0)
    export_clearance: Triangle
    export_fee: float = Field(ge=0)
    export_fee_per_shipment: float = Field(ge=0)
    clearance: dict[str, Triangle]
    inspection: dict[str, float]
    inspection_days: Triangle
    inspection_fee_per_shipment: float = Field(ge=0)
    hold_days: Triangle
    broker_fee: dict[str, float]
    broker_fee_per_shipment: float = Field(ge=0)
    source: str


class DutyRuleSpec(_Spec):
    start: dt.date
    currency: str | None = None
    de_minimis: float = Field(0.0, ge=0)
    de_minimis_currency: str | None = None
    de_minimis_weight: float | None = Field(None, gt=0)
    de_minimis_excluded_origins: list[str] = Field(default_factory=list)
    vat: float = Field(0.0, ge=0, le=1)
    vat_below_de_minimis: bool = False
    duty: dict[str, float] = Field(default_factory=dict)
    extra_by_origin: dict[str, float] = Field(default_factory=dict)
    postal_per_item: list[tuple[float, float]] = Field(default_factory=list)
    flat_per_item_below_de_minimis: float = Field(0.0, ge=0)
    excess_rate: float | None = Field(None, ge=0, le=5)
    excess_per_kg: float | None = Field(None, ge=0)
    retail_tax: float | None = Field(None, ge=0, le=1)
    retail_limit: float | None = Field(None, gt=0)
    source: str


class WorldSpec(_Spec):
    version: str
    description: str = ""
    fx: dict[str, float]
    territories: dict[str, TerritorySpec]
    nodes: list[NodeSpec]
    markets: dict[str, MarketSpec]
    channels: dict[str, ChannelSpec]
    categories: dict[str, CategorySpec]
    origins: dict[str, OriginSpec]
    carrier_groups: dict[str, CarrierGroupSpec]
    lanes: list[LaneSpec]
    warehouses: dict[str, WarehouseSpec]
    customs: dict[str, CustomsSpec]
    duty_rules: dict[str, list[DutyRuleSpec]]

    @model_validator(mode="after")
    def _references(self):
        nodes = {n.id: n for n in self.nodes}
        if len(nodes) != len(self.nodes):
            raise ValueError("node ids must be unique")
        for n in self.nodes:
            if n.territory not in self.territories:
                raise ValueError(f"node {n.id}: unknown territory {n.territory}")
            if (n.kind == "warehouse") != (n.warehouse is not None):
                raise ValueError(f"node {n.id}: warehouse nodes (and only they) name a warehouse kind")
        for code, t in self.territories.items():
            if t.currency not in self.fx:
                raise ValueError(f"territory {code}: no fx rate for {t.currency}")
            if code not in self.customs or code not in self.duty_rules:
                raise ValueError(f"territory {code}: needs customs and duty_rules entries")
        for m, spec in self.markets.items():
            if spec.node not in nodes or nodes[spec.node].kind != "market":
                raise ValueError(f"market {m}: node {spec.node} is not a market node")
        for o, spec in self.origins.items():
            if o not in nodes or nodes[o].kind != "origin":
                raise ValueError(f"origins.{o}: not an origin node")
            unknown = set(spec.categories) - set(self.categories)
            if unknown:
                raise ValueError(f"origins.{o}: unknown categories {sorted(unknown)}")
        channel_tags = set(self.channels) | {"replenish"}
        for lane in self.lanes:
            if lane.group not in self.carrier_groups:
                raise ValueError(f"lane group {lane.group} is not a carrier group")
            bad = set(lane.channels) - channel_tags
            if bad:
                raise ValueError(f"lane {lane.group}/{lane.mode}: unknown channels {sorted(bad)}")
            for u, v in lane.pairs:
                if u not in nodes or v not in nodes:
                    raise ValueError(f"lane {lane.group}: unknown node in pair {u}->{v}")
            if lane.import_customs_at and lane.import_customs_at not in nodes:
                raise ValueError(f"lane {lane.group}: unknown import_customs_at {lane.import_customs_at}")
        for w in self.warehouses:
            if w not in nodes or nodes[w].kind != "warehouse":
                raise ValueError(f"warehouses.{w}: not a warehouse node")
        for ch, spec in self.channels.items():
            if spec.kind == "warehouse" and spec.warehouse is None:
                raise ValueError(f"channel {ch}: a warehouse channel names its warehouse kind")
        for code, rules in self.duty_rules.items():
            if not rules:
                raise ValueError(f"duty_rules.{code}: needs at least one rule set")
            starts = [r.start for r in rules]
            if starts != sorted(starts):
                raise ValueError(f"duty_rules.{code}: rule sets must be in date order")
        return self


def load_world_spec(name_or_path: str | Path = "world") -> WorldSpec:
    path = Path(name_or_path)
    if not is_file(path):
        cand = DATA_DIR / f"{name_or_path}.toml"
        if not is_file(cand):
            raise ScenarioError(f"world {short(str(name_or_path))} is neither a file nor in {DATA_DIR}")
        path = cand
    raw = read_toml(path, f"world '{path}'")
    try:
        return WorldSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, f"world '{path.name}'", WorldSpec)) from None


# ------------------------------------------------------------------------------------------
@dataclass
class Lane:
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
        return len(self.resources)


@dataclass
class World:
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
    def territory_index(self, code: str) -> int:
        return self.territories.index(code)

    def node(self, node_id: str) -> dict:
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
        """The duty rule in force in a territory on a date (with any shock's changes on top)."""
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
            update = {}
            for p in patches:
                update.update(p)
            got = self._rule_cache[key] = current.model_copy(update=update)
        return got

    def fx(self, currency: str) -> float:
        return self.spec.fx[currency]


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
    for ls in spec.lanes:
        for u, v in ls.pairs:
            lid = f"{u}>{v}:{ls.group}:{ls.mode}" + (":bulk" if ls.bulk else "")
            if lid in seen:
                raise ScenarioError(f"world: lane {lid} is defined twice")
            seen.add(lid)
            lane = Lane(id=lid, index=len(lanes), u=u, v=v, spec=ls)
            lanes.append(lane)
            G.add_edge(u, v, key=lid, lane=lane.index, mode=ls.mode, group=ls.group,
                       channels=tuple(ls.channels), bulk=ls.bulk,
                       cost_per_parcel=ls.cost_per_parcel, cost_per_kg=ls.cost_per_kg,
                       transit=ls.transit, capacity=ls.capacity)

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
                c = attrs["cost_per_parcel"] + attrs["cost_per_kg"] + (replenish_time_value * t if bulk else 0.01 * t)
                best = min(best, c)
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
    return build_world(load_world_spec(name_or_path), replenish_time_value)
