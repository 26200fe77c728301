"""Building the market on day 0: the outside accounts, the providers, the integrators, the
merchants with their products and listings, and the providers' capacity sized to the market.

Builders take the model because Mesa agents are created on a model and every actor opens its
ledger account and draws its traits from the model's random stream; the order of the draws
is part of the run's reproducibility, so do not reorder them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.carrier import Carrier
from agents.customs_agent import CustomsAgent
from agents.integrator import Integrator
from agents.merchant import MAX_INTEGRATORS, Merchant, MerchantMarkets
from agents.warehouse_operator import WarehouseOperator
from market.money.ledger import to_cents
from market.scenario import ScenarioError
from market.world import EXPORT, HANDLING, IMPORT, MODES, REGIMES, TRANSPORT

if TYPE_CHECKING:
    from market.model import Marketplace

CHINA = {"CN"}     # the exporting territory; merchants elsewhere are importers into it


def open_outside_accounts(model: Marketplace):
    """Accounts of everyone outside the logistics market that money flows to or from."""
    ledger = model.ledger
    model.acct_capital = ledger.open("owners (starting capital)")
    model.acct_consumers = ledger.open("consumers")
    model.acct_suppliers = ledger.open("goods suppliers")
    model.acct_inputs = ledger.open("input markets (fuel, labour, space)")
    model.acct_overheads = ledger.open("merchant overheads (staff, onboarding)")
    model.acct_insurer = ledger.open("cargo insurers")
    model.acct_claims_handling = ledger.open("claims handling (legal, admin)")
    model.acct_authority = np.array([ledger.open(f"customs authority {t}") for t in model.world.territories])


def world_capacity_scale(cfg) -> float:
    """What the world file's capacities are multiplied by: ``network.capacity_scale``, and with
    ``network.capacity_from = "world"`` also the world file's sample rate over the scenario's
    (``simulation.sample_rate``): a run that samples twice as many real parcels per simulated
    one gets half the simulated capacity. Capacities sized from demand follow the simulated
    merchants by themselves and are left alone."""
    from market.scenario import WORLD_SAMPLE_RATE
    scale = cfg.network.capacity_scale
    if cfg.network.capacity_from == "world" and cfg.simulation.sample_rate != WORLD_SAMPLE_RATE:
        scale = scale * (WORLD_SAMPLE_RATE / cfg.simulation.sample_rate)
    return scale


def build_providers(model: Marketplace):
    """Carriers per carrier group (capacity split by a Dirichlet draw), warehouse operators per
    warehouse, customs brokers per customs point; each gets its offers in the offer book.

    Capacities here are the world file's (times ``network.capacity_scale``); with
    ``network.capacity_from = "demand"`` they are provisional: :func:`size_storage` sizes the
    storage space before merchants choose, :func:`size_capacity` the rest once they have. Every offer's fixed cost is ``carriers.fixed_cost_share`` of its unit cost at the
    middle of the utilisation band, per unit of the capacity it keeps for this market.
    """
    cfg, world, rng = model.config, model.world, model.rng
    carriers = cfg.carriers
    scale = world_capacity_scale(cfg)
    u_mid = float(np.mean(carriers.utilisation_target))
    fixed = carriers.fixed_cost_share * u_mid     # fixed cost a day per unit of capacity, per unit cost
    spread = carriers.cost_spread
    for group, group_spec in world.spec.carrier_groups.items():
        lanes = [lane for lane in world.lanes if lane.spec.group == group]
        if not lanes:
            continue
        n = group_spec.count
        shares = rng.dirichlet(np.full(n, 8.0)) if n > 1 else np.ones(1)
        for i in range(n):
            carrier = Carrier(model, f"{group}-{i + 1}", group,
                              cost_factor=1.0 + rng.uniform(-spread, spread),
                              speed=1.0 + rng.uniform(-0.05, 0.05),
                              reliability=rng.uniform(0.7, 1.3))
            model.carriers.append(carrier)
            ids = []
            for lane in lanes:
                ls = lane.spec
                cap = ls.capacity * scale * shares[i]
                unit = (ls.cost_per_kg if ls.bulk else ls.cost_per_parcel + ls.cost_per_kg * 0.6) * carrier.cost_factor
                ids.append(model.offers.add(
                    resource=lane.index,    # lanes are the first resources, in lane order
                    provider=carrier.unique_id, acct=carrier.acct,
                    kind=TRANSPORT, capacity=cap, cost_parcel=ls.cost_per_parcel * carrier.cost_factor,
                    cost_kg=ls.cost_per_kg * carrier.cost_factor,
                    cost_shipment=ls.cost_per_shipment * carrier.cost_factor,
                    fixed_rate=fixed * unit, speed=carrier.speed,
                    delay_mult=carrier.reliability, loss_mult=carrier.reliability, accuracy=1.0,
                    markup=carriers.markup))
            carrier.offer_ids = np.array(ids, dtype=np.int64)
    for node, wh in world.spec.warehouses.items():
        r = model.handling_resource[node]
        for i in range(wh.operators):
            operator = WarehouseOperator(model, f"{node}-{i + 1}", node, 1.0 + rng.uniform(-spread, spread))
            model.operators.append(operator)
            cap = wh.handling_per_day * scale / wh.operators
            operator.offer_ids = np.array([model.offers.add(
                resource=r, provider=operator.unique_id, acct=operator.acct, kind=HANDLING, capacity=cap,
                storage_capacity=wh.storage_units * scale * cfg.warehouses.space_scale / wh.operators,
                cost_parcel=wh.handling_cost * operator.cost_factor,
                cost_storage=wh.storage_cost_per_unit_day * operator.cost_factor,
                fixed_rate=fixed * wh.handling_cost * operator.cost_factor,
                speed=1.0, delay_mult=1.0, loss_mult=1.0, accuracy=1.0,
                markup=cfg.warehouses.markup)])
    # brokers: a few per customs point, each filing for every regime handled there
    points: dict[tuple[str, str], list[int]] = {}
    for res in world.resources:
        if res.kind in (EXPORT, IMPORT):
            points.setdefault((res.node, res.territory), []).append(res.index)
    lo, hi = cfg.customs_agents.accuracy
    clearance = model.clearance
    for (node, territory), resources in points.items():
        t = world.territories.index(territory)
        n = int(clearance.brokers_per_point[t])
        for i in range(n):
            broker = CustomsAgent(model, f"{territory}@{node}-{i + 1}", node, territory,
                                  1.0 + rng.uniform(-spread, spread), rng.uniform(lo, hi))
            model.brokers.append(broker)
            ids = []
            for r in resources:
                res = world.resources[r]
                regime = REGIMES.index(res.regime)
                if res.kind == EXPORT:
                    fee, per_shipment = clearance.export_fee[t], clearance.export_fee_shipment[t]
                else:
                    fee, per_shipment = clearance.broker_fee[t, regime], clearance.broker_fee_shipment[t]
                ids.append(model.offers.add(
                    resource=r, provider=broker.unique_id, acct=broker.acct, kind=res.kind,
                    capacity=clearance.broker_capacity[t] * scale / n,
                    cost_parcel=0.0 if res.bulk else fee * broker.cost_factor,
                    cost_shipment=per_shipment * broker.cost_factor if res.bulk else 0.0,
                    fixed_rate=fixed * (per_shipment if res.bulk else fee) * broker.cost_factor,
                    speed=1.0, delay_mult=1.0, loss_mult=1.0,
                    accuracy=broker.accuracy, markup=cfg.customs_agents.markup))
            broker.offer_ids = np.array(ids, dtype=np.int64)
    for i, provider in enumerate(model.carriers + model.operators + model.brokers):
        provider.provider_index = i
    offers = model.offers
    offers.freeze(len(world.resources))
    # the spare every resource sells from networks that serve others: a share of the median
    # capacity of resources of its kind (here the world file's)
    capacity = np.bincount(offers.resource, weights=offers.capacity, minlength=len(world.resources))
    outside = np.minimum(outside_capacity(model, capacity, capacity > 0), capacity)
    offers.outside_capacity[:] = outside[offers.resource] * _share_of_resource(offers)
    offers.set_fixed_cost(np.arange(offers.n), offers.capacity)
    offers.tightness[:] = u_mid       # providers expect a market at the middle of their band


def _share_of_resource(offers) -> np.ndarray:
    """Each offer's share of its resource's capacity (its provider's share of the resource)."""
    total = np.bincount(offers.resource, weights=offers.capacity)
    return np.divide(offers.capacity, total[offers.resource], out=np.zeros(offers.n),
                     where=total[offers.resource] > 0)


def _unit_class(model: Marketplace, r: int) -> tuple:
    """What a resource's capacity is counted in and what it is like: (unit, kind, mode).
    Units: parcels a day (parcel lanes, warehouses' handling, parcel customs), kg a day (bulk
    lanes) or consignments a day (bulk customs)."""
    net = model.net
    kind, bulk = int(net.res_kind[r]), bool(net.res_bulk[r])
    unit = ("kg" if kind == TRANSPORT else "entries") if bulk else "parcels"
    return unit, kind if kind in (TRANSPORT, HANDLING) else EXPORT, int(net.res_mode[r])


def outside_capacity(model: Marketplace, planned: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Spare capacity each resource sells this market from networks serving other markets:
    ``network.spare_share`` times its planned capacity, or, for a resource nobody plans to use,
    times the median planned capacity of the used resources most like it (same unit, kind and
    mode; else same unit and kind; else same unit; else one unit a day). It carries no fixed
    cost here and keeps a resource nobody plans to use open at a small capacity (a bulk
    resource takes a consignment a day per provider whatever its capacity, so even one unit
    keeps replenishment possible)."""
    share = model.config.network.spare_share
    classes = [_unit_class(model, r) for r in range(planned.size)]
    out = np.zeros(planned.size)
    for r, (unit, kind, mode) in enumerate(classes):
        out[r] = share
        if used[r]:
            out[r] = share * float(planned[r])
            continue
        for like in ((unit, kind, mode), (unit, kind), (unit,)):
            ref = [planned[j] for j in range(planned.size) if used[j] and classes[j][:len(like)] == like]
            if ref:
                out[r] = share * float(np.median(ref))
                break
    return out


def expected_volumes(model: Marketplace) -> np.ndarray:
    """Volume a day each resource should expect from merchants' current choices: their
    expected orders (base rate x demand scale x the delivery-time factor x the mean seasonal
    multiplier of their market over the run), on the chosen route; on a warehouse channel also
    the replenishment (kg a day on bulk lanes, consignments a day at bulk customs) and
    ``network.fallback_share`` of its orders on the stock-out fallback route (the route it
    shipped before while the warehouse fills, else express from its origin)."""
    cfg, world, mm, net = model.config, model.world, model.mm, model.net
    days = max(min(cfg.simulation.days, 366), 1)
    season = model.demand_calendar.table[:days].mean(axis=0)
    orders = mm.base * cfg.demand.scale * mm.time_factor * season[mm.market]
    volume = np.zeros(len(world.resources))
    fallback = cfg.network.fallback_share if cfg.merchants.stockout_policy == "direct" else 0.0
    for row in range(mm.n):
        route = int(mm.route[row])
        if route < 0:
            continue
        q = float(orders[row])
        volume[world.routes[route].resources] += q
        rep = int(mm.rep_route[row])
        if rep < 0:
            continue
        merchant = model.merchants[mm.merchant[row]]
        prods = merchant.products
        kg = q * float((model.prod_share[prods] * model.prod_weight[prods]).sum())
        per_consignment = max(q * cfg.merchants.order_cycle_days, 1.0)
        for r in world.routes[rep].resources:
            volume[r] += kg if net.res_kind[r] == TRANSPORT else q / per_consignment
        if fallback > 0:
            back = int(mm.fallback_route[row])
            if back < 0:
                back = world.direct_route.get((merchant.origin, world.markets[mm.market[row]], "express"), -1)
            if back >= 0:
                volume[world.routes[back].resources] += fallback * q
    return volume


def peak_stock(model: Marketplace) -> np.ndarray:
    """Units per warehouse that merchants could hold there at their seasonal peak (in stock or
    on its way), if every merchant selling into a market the warehouse serves stocked it: each
    (merchant, market) row's expected orders over its replenishment window (lead time of the
    replenishment route from its origin, review period and order cycle) at the window's
    seasonal peak over the run (merchants stock up ahead of the peaks: see
    ``Merchant.replenish``), plus safety stock (``merchants.service_level_z``)."""
    cfg, mm, world = model.config, model.mm, model.world
    merchants = cfg.merchants
    days = max(cfg.simulation.days, 1)
    orders = mm.base * cfg.demand.scale * mm.time_factor
    out = np.zeros(len(model.warehouse_nodes))
    for (market, _channel), route in world.order_route.items():
        node = world.routes[route].warehouse
        w = model.warehouse_nodes.index(node)
        m = world.markets.index(market)
        for row in np.flatnonzero(mm.market == m):
            merchant = model.merchants[mm.merchant[row]]
            rep = world.replenish_route.get((merchant.origin, node))
            if rep is None:
                continue
            lead = model.net.route_expected_days[rep] + merchants.replenish_review_days
            window = int(np.ceil(lead + merchants.order_cycle_days))
            cal = model.demand_calendar.ahead(m, 0, days + window)
            sums = np.convolve(cal, np.ones(window), mode="valid")[:days]
            q = float(orders[row])
            out[w] += q * float(sums.max()) + merchants.service_level_z * np.sqrt(q * lead)
    return out


def size_storage(model: Marketplace):
    """Size every warehouse's storage space before merchants choose and open their stock (with
    ``network.capacity_from = "demand"``; otherwise nothing changes): the peak stock merchants
    could keep there (:func:`peak_stock`) at the middle of ``carriers.utilisation_target``,
    times ``warehouses.space_scale`` and ``network.capacity_scale``, shared equally by the
    warehouse's operators. Space is rented by the unit-day (it carries no fixed cost), so
    operators keep room for every merchant of the markets they serve."""
    cfg, offers = model.config, model.offers
    if cfg.network.capacity_from != "demand":
        return
    lo, hi = cfg.carriers.utilisation_target
    space = peak_stock(model) / (0.5 * (lo + hi)) * cfg.network.capacity_scale * cfg.warehouses.space_scale
    for w, node in enumerate(model.warehouse_nodes):
        offs = offers.by_resource.get(model.handling_resource[node])
        if offs is not None and offs.size:
            offers.storage_capacity[offs] = space[w] / offs.size


def size_capacity(model: Marketplace):
    """Size every provider's capacity to the market merchants have just chosen (with
    ``network.capacity_from = "demand"``; otherwise nothing changes).

    Each resource gets its expected volume (:func:`expected_volumes`) at the middle of
    ``carriers.utilisation_target``, plus the outside spare (:func:`outside_capacity`), times
    ``network.capacity_scale``, shared among its providers as the world's capacity was (the
    carriers' Dirichlet shares, operators and brokers equally). Fixed costs follow the capacity
    kept for the market; a broker's bulk-entry capacity is at least one entry a day (storage
    space was sized before, :func:`size_storage`). The shock board then reapplies shocks in
    force to the new capacities."""
    cfg = model.config
    if cfg.network.capacity_from != "demand":
        return
    offers, world = model.offers, model.world
    lo, hi = cfg.carriers.utilisation_target
    scale = cfg.network.capacity_scale
    volume = expected_volumes(model)
    planned = volume / (0.5 * (lo + hi))
    used = volume > 0
    outside = outside_capacity(model, planned, used)
    share = _share_of_resource(offers)
    offers.outside_capacity[:] = outside[offers.resource] * scale * share
    # a broker files at least one bulk entry a day (consignments come one at a time)
    bulk_customs = model.net.res_bulk[offers.resource] & (offers.kind != TRANSPORT)
    offers.outside_capacity[:] = np.where(bulk_customs, np.maximum(offers.outside_capacity, scale),
                                          offers.outside_capacity)
    offers.capacity[:] = planned[offers.resource] * scale * share + offers.outside_capacity
    offers.base_capacity[:] = offers.capacity
    offers.set_fixed_cost(np.arange(offers.n), offers.capacity)
    model.shockboard.base["capacity"] = offers.capacity.copy()
    model.shockboard.reapply()
    model.quoter.invalidate()
    model.market_version += 1


def build_integrators(model: Marketplace):
    """The 4PL integrators, each with its starting capital and its own traits: a cost factor on
    its overhead, the channels it serves (each with chance ``integrators.coverage``, at least
    one). (The second draw of each, once its tracking visibility, is kept so that later draws
    stay where they were; visibility now comes from providers and control towers,
    market/goods/tracking.py.)

    The traits of the most integrators a scenario may have are drawn at once, whatever the
    count, so the merchants drawn next are the same for every number of integrators (common
    random numbers across designs), and the first integrators are the same too."""
    cfg = model.config.integrators
    n_channels = len(model.world.channels)
    draws = model.rng.random((MAX_INTEGRATORS, 2 + n_channels))
    for i in range(cfg.count):
        u_cost, u_cover = draws[i, 0], draws[i, 2:]
        covers = u_cover < cfg.coverage
        if not covers.any():
            covers[int(np.argmin(u_cover))] = True
        integrator = Integrator(model, f"4PL-{i + 1}", cfg.markup,
                                cost_factor=1.0 + cfg.cost_spread * (2.0 * u_cost - 1.0),
                                covers=covers)
        model.integrators.append(integrator)
        model.ledger.transfer(model.acct_capital, integrator.acct, int(to_cents(cfg.cash)), "capital")


def build_merchants(model: Marketplace):
    """Exporters in Chinese seller clusters and importers into China: each with its products
    (category, value, weight), its markets and its base demand there; then the product and
    listing tables (one listing per merchant, market and product)."""
    cfg, world, rng = model.config, model.world, model.rng
    merchants_cfg = cfg.merchants
    spec = world.spec
    exporter_origins = [origin for origin in spec.origins
                        if spec.nodes and world.graph.nodes[origin]["territory"] in CHINA]
    importer_origins = [origin for origin in spec.origins if origin not in exporter_origins]
    export_markets = [market for market in world.markets
                      if world.graph.nodes[spec.markets[market].node]["territory"] not in CHINA]
    import_markets = [market for market in world.markets if market not in export_markets]
    if merchants_cfg.export_markets:
        export_markets = [market for market in export_markets if market in merchants_cfg.export_markets]
        if not export_markets and merchants_cfg.exporters:
            raise ScenarioError(f"scenario '{cfg.name}': key 'merchants.export_markets': none of "
                                f"{', '.join(merchants_cfg.export_markets)} is a market outside China")
    categories = world.categories
    product_rows = []   # (merchant idx, category, value, weight, cost_share, share)
    market_rows = []
    sigma = cfg.demand.size_sigma

    def pick(options, weights, k):
        p = np.array(weights, dtype=np.float64)
        return list(rng.choice(len(options), size=k, replace=False, p=p / p.sum()))

    def add_merchant(origin, markets, prefix, idx):
        merchant = Merchant(model, f"{prefix}-{idx + 1}", origin, len(model.merchants))
        model.merchants.append(merchant)
        if not cfg.credit.enabled:
            model.ledger.transfer(model.acct_capital, merchant.acct, int(to_cents(merchants_cfg.cash)), "capital")
        n_products = int(rng.integers(merchants_cfg.products[0], merchants_cfg.products[1] + 1))
        category_weights = spec.origins[origin].categories
        names = list(category_weights)
        drawn = rng.choice(len(names), size=n_products,
                           p=np.array(list(category_weights.values())) / sum(category_weights.values()))
        shares = rng.dirichlet(np.full(n_products, 2.0))
        first = len(product_rows)
        for category_idx, share in zip(drawn, shares):
            category = spec.categories[names[category_idx]]
            product_rows.append((merchant.index, categories.index(names[category_idx]),
                                 rng.uniform(*category.value), rng.uniform(*category.weight), category.cost_share,
                                 share))
        merchant.products = np.arange(first, len(product_rows))
        size = rng.lognormal(-0.5 * sigma ** 2, sigma)
        rows = []
        for market in markets:
            rows.append(len(market_rows))
            market_rows.append((merchant.index, world.markets.index(market),
                                cfg.demand.base_orders_per_day * size * spec.markets[market].weight))
        merchant.rows = np.array(rows, dtype=np.int64)

    weights = [spec.origins[origin].weight for origin in exporter_origins]
    for i in range(merchants_cfg.exporters):
        origin = exporter_origins[pick(exporter_origins, weights, 1)[0]]
        lo, hi = merchants_cfg.markets_per_exporter
        k = int(rng.integers(min(lo, len(export_markets)), min(hi, len(export_markets)) + 1))
        market_weights = [spec.markets[market].weight for market in export_markets]
        chosen = [export_markets[j] for j in pick(export_markets, market_weights, k)]
        add_merchant(origin, chosen, "exporter", i)
    weights = [spec.origins[origin].weight for origin in importer_origins]
    for i in range(merchants_cfg.importers if importer_origins and import_markets else 0):
        origin = importer_origins[pick(importer_origins, weights, 1)[0]]
        add_merchant(origin, import_markets, "importer", i)

    products = np.array(product_rows, dtype=np.float64).reshape(-1, 6)
    model.prod_merchant_idx = products[:, 0].astype(np.int64)
    model.prod_category = products[:, 1].astype(np.int64)
    model.prod_value = products[:, 2]
    model.prod_weight = products[:, 3]
    model.prod_cost_share = products[:, 4]
    model.prod_share = products[:, 5]
    origin_territory = [world.territories.index(world.graph.nodes[mer.origin]["territory"]) for mer in model.merchants]
    model.prod_origin_territory = np.array(origin_territory, dtype=np.int64)[model.prod_merchant_idx] \
        if len(origin_territory) else np.zeros(0, dtype=np.int64)
    model.mm = MerchantMarkets(market_rows)
    # listings: one row per (merchant-market, product)
    listing_row, listing_product = [], []
    for merchant in model.merchants:
        for row in merchant.rows:
            model.mm.first_listing[row] = len(listing_row)
            listing_row.extend([row] * merchant.products.size)
            listing_product.extend(merchant.products.tolist())
    model.lst_mm = np.array(listing_row, dtype=np.int64)
    model.lst_product = np.array(listing_product, dtype=np.int64)
    price_listings(model)
    if cfg.credit.enabled:
        give_starting_cash(model, market_rows)


def give_starting_cash(model: Marketplace, market_rows: list[tuple]):
    """Merchants start with cash for a number of days of their expected sales (base orders a day
    in each market times the mean value of a unit), the days drawn per merchant around
    ``credit.cash_buffer_days``: some merchants are well funded, others live day to day."""
    credit, n = model.config.credit, len(model.merchants)
    model.merchant_buffer_cents = np.zeros(n, dtype=np.int64)
    if n == 0:
        return
    unit_value = np.bincount(model.prod_merchant_idx, weights=model.prod_value * model.prod_share, minlength=n)
    orders = np.bincount(np.array([r[0] for r in market_rows], dtype=np.int64),
                         weights=np.array([r[2] for r in market_rows], dtype=np.float64), minlength=n)
    days = credit.cash_buffer_days * model.rng.lognormal(0.0, credit.cash_buffer_sigma, n)
    model.merchant_buffer_cents = to_cents(days * orders * unit_value)
    for merchant, cents in zip(model.merchants, model.merchant_buffer_cents):
        model.ledger.transfer(model.acct_capital, merchant.acct, int(cents), "capital")


def price_listings(model: Marketplace):
    """Each listing's reference consumer price - the product's drawn value plus the duty and
    VAT on it by express into the market under the rules of ``demand.reference_date`` - and
    its price columns, filled when its merchant first chooses: the retail price, the duty and
    VAT per unit, the logistics and carrying cost per unit, and the demand's price factor."""
    world, demand = model.world, model.config.demand
    n = model.lst_mm.size
    prod = model.lst_product
    value = model.prod_value[prod] if n else np.zeros(0)
    ref_tax = np.zeros(n)
    market = model.mm.market[model.lst_mm] if n else np.zeros(0, dtype=np.int64)
    for k in np.unique(market):
        sel = market == k
        territory = world.graph.nodes[world.spec.markets[world.markets[k]].node]["territory"]
        duty, vat = model.duties.assess(territory, demand.reference_date, "express", value[sel],
                                        model.prod_weight[prod[sel]], model.prod_category[prod[sel]],
                                        model.prod_origin_territory[prod[sel]])
        ref_tax[sel] = duty + vat
    model.lst_ref_price = value + ref_tax
    model.lst_price = value.copy()
    model.lst_tax = ref_tax.copy()
    model.lst_unit_cost = demand.reference_logistics_share * value
    model.lst_pf = np.ones(n)
