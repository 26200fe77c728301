"""The world file's schema: territories, nodes, lanes, warehouses, customs, duty rules.

``market/data/world.toml`` (or a user's world file) is validated by :class:`WorldSpec`, every
figure with its source beside it in the file. :mod:`market.world.world` builds it into the
network, resources and routes the model runs on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from market.scenario import ScenarioError, format_validation_error, is_file, read_toml, short

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

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
    """A customs territory: its currency, and whether goods leaving it clear export customs."""

    name: str
    currency: str
    export_procedure: bool = True


class NodeSpec(_Spec):
    """A place on the network: a seller cluster (origin), gateway, border crossing, warehouse or
    market, in a territory, with its map position."""

    id: str
    name: str
    kind: Literal["origin", "gateway", "border", "warehouse", "market"]
    territory: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    warehouse: Literal["overseas", "border", "bonded"] | None = None


class MarketSpec(_Spec):
    """A destination market: the node where its consumers are, and how often sellers pick it."""

    node: str
    weight: float = Field(1.0, gt=0, description="how often sellers pick this market (relative)")


class ChannelSpec(_Spec):
    """A fulfilment channel: direct, or stock in a warehouse of a kind; the customs regime of
    its parcels at import (and of the bulk entry), and the delivery promise in days."""

    label: str
    kind: Literal["direct", "warehouse"]
    regime: Literal["postal", "express", "general", "bonded_entry", "retail_from_bonded", "domestic"]
    promised_days: int = Field(ge=1, le=120)
    warehouse: Literal["overseas", "border", "bonded"] | None = None
    replenish_regime: Literal["general", "bonded_entry"] | None = None


class CategorySpec(_Spec):
    """A product category: retail value (USD) and weight (kg) ranges, inspection multiplier,
    goods cost as a share of retail value."""

    value: tuple[float, float]
    weight: tuple[float, float]
    inspection_multiplier: float = Field(ge=0)
    cost_share: float = Field(gt=0, lt=1)


class OriginSpec(_Spec):
    """A seller cluster: the weights of the categories its sellers sell, and its share of sellers."""

    categories: dict[str, float]
    weight: float = Field(1.0, gt=0, description="share of sellers located here (relative)")


class CarrierGroupSpec(_Spec):
    """A group of carriers serving the same lanes: how many companies share them, and whether
    they clear their own parcels through customs (an express integrator is its own broker, so
    its parcels change hands at no customs point along its lanes)."""

    label: str
    count: int = Field(ge=1, le=50)
    customs_in_house: bool = False


class LaneSpec(_Spec):
    """A lane template, expanded over its node ``pairs``: mode, channels, transit days
    [min, mode, max], costs (USD per parcel, per kg, per shipment), capacity (parcels a day,
    or kg a day on bulk lanes), loss, damage and delay probabilities, and where its import
    customs is cleared if not at its far end."""

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
    """A warehouse: operators, storage space (units), handling (orders a day), storage cost (USD
    per unit-day, times a peak multiplier Oct-Dec), handling cost (USD per order) and days."""

    operators: int = Field(ge=1, le=50)
    storage_units: float = Field(gt=0)
    handling_per_day: float = Field(gt=0)
    storage_cost_per_unit_day: float = Field(ge=0)
    peak_storage_multiplier: float = Field(ge=1)
    handling_cost: float = Field(ge=0)
    handling_days: Triangle
    source: str


class CustomsSpec(_Spec):
    """A territory's customs: brokers and their capacity, clearance days by regime [min, mode,
    max], inspection rates and days, hold days after a filing error, fees (USD)."""

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


PostalMethod = Literal["ad_valorem", "specific"]


class PerItemBand(_Spec):
    """One band of a specific (per-item) duty: ``amount`` an item for a rate strictly ``below``
    a bound, or ``up_to`` a bound inclusive (EO 14324: "less than 16 percent", "between 16 and
    25 percent"); a band with neither holds every higher rate (the last one)."""

    amount: float = Field(ge=0)
    below: float | None = Field(None, ge=0)
    up_to: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self):
        if self.below is not None and self.up_to is not None:
            raise ValueError("a per-item band has 'below' or 'up_to', not both")
        return self

    @property
    def bound(self) -> float | None:
        """Its upper bound (exclusive for ``below``, inclusive for ``up_to``), or None."""
        return self.below if self.below is not None else self.up_to


class PostalDutySpec(_Spec):
    """Duty on postal items in place of every other duty (US: goods of China from 2 May 2025,
    EO 14256; every origin from 29 Aug 2025, EO 14324). The carrier (or a qualified party)
    remits it by the method its postal operator declared for the period, the same for all its
    items: ad valorem at a rate by origin (``rate_by_origin``; by default the rule's
    ``extra_by_origin``, the IEEPA rate), or ``per_item`` amounts banded by that rate. Where a
    rule offers no per-item amounts (the option ended), every item pays ad valorem."""

    origins: list[str] = Field(default_factory=list, description="origins whose postal items it covers (empty: every origin)")
    value_limit: float | None = Field(None, gt=0, description="items valued above it are entered formally and pay the standard duties (omit: no limit)")
    rate_by_origin: dict[str, float] | None = Field(None, description="ad valorem rate by origin (omit: the rule's extra_by_origin)")
    per_item: list[PerItemBand] = Field(default_factory=list, description="the specific method's amount an item, banded by the rate")
    method: dict[str, PostalMethod] = Field(default_factory=dict, description="the method each origin's postal operator declared for the period")
    default_method: PostalMethod = "ad_valorem"

    @model_validator(mode="after")
    def _bands(self):
        bounds = [b.bound for b in self.per_item]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last per-item band may lack a bound")
        given = [b for b in bounds if b is not None]
        if given != sorted(given):
            raise ValueError("per-item bands must be in increasing order of their bounds")
        if self.rate_by_origin and any(not 0 <= r <= 10 for r in self.rate_by_origin.values()):
            raise ValueError("postal rates by origin must be between 0 and 10 (1000%)")
        return self

    def method_of(self, origin: str) -> PostalMethod:
        """The method the origin's postal operator uses: its declared one, ad valorem when the
        rule offers no per-item amounts."""
        if not self.per_item:
            return "ad_valorem"
        return self.method.get(origin, self.default_method)


class DutyRuleSpec(_Spec):
    """One dated set of duty and tax rules of a territory, in force from ``start`` until the
    next: ad-valorem duty by category (MFN), additional duties that stack on it (by origin on
    every category, e.g. the US IEEPA duties; by origin and category, e.g. Section 301), VAT,
    the de minimis threshold (value, weight, excluded origins), duties on postal items in place
    of all others, flat per-item duties below the threshold, excess-only duty, and the
    cross-border retail tax. Amounts in the territory's currency unless ``currency`` says."""

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
    extra_by_origin_category: dict[str, dict[str, float]] = Field(default_factory=dict)
    postal: PostalDutySpec | None = None
    flat_per_item_below_de_minimis: float = Field(0.0, ge=0)
    excess_rate: float | None = Field(None, ge=0, le=5)
    excess_per_kg: float | None = Field(None, ge=0)
    retail_tax: float | None = Field(None, ge=0, le=1)
    retail_limit: float | None = Field(None, gt=0)
    source: str

    @model_validator(mode="after")
    def _rates(self):
        rates = list(self.duty.values()) + list(self.extra_by_origin.values()) \
            + [r for by_cat in self.extra_by_origin_category.values() for r in by_cat.values()]
        if any(not 0 <= r <= 10 for r in rates):
            raise ValueError("duty rates must be between 0 and 10 (1000%)")
        return self


class WorldSpec(_Spec):
    """The whole world file, with its cross-references checked (nodes, territories, markets,
    origins, lanes, warehouses, channels, date order of duty rules)."""

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
        for market, spec in self.markets.items():
            if spec.node not in nodes or nodes[spec.node].kind != "market":
                raise ValueError(f"market {market}: node {spec.node} is not a market node")
        for origin, spec in self.origins.items():
            if origin not in nodes or nodes[origin].kind != "origin":
                raise ValueError(f"origins.{origin}: not an origin node")
            unknown = set(spec.categories) - set(self.categories)
            if unknown:
                raise ValueError(f"origins.{origin}: unknown categories {sorted(unknown)}")
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
            for r in rules:
                _check_rule_names(r, f"duty_rules.{code} from {r.start}", self.territories, self.categories)
        return self


def _check_rule_names(rule: DutyRuleSpec, where: str, territories, categories):
    """A duty rule names only known categories and (origin) territories."""
    cats = set(rule.duty) | {c for by_cat in rule.extra_by_origin_category.values() for c in by_cat}
    origins = set(rule.extra_by_origin) | set(rule.extra_by_origin_category) | set(rule.de_minimis_excluded_origins)
    if rule.postal is not None:
        origins |= set(rule.postal.origins) | set(rule.postal.method) | set(rule.postal.rate_by_origin or {})
    if cats - set(categories):
        raise ValueError(f"{where}: unknown categories {sorted(cats - set(categories))}")
    if origins - set(territories):
        raise ValueError(f"{where}: unknown origin territories {sorted(origins - set(territories))}")


def load_world_spec(name_or_path: str | Path = "world") -> WorldSpec:
    """Read and validate a world file: a path, or a name in ``market/data``; raises
    ScenarioError with one line."""
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
