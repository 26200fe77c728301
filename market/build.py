"""Building the market on day 0: the outside accounts, the providers, the integrators, the
merchants with their products and listings.

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
from market.world import EXPORT, HANDLING, IMPORT, REGIMES, TRANSPORT

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


def build_providers(model: Marketplace):
    """Carriers per carrier group (capacity split by a Dirichlet draw), warehouse operators per
    warehouse, customs brokers per customs point; each gets its offers in the offer book."""
    cfg, world, rng = model.config, model.world, model.rng
    carriers = cfg.carriers
    scale = cfg.network.capacity_scale
    u_mid = float(np.mean(carriers.utilisation_target))
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
                    fixed_cost_day=carriers.fixed_cost_share * u_mid * cap * unit, speed=carrier.speed,
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
                fixed_cost_day=carriers.fixed_cost_share * u_mid * cap * wh.handling_cost * operator.cost_factor,
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
                    capacity=clearance.broker_capacity[t] * cfg.network.capacity_scale / n,
                    cost_parcel=0.0 if res.bulk else fee * broker.cost_factor,
                    cost_shipment=per_shipment * broker.cost_factor if res.bulk else 0.0,
                    fixed_cost_day=0.0, speed=1.0, delay_mult=1.0, loss_mult=1.0,
                    accuracy=broker.accuracy, markup=cfg.customs_agents.markup))
            broker.offer_ids = np.array(ids, dtype=np.int64)
    for i, provider in enumerate(model.carriers + model.operators + model.brokers):
        provider.provider_index = i
    model.offers.freeze(len(world.resources))


def build_integrators(model: Marketplace):
    """The 4PL integrators, each with its starting capital and its own traits: a cost factor on
    its overhead, the channels it serves (each with chance ``integrators.coverage``, at least
    one) and its tracking visibility.

    The traits of the most integrators a scenario may have are drawn at once, whatever the
    count, so the merchants drawn next are the same for every number of integrators (common
    random numbers across designs), and the first integrators are the same too."""
    cfg = model.config.integrators
    n_channels = len(model.world.channels)
    draws = model.rng.random((MAX_INTEGRATORS, 2 + n_channels))
    for i in range(cfg.count):
        u_cost, u_vis, u_cover = draws[i, 0], draws[i, 1], draws[i, 2:]
        covers = u_cover < cfg.coverage
        if not covers.any():
            covers[int(np.argmin(u_cover))] = True
        lo, hi = cfg.visibility
        integrator = Integrator(model, f"4PL-{i + 1}", cfg.markup,
                                cost_factor=1.0 + cfg.cost_spread * (2.0 * u_cost - 1.0),
                                covers=covers, visibility=lo + (hi - lo) * u_vis)
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
        k = int(rng.integers(lo, min(hi, len(export_markets)) + 1))
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
