"""Customs: duties and taxes under the dated rule in force, and clearance times.

Duty assessment is vectorized over parcels of one territory and regime. The rules follow the
world file's dated rule sets (de minimis thresholds, VAT below them, per-item postal duties,
flat per-item duties, excess-only rules, China's cross-border retail tax).
"""

from __future__ import annotations

import math

import numpy as np

from market.world import IMPORT, REGIMES, World

DIRECT_REGIMES = ("postal", "express", "retail_from_bonded")


def triangular(lo, mode, hi, u):
    """Inverse CDF of the triangular distribution; handles degenerate (lo == hi) cases."""
    if isinstance(u, float):          # one draw (a consignment): plain floats are faster
        lo, mode, hi = float(lo), float(mode), float(hi)
        width = hi - lo
        if width <= 0:
            return lo
        if u < (mode - lo) / width:
            return lo + math.sqrt(u * width * (mode - lo))
        return hi - math.sqrt((1.0 - u) * width * (hi - mode))
    lo, mode, hi, u = (np.asarray(a, dtype=np.float64) for a in (lo, mode, hi, u))
    width = hi - lo
    fc = np.divide(mode - lo, width, out=np.zeros(np.broadcast(lo, u).shape), where=width > 0)
    left = u < fc
    a = lo + np.sqrt(np.clip(u * width * (mode - lo), 0, None))
    b = hi - np.sqrt(np.clip((1.0 - u) * width * (hi - mode), 0, None))
    return np.where(left, a, b)


def whole_days(x, rng: np.random.Generator):
    """Stochastic rounding to whole days (keeps the mean)."""
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x + rng.random(x.shape)).astype(np.int64)


class _RuleTables:
    """A duty rule's rates as arrays over the world's categories and territories (built once per rule)."""

    def __init__(self, rule, categories: list[str], territories: list[str]):
        self.rule = rule      # held, so the id it is cached under stays its own
        self.mfn = np.array([rule.duty.get(c, 0.0) for c in categories])
        self.extra = np.array([rule.extra_by_origin.get(t, 0.0) for t in territories])
        self.by_origin_category = np.array([[rule.extra_by_origin_category.get(t, {}).get(c, 0.0)
                                             for c in categories] for t in territories])
        self.excluded = np.array([t in rule.de_minimis_excluded_origins for t in territories])
        postal = rule.postal
        if postal is not None:
            rates = postal.rate_by_origin
            self.postal_covers = np.array([not postal.origins or t in postal.origins for t in territories])
            self.postal_rate = self.extra.copy() if rates is None else np.array([rates.get(t, 0.0) for t in territories])
            self.postal_specific = np.array([postal.method_of(t) == "specific" for t in territories])
            self.band_amount = np.array([b.amount for b in postal.per_item])
            self.band_bound = np.array([np.inf if b.bound is None else b.bound for b in postal.per_item])
            self.band_inclusive = np.array([b.up_to is not None or b.bound is None for b in postal.per_item])

    def per_item(self, rate: np.ndarray) -> np.ndarray:
        """The specific method's amount an item for each rate: the first band whose bound the
        rate is below (or, for an ``up_to`` band, at most); past the last bound, the last amount."""
        bound, inclusive = self.band_bound[None, :], self.band_inclusive[None, :]
        fits = np.where(inclusive, rate[:, None] <= bound, rate[:, None] < bound)
        band = np.where(fits.any(axis=1), np.argmax(fits, axis=1), self.band_amount.size - 1)
        return self.band_amount[band]


class DutyCalculator:
    """Duties and import VAT for a territory on a date, vectorized over parcels."""

    def __init__(self, world: World):
        self.world = world
        self.categories = world.categories
        self.territories = world.territories
        self._tables: dict[int, _RuleTables] = {}

    def tables(self, rule) -> _RuleTables:
        """The rule's rates as arrays (memoised by rule object)."""
        got = self._tables.get(id(rule))
        if got is None or got.rule is not rule:
            if len(self._tables) > 256:
                self._tables.clear()
            got = self._tables[id(rule)] = _RuleTables(rule, self.categories, self.territories)
        return got

    def assess(self, territory: str, day_date, regime: str, value_usd, weight,
               category, origin_territory, rule=None) -> tuple[np.ndarray, np.ndarray]:
        """(duty_usd, vat_usd) arrays for parcels (or consignments when regime == 'general').

        value_usd: customs value; category / origin_territory: integer codes. Duty is the sum of
        the rates in force on the day: by category (MFN), by origin (e.g. IEEPA), by origin and
        category (e.g. Section 301); postal items a rule's postal duty covers pay that instead.
        """
        value_usd = np.asarray(value_usd, dtype=np.float64)
        weight = np.asarray(weight, dtype=np.float64)
        n = value_usd.size
        zero = np.zeros(n)
        if regime in ("bonded_entry", "domestic", "export") or n == 0:
            return zero, zero.copy()
        w = self.world
        rule = rule or w.duty_rule(territory, day_date)
        tab = self.tables(rule)
        currency = rule.currency or w.spec.territories[territory].currency
        fx = w.fx(currency)
        category = np.asarray(category)
        origin_territory = np.asarray(origin_territory)
        ad_valorem = tab.mfn[category] + tab.extra[origin_territory] \
            + tab.by_origin_category[origin_territory, category]
        full_duty = value_usd * ad_valorem
        full_vat = (value_usd + full_duty) * rule.vat

        if regime == "general":
            return full_duty, full_vat

        if rule.retail_tax is not None:
            # cross-border retail (e.g. China): one combined tax within the single-order limit
            limit_usd = (rule.retail_limit or np.inf) * fx
            within = value_usd <= limit_usd
            return np.where(within, 0.0, full_duty), np.where(within, value_usd * rule.retail_tax, full_vat)

        dm_fx = w.fx(rule.de_minimis_currency) if rule.de_minimis_currency else fx
        threshold_usd = rule.de_minimis * dm_fx
        below = value_usd <= threshold_usd
        if rule.de_minimis_weight is not None:
            below &= weight <= rule.de_minimis_weight
        if tab.excluded.any():
            below &= ~tab.excluded[origin_territory]

        if rule.excess_rate is not None or rule.excess_per_kg is not None:
            # pay only on what exceeds the threshold (e.g. Russia): the greater of a share of
            # the excess value and a per-kg charge on the excess weight; no separate VAT
            over_value = np.maximum(value_usd - threshold_usd, 0.0) * (rule.excess_rate or 0.0)
            over_kg = 0.0
            if rule.de_minimis_weight is not None and rule.excess_per_kg:
                over_kg = np.maximum(weight - rule.de_minimis_weight, 0.0) * rule.excess_per_kg * dm_fx
            duty = np.where(below, 0.0, np.maximum(over_value, over_kg))
            return duty, zero

        flat = rule.flat_per_item_below_de_minimis * fx
        duty = np.where(below, flat, full_duty)
        if rule.postal is not None and regime == "postal":
            # postal items pay the postal duty alone, by the method the operator declared for
            # the period (not the cheaper one per item), in place of the threshold and every
            # other duty; items above the value limit are entered formally as others are
            covered = tab.postal_covers[origin_territory]
            if rule.postal.value_limit is not None:
                covered &= value_usd <= rule.postal.value_limit * fx
            rate = tab.postal_rate[origin_territory]
            postal_duty = value_usd * rate
            specific = tab.postal_specific[origin_territory]
            if specific.any():
                postal_duty = np.where(specific, tab.per_item(rate) * fx, postal_duty)
            duty = np.where(covered, postal_duty, duty)
            below = below & ~covered
        vat = np.where(below, value_usd * rule.vat if rule.vat_below_de_minimis else 0.0,
                       (value_usd + duty) * rule.vat)
        return duty, vat


class ClearanceTables:
    """Clearance, inspection and hold parameters as arrays indexed [territory, regime]."""

    def __init__(self, world: World):
        T, G = len(world.territories), len(REGIMES)
        self.clearance = np.zeros((T, G, 3))
        self.has_clearance = np.zeros((T, G), dtype=bool)
        self.inspection = np.zeros((T, G))
        self.broker_fee = np.zeros((T, G))
        self.inspection_days = np.zeros((T, 3))
        self.hold_days = np.zeros((T, 3))
        self.export_clearance = np.zeros((T, 3))
        self.export_fee = np.zeros(T)
        self.export_fee_shipment = np.zeros(T)
        self.broker_fee_shipment = np.zeros(T)
        self.inspection_fee_shipment = np.zeros(T)
        self.broker_capacity = np.zeros(T)
        self.brokers_per_point = np.zeros(T, dtype=np.int64)
        for t, code in enumerate(world.territories):
            spec = world.spec.customs[code]
            for regime, tri in spec.clearance.items():
                g = REGIMES.index(regime)
                self.clearance[t, g] = tri
                self.has_clearance[t, g] = True
            for regime, rate in spec.inspection.items():
                self.inspection[t, REGIMES.index(regime)] = rate
            for regime, fee in spec.broker_fee.items():
                self.broker_fee[t, REGIMES.index(regime)] = fee
            self.inspection_days[t] = spec.inspection_days
            self.hold_days[t] = spec.hold_days
            self.export_clearance[t] = spec.export_clearance
            self.export_fee[t] = spec.export_fee
            self.export_fee_shipment[t] = spec.export_fee_per_shipment
            self.broker_fee_shipment[t] = spec.broker_fee_per_shipment
            self.inspection_fee_shipment[t] = spec.inspection_fee_per_shipment
            self.broker_capacity[t] = spec.broker_capacity
            self.brokers_per_point[t] = spec.brokers_per_point
        # a domestic regime has no import clearance; a bonded entry uses its own table row
        self.inspection_multiplier = np.array(
            [world.spec.categories[c].inspection_multiplier for c in world.categories])


class ExpectedDuties:
    """Duty and VAT per unit of each product along a route (and its replenishment), under the
    rules in force on a date: what merchants and integrators expect to pay when they choose.

    Memoised for the day: the same products and routes are asked about many times a day.
    """

    def __init__(self, world: World, duties: DutyCalculator, value: np.ndarray, cost_share: np.ndarray,
                 weight: np.ndarray, category: np.ndarray, origin_territory: np.ndarray):
        self.world = world
        self.duties = duties
        self.value, self.cost_share, self.weight = value, cost_share, weight
        self.category, self.origin_territory = category, origin_territory
        self._memo: dict[tuple, np.ndarray] = {}
        self._import_steps: dict[int, list[tuple[str, str]]] = {}
        self._bulk_memo: dict[tuple, list[np.ndarray]] = {}

    def per_unit(self, products: np.ndarray, route: int, rep_route: int, day: int, date,
                 price: np.ndarray | None = None) -> np.ndarray:
        """Duty plus VAT per unit; ``rep_route`` < 0 for direct channels (memoised per ``day``).
        ``price``: the parcels' sale prices, their customs value (default: the products' values)."""
        key = (day, products.tobytes(), route, rep_route, None if price is None else price.tobytes())
        got = self._memo.get(key)
        if got is not None:
            return got
        if self._memo and next(iter(self._memo))[0] != day:
            self._memo.clear()
        self._memo[key] = out = self._assess(products, route, rep_route, date, price)
        return out

    def _imports(self, route: int) -> list[tuple[str, str]]:
        """The (territory, regime) of each import on a route, in route order."""
        got = self._import_steps.get(route)
        if got is None:
            got = self._import_steps[route] = [
                (self.world.resources[r].territory, self.world.resources[r].regime)
                for r in self.world.routes[route].resources if self.world.resources[r].kind == IMPORT]
        return got

    def per_unit_rows(self, products: np.ndarray, routes: list[int], rep_routes: list[int], date,
                      sale: np.ndarray) -> np.ndarray:
        """Duty plus VAT per unit for many candidate routes at once: row ``i`` is
        :meth:`per_unit` of ``products`` along ``routes[i]`` and ``rep_routes[i]`` at the
        sale prices ``sale[i]`` (rows x products, USD), figure for figure. Each customs
        regime is assessed once over every row's units that cross it (assessment is unit by
        unit), and each row adds its imports in the order :meth:`per_unit` does: the parcel's
        along its route, then the bulk entries along its replenishment route."""
        out = np.zeros(sale.shape)
        n_rows = len(routes)
        parcel_steps = [self._imports(r) if r >= 0 else [] for r in routes]
        level = 0
        while True:      # the k-th import of each route that has one, grouped by (territory, regime)
            groups: dict[tuple[str, str], list[int]] = {}
            for i in range(n_rows):
                if level < len(parcel_steps[i]):
                    groups.setdefault(parcel_steps[i][level], []).append(i)
            if not groups:
                break
            for (territory, regime), rows in groups.items():
                k = len(rows)
                units = np.broadcast_to(products, (k, products.size)).reshape(-1)
                duty, vat = self.duties.assess(territory, date, regime, sale[rows].ravel(), self.weight[units],
                                               self.category[units], self.origin_territory[units])
                out[rows] += (duty + vat).reshape(k, products.size)
            level += 1
        # bulk entries are declared at the goods' purchase cost: the same for every row on a
        # replenishment route, all day
        for i in range(n_rows):
            if rep_routes[i] >= 0:
                for part in self._bulk_parts(products, rep_routes[i], date):
                    out[i] += part
        return out

    def _bulk_parts(self, products: np.ndarray, rep_route: int, date) -> list[np.ndarray]:
        """Duty plus VAT per unit at each import of a replenishment route, on the goods' cost
        (memoised for the date and the rules in force, which a shock may change)."""
        imports = self._imports(rep_route)
        key = (date, rep_route, products.tobytes(), tuple(id(self.world.duty_rule(t, date)) for t, _ in imports))
        got = self._bulk_memo.get(key)
        if got is None:
            if self._bulk_memo and next(iter(self._bulk_memo))[0] != date:
                self._bulk_memo.clear()
            bulk_value = self.value[products] * self.cost_share[products]
            got = self._bulk_memo[key] = []
            for territory, regime in imports:
                duty, vat = self.duties.assess(territory, date, regime, bulk_value, self.weight[products],
                                               self.category[products], self.origin_territory[products])
                got.append(duty + vat)
        return got

    def _assess(self, products: np.ndarray, route: int, rep_route: int, date, price=None) -> np.ndarray:
        out = np.zeros(products.size)
        sale = self.value[products] if price is None else np.asarray(price, dtype=np.float64)
        for rt, bulk in ((route, False), (rep_route, True)):
            if rt < 0:
                continue
            for r in self.world.routes[rt].resources:
                res = self.world.resources[r]
                if res.kind != IMPORT:
                    continue
                # bulk stock is declared at its purchase cost; a parcel at its sale value
                value = self.value[products] * self.cost_share[products] if bulk else sale
                duty, vat = self.duties.assess(res.territory, date, res.regime, value,
                                               self.weight[products], self.category[products],
                                               self.origin_territory[products])
                out += duty + vat
        return out
