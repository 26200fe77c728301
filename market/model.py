"""The Marketplace: a Mesa model wiring the world, the actors, the markets and the money.

One step is one day: contracts start and expire, tenders run when due, providers review
prices, merchants review channels and replenish stock, consumers place orders, parcels and
consignments move through their stages under capacity, warehouses bill storage, providers pay
for their capacity, and the day's figures are recorded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import mesa
import numpy as np

from agents.carrier import Carrier
from agents.customs_agent import CustomsAgent
from agents.integrator import Integrator
from agents.merchant import Merchant, Option
from agents.warehouse_operator import WarehouseOperator
from market.money.contracts import ACTIVE, SERVICES, ContractBook
from market.world.customs import ClearanceTables, DutyCalculator
from market.integration.efficiency import measure as measure_efficiency
from market.world.demand import calendar_multipliers, time_factor
from market.evolution import Evolution
from market.goods.flows import ParcelFlow
from market.goods.inventory import Inventory
from market.money.ledger import Ledger, to_cents
from market.metrics.recorder import Metrics
from market.world.network import NetworkTables
from market.procurement.offers import OfferBook
from market.goods.parcels import DELIVERED, LOST, WAITING, WAITING_STOCK, ParcelSink, ParcelTable
from market.procurement.quotes import Quoter
from market.scenario import Scenario, ScenarioError, load_scenario
from market.shocks import ShockBoard
from market.money.claims import ClaimBook
from market.money.contracts import BREACHED, EXECUTED, EXPIRED
from market.mechanisms.insurance import premium as insurance_premium
from market.mechanisms.reputation import DIMENSIONS, ReputationBook
from market.mechanisms.strategies import AdaptiveMarkup
from market.procurement.tendering import sla_days, tender_round
from market.world import EXPORT, HANDLING, IMPORT, REGIMES, TRANSPORT, load_world


PAYMENT = DIMENSIONS.index("payment")


class MerchantMarkets:
    """One row per (merchant, market): the merchant's current choice and what it expects."""

    FIELDS = {"merchant": np.int64, "market": np.int64, "base": np.float64, "channel": np.int64,
              "integrator": np.int64, "route": np.int64, "rep_route": np.int64, "warehouse": np.int64,
              "prev_warehouse": np.int64, "expected_days": np.float64, "time_factor": np.float64,
              "lead_ema": np.float64, "lead_n": np.int64, "since": np.int64}

    def __init__(self, rows: list[tuple[int, int, float]]):
        n = len(rows)
        for k, t in self.FIELDS.items():
            setattr(self, k, np.full(n, -1 if t is np.int64 else 0.0, dtype=t))
        for i, (mer, mkt, base) in enumerate(rows):
            self.merchant[i], self.market[i], self.base[i] = mer, mkt, base
        self.time_factor[:] = 1.0
        self.lead_n[:] = 0
        self.insured = np.zeros(n, dtype=bool)
        self.markup = np.zeros(n)            # the integrator's agreed markup on its cost
        self.e2e_contract = np.full(n, -1, dtype=np.int64)   # its end-to-end contract, if any
        self.fallback_route = np.full(n, -1, dtype=np.int64) # direct route while a new warehouse fills
        self.n = n


class Marketplace(mesa.Model):
    """A multi-agent 4PL marketplace for cross-border e-commerce logistics.

    Args:
        scenario: a built-in scenario name, a TOML file, or a :class:`Scenario`.
        rng: seed (or numpy SeedSequence / Generator) of the run's random streams.
        parcels_path: where to write finished parcels as Parquet (None: not kept).
        **overrides: scenario keys to change, dotted (``**{"demand.scale": 2}``) or with
            double underscores (``demand__scale=2``), e.g. for ``mesa.batch_run``.
    """

    reference_weight = 1.0   # kg: the parcel prices are compared on

    def __init__(self, scenario: str | Path | Scenario = "baseline", rng=None, *,
                 parcels_path: str | Path | None = None, seed=None, **overrides):
        super().__init__(rng=seed if rng is None and seed is not None else rng)
        self.config = load_scenario(scenario, overrides)
        cfg = self.config
        self.scenario_name = cfg.name
        self.world = load_world(cfg.world)
        self.day = 0
        self.date = cfg.simulation.start_date

        # ---- money ----
        self.ledger = Ledger()
        L = self.ledger
        self.acct_capital = L.open("owners (starting capital)")
        self.acct_consumers = L.open("consumers")
        self.acct_suppliers = L.open("goods suppliers")
        self.acct_inputs = L.open("input markets (fuel, labour, space)")
        self.acct_overheads = L.open("merchant overheads (staff, onboarding)")
        self.acct_insurer = L.open("cargo insurers")
        self.acct_claims_handling = L.open("claims handling (legal, admin)")
        self.acct_authority = np.array([L.open(f"customs authority {t}") for t in self.world.territories])

        # ---- tables ----
        self.clearance = ClearanceTables(self.world)
        self.net = NetworkTables(self.world, self.clearance)
        missing = self.net.check_customs(self.clearance)
        if missing:
            raise ScenarioError(f"world: no clearance times for {', '.join(missing)}")
        self.duties = DutyCalculator(self.world)
        self.warehouse_nodes = [n for n in self.world.spec.warehouses]
        self.promised_days = np.array([self.world.spec.channels[c].promised_days for c in self.world.channels])
        self.handling_resource = {r.node: r.index for r in self.world.resources if r.kind == HANDLING}
        self.route_warehouse = np.array([self.warehouse_nodes.index(rt.warehouse) if rt.warehouse else -1
                                         for rt in self.world.routes], dtype=np.int64)
        # (market, warehouse) -> the route an order takes from that warehouse's stock
        self.order_route_table = np.full((len(self.world.markets), len(self.warehouse_nodes)), -1, dtype=np.int64)
        for (mkt, ch), r in self.world.order_route.items():
            self.order_route_table[self.world.markets.index(mkt), self.route_warehouse[r]] = r
        self.calendar = calendar_multipliers(cfg.demand, cfg.simulation.start_date,
                                             max(cfg.simulation.days, 1) + 366, self.world.markets)

        # ---- actors ----
        self.offers = OfferBook()
        self.contracts = ContractBook()
        self.carriers: list[Carrier] = []
        self.operators: list[WarehouseOperator] = []
        self.brokers: list[CustomsAgent] = []
        self.integrators: list[Integrator] = []
        self.merchants: list[Merchant] = []
        self._create_providers()
        for i in range(cfg.integrators.count):
            it = Integrator(self, f"4PL-{i + 1}", cfg.integrators.markup)
            self.integrators.append(it)
            self.ledger.transfer(self.acct_capital, it.acct, int(to_cents(cfg.integrators.cash)), "capital")
        self._create_merchants()
        self.merchant_accts = np.array([m.acct for m in self.merchants], dtype=np.int64)
        self.integrator_accts = np.array([it.acct for it in self.integrators], dtype=np.int64)
        self.peak_storage_multiplier = np.array([self.world.spec.warehouses[w].peak_storage_multiplier
                                                 for w in self.world.spec.warehouses])
        uids = [a.unique_id for a in self.agents]
        self._uid_acct = np.full(max(uids) + 1, -1, dtype=np.int64)
        for a in self.agents:
            self._uid_acct[a.unique_id] = a.acct
        # credit and reputation of every agent (providers: delivery, loss, disputes; merchants: payments)
        self.reputation = ReputationBook(max(uids) + 1, half_life=90.0)
        self.claims = ClaimBook(self)
        self.incumbents: dict[tuple[int, int], set[int]] = {}
        self.bid_strategy = None
        if cfg.market.bidding == "adaptive":
            lo, hi = cfg.carriers.markup_bounds
            self.bid_strategy = AdaptiveMarkup(self.offers.n, initial=self.offers.markup.copy(),
                                               step_up=0.05, step_down=0.05, min_markup=lo, max_markup=hi,
                                               target_utilisation=float(np.mean(cfg.carriers.utilisation_target)))

        # ---- engines ----
        self.parcels = ParcelTable(self.net.max_stages)
        labels = {"channel": self.world.channels, "market": self.world.markets,
                  "category": self.world.categories, "origin_territory": self.world.territories}
        self.sink = ParcelSink(parcels_path, labels, self.net.max_stages, cfg.output.parcel_chunk_rows)
        self.inventory = Inventory(self, len(self.prod_value), len(self.warehouse_nodes))
        self.quoter = Quoter(self)
        self.stage_sla = np.array([sla_days(self, r) for r in range(len(self.world.resources))])
        self.flow = ParcelFlow(self)
        self.metrics = Metrics(self)
        self.plan: dict[tuple[int, int], float] = {}
        self.plan_routes: dict[tuple[int, int], float] = {}
        self.plan_by_buyer: dict[int, np.ndarray] = {}
        self.market_version = 0          # bumped whenever prices, contracts or capacity change
        self.network_changed = False     # a shock opened or closed something today
        self.evolution = Evolution(self)
        self.efficiency: dict[int, dict] = {}
        self.active_contracts = np.zeros(0, dtype=np.int64)
        self.tenders_today = 0
        self.breaches_today = 0

        self._ready = False
        self.shockboard = ShockBoard(self)
        self.shockboard.update(0)
        # merchants pick their first channels on list prices; stock is warm-started
        for mer in self.merchants:
            for row in mer.rows:
                mer.choose(int(row), initial=True)
        self.refresh_plan()
        self._ready = True

        self.today = self.metrics.daily(self)
        self.datacollector = mesa.DataCollector(
            model_reporters={k: (lambda m, k=k: m.today[k]) for k in self.today})

    # ------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------
    def _create_providers(self):
        cfg, w, rng = self.config, self.world, self.rng
        cs = cfg.carriers
        scale = cfg.network.capacity_scale
        u_mid = float(np.mean(cs.utilisation_target))
        spread = cs.cost_spread
        for group, gspec in w.spec.carrier_groups.items():
            lanes = [ln for ln in w.lanes if ln.spec.group == group]
            if not lanes:
                continue
            n = gspec.count
            shares = rng.dirichlet(np.full(n, 8.0)) if n > 1 else np.ones(1)
            for i in range(n):
                car = Carrier(self, f"{group}-{i + 1}", group,
                              cost_factor=1.0 + rng.uniform(-spread, spread),
                              speed=1.0 + rng.uniform(-0.05, 0.05),
                              reliability=rng.uniform(0.7, 1.3))
                self.carriers.append(car)
                ids = []
                for ln in lanes:
                    ls = ln.spec
                    cap = ls.capacity * scale * shares[i]
                    unit = (ls.cost_per_kg if ls.bulk else ls.cost_per_parcel + ls.cost_per_kg * 0.6) * car.cost_factor
                    ids.append(self.offers.add(
                        resource=self._lane_resource(ln.index), provider=car.unique_id, acct=car.acct,
                        kind=TRANSPORT, capacity=cap, cost_parcel=ls.cost_per_parcel * car.cost_factor,
                        cost_kg=ls.cost_per_kg * car.cost_factor, cost_shipment=ls.cost_per_shipment * car.cost_factor,
                        fixed_cost_day=cs.fixed_cost_share * u_mid * cap * unit, speed=car.speed,
                        delay_mult=car.reliability, loss_mult=car.reliability, accuracy=1.0, markup=cs.markup))
                car.offer_ids = np.array(ids, dtype=np.int64)
        for node, ws in w.spec.warehouses.items():
            r = self.handling_resource[node]
            for i in range(ws.operators):
                op = WarehouseOperator(self, f"{node}-{i + 1}", node, 1.0 + rng.uniform(-spread, spread))
                self.operators.append(op)
                cap = ws.handling_per_day * scale / ws.operators
                op.offer_ids = np.array([self.offers.add(
                    resource=r, provider=op.unique_id, acct=op.acct, kind=HANDLING, capacity=cap,
                    storage_capacity=ws.storage_units * scale * cfg.warehouses.space_scale / ws.operators,
                    cost_parcel=ws.handling_cost * op.cost_factor,
                    cost_storage=ws.storage_cost_per_unit_day * op.cost_factor,
                    fixed_cost_day=cs.fixed_cost_share * u_mid * cap * ws.handling_cost * op.cost_factor,
                    speed=1.0, delay_mult=1.0, loss_mult=1.0, accuracy=1.0,
                    markup=cfg.warehouses.markup)])
        # brokers: a few per customs point, each filing for every regime handled there
        points: dict[tuple[str, str], list[int]] = {}
        for r in w.resources:
            if r.kind in (EXPORT, IMPORT):
                points.setdefault((r.node, r.territory), []).append(r.index)
        lo, hi = cfg.customs_agents.accuracy
        for (node, terr), res_ids in points.items():
            t = w.territories.index(terr)
            n = int(self.clearance.brokers_per_point[t])
            for i in range(n):
                br = CustomsAgent(self, f"{terr}@{node}-{i + 1}", node, terr,
                                  1.0 + rng.uniform(-spread, spread), rng.uniform(lo, hi))
                self.brokers.append(br)
                ids = []
                for r in res_ids:
                    res = w.resources[r]
                    g = REGIMES.index(res.regime)
                    if res.kind == EXPORT:
                        fee, ship = self.clearance.export_fee[t], self.clearance.export_fee_shipment[t]
                    else:
                        fee, ship = self.clearance.broker_fee[t, g], self.clearance.broker_fee_shipment[t]
                    ids.append(self.offers.add(
                        resource=r, provider=br.unique_id, acct=br.acct, kind=res.kind,
                        capacity=self.clearance.broker_capacity[t] * cfg.network.capacity_scale / n,
                        cost_parcel=0.0 if res.bulk else fee * br.cost_factor,
                        cost_shipment=ship * br.cost_factor if res.bulk else 0.0,
                        fixed_cost_day=0.0, speed=1.0, delay_mult=1.0, loss_mult=1.0,
                        accuracy=br.accuracy, markup=cfg.customs_agents.markup))
                br.offer_ids = np.array(ids, dtype=np.int64)
        providers = self.carriers + self.operators + self.brokers
        for i, p in enumerate(providers):
            p.provider_index = i
        self.offers.freeze(len(w.resources))

    def _lane_resource(self, lane_index: int) -> int:
        # lanes are the first resources, in lane order
        return lane_index

    def _create_merchants(self):
        cfg, w, rng = self.config, self.world, self.rng
        mc = cfg.merchants
        spec = w.spec
        cn_terr = {"CN"}
        origins_x = [o for o in spec.origins if spec.nodes and w.graph.nodes[o]["territory"] in cn_terr]
        origins_m = [o for o in spec.origins if o not in origins_x]
        export_markets = [m for m in w.markets if w.graph.nodes[spec.markets[m].node]["territory"] not in cn_terr]
        import_markets = [m for m in w.markets if m not in export_markets]
        cats = w.categories
        prod_rows = []   # (merchant idx, category, value, weight, cost_share, share)
        mm_rows = []
        sigma = cfg.demand.size_sigma

        def pick(options, weights, k):
            p = np.array(weights, dtype=np.float64)
            return list(rng.choice(len(options), size=k, replace=False, p=p / p.sum()))

        def add_merchant(origin, markets, prefix, idx):
            mer = Merchant(self, f"{prefix}-{idx + 1}", origin, len(self.merchants))
            self.merchants.append(mer)
            self.ledger.transfer(self.acct_capital, mer.acct, int(to_cents(mc.cash)), "capital")
            n_prod = int(rng.integers(mc.products[0], mc.products[1] + 1))
            cw = spec.origins[origin].categories
            cat_names = list(cw)
            cat_idx = rng.choice(len(cat_names), size=n_prod, p=np.array(list(cw.values())) / sum(cw.values()))
            shares = rng.dirichlet(np.full(n_prod, 2.0))
            first = len(prod_rows)
            for c, s in zip(cat_idx, shares):
                cs = spec.categories[cat_names[c]]
                prod_rows.append((mer.index, cats.index(cat_names[c]), rng.uniform(*cs.value),
                                  rng.uniform(*cs.weight), cs.cost_share, s))
            mer.products = np.arange(first, len(prod_rows))
            size = rng.lognormal(-0.5 * sigma ** 2, sigma)
            rows = []
            for mkt in markets:
                rows.append(len(mm_rows))
                mm_rows.append((mer.index, w.markets.index(mkt),
                                cfg.demand.base_orders_per_day * size * spec.markets[mkt].weight))
            mer.rows = np.array(rows, dtype=np.int64)

        ow = [spec.origins[o].weight for o in origins_x]
        for i in range(mc.exporters):
            origin = origins_x[pick(origins_x, ow, 1)[0]]
            lo, hi = mc.markets_per_exporter
            k = int(rng.integers(lo, min(hi, len(export_markets)) + 1))
            mk = [export_markets[j] for j in pick(export_markets, [spec.markets[m].weight for m in export_markets], k)]
            add_merchant(origin, mk, "exporter", i)
        ow = [spec.origins[o].weight for o in origins_m]
        for i in range(mc.importers if origins_m and import_markets else 0):
            origin = origins_m[pick(origins_m, ow, 1)[0]]
            add_merchant(origin, import_markets, "importer", i)

        pr = np.array(prod_rows, dtype=np.float64).reshape(-1, 6)
        self.prod_merchant_idx = pr[:, 0].astype(np.int64)
        self.prod_category = pr[:, 1].astype(np.int64)
        self.prod_value = pr[:, 2]
        self.prod_weight = pr[:, 3]
        self.prod_cost_share = pr[:, 4]
        self.prod_share = pr[:, 5]
        origin_terr = [w.territories.index(w.graph.nodes[m.origin]["territory"]) for m in self.merchants]
        self.prod_origin_territory = np.array(origin_terr, dtype=np.int64)[self.prod_merchant_idx] \
            if len(origin_terr) else np.zeros(0, dtype=np.int64)
        self.mm = MerchantMarkets(mm_rows)
        # listings: one row per (merchant-market, product)
        lm, lp = [], []
        for mer in self.merchants:
            for row in mer.rows:
                lm.extend([row] * mer.products.size)
                lp.extend(mer.products.tolist())
        self.lst_mm = np.array(lm, dtype=np.int64)
        self.lst_product = np.array(lp, dtype=np.int64)

    # ------------------------------------------------------------------------------------
    # lookups used by agents and engines
    # ------------------------------------------------------------------------------------
    def lst_share_of(self, row: int) -> np.ndarray:
        """Order shares of a merchant's products (the same in each of its markets)."""
        return self.prod_share[self.merchants[self.mm.merchant[row]].products]

    def provider_acct_by_uid(self, uids) -> np.ndarray:
        return self._uid_acct[np.asarray(uids, dtype=np.int64)]

    def expected_duty(self, products: np.ndarray, route: int, rep_route: int) -> np.ndarray:
        """Duty and VAT per unit of each product along a route (and its replenishment), under
        the rules in force today (memoised for the day)."""
        key = (self.day, products.tobytes(), route, rep_route)
        memo = self.__dict__.setdefault("_duty_memo", {})
        got = memo.get(key)
        if got is not None:
            return got
        if memo and next(iter(memo))[0] != self.day:
            memo.clear()
        memo[key] = out = self._expected_duty(products, route, rep_route)
        return out

    def _expected_duty(self, products: np.ndarray, route: int, rep_route: int) -> np.ndarray:
        out = np.zeros(products.size)
        for rt, bulk in ((route, False), (rep_route, True)):
            if rt < 0:
                continue
            for r in self.world.routes[rt].resources:
                res = self.world.resources[r]
                if res.kind != IMPORT:
                    continue
                value = self.prod_value[products] * (self.prod_cost_share[products] if bulk else 1.0)
                duty, vat = self.duties.assess(res.territory, self.date, res.regime, value,
                                               self.prod_weight[products], self.prod_category[products],
                                               self.prod_origin_territory[products])
                out += duty + vat
        return out

    def season_ahead(self, market: int, day: int, horizon: int = 400) -> np.ndarray:
        """Calendar multipliers of a market from ``day`` on (extended as needed)."""
        cfg = self.config
        if day + horizon > self.calendar.shape[0]:
            self.calendar = calendar_multipliers(cfg.demand, cfg.simulation.start_date, day + horizon + 366,
                                                 self.world.markets)
        return self.calendar[day: day + horizon, market]

    def _settle_contracts(self, ended: np.ndarray, day: int):
        """Contracts whose term ended: shortfall fees on unshipped commitments, final status."""
        if ended.size == 0:
            return
        book, cfg = self.contracts, self.config.market
        st = book.cols["status"]
        short = np.maximum(book.volume_commitment[ended] - book.executed[ended], 0.0)
        ref = book.rate_parcel[ended] + book.rate_kg[ended] * self.reference_weight
        fee = to_cents(short * ref * cfg.shortfall_fee_share)
        pay = fee > 0
        self.ledger.post(book.buyer_acct[ended[pay]], book.provider_acct[ended[pay]], fee[pay], "shortfall_fee")
        book.cols["shortfall_cents"][ended] = fee
        executed = book.executed[ended]
        on_time = 1.0 - np.divide(book.late[ended], executed, out=np.zeros(ended.size), where=executed > 0)
        st[ended] = np.where(executed <= 0, EXPIRED, np.where(on_time < cfg.sla_target, BREACHED, EXECUTED))
        self.breaches_today = int((st[ended] == BREACHED).sum())

    def bid_markup(self, offers: np.ndarray) -> np.ndarray:
        """The markup each offer bids with in tenders, by the providers' bidding strategy."""
        rule = self.config.market.bidding
        if rule == "truthful":
            return np.zeros(offers.size)
        if rule == "adaptive":
            return self.bid_strategy.markup(offers)
        return self.offers.markup[offers]

    def credit_score(self, buyer) -> float:
        """A buyer's credit standing in [0, 1]: the payment dimension of its reputation."""
        return float(self.reputation.dimension_scores(np.array([buyer.unique_id]))[0, PAYMENT])

    def learn_from_tenders(self, bid: np.ndarray, won: np.ndarray):
        """Adaptive bidders update their markups from the round's wins and losses."""
        if self.bid_strategy is None or bid.size == 0:
            return
        offs = np.unique(bid)
        util = self.offers.utilisation_prev(offs)
        self.bid_strategy.observe(np.isin(offs, won), utilisation=util, providers=offs)
        self.offers.markup[offs] = self.bid_strategy.markup(offs)

    def provider_entered(self, p):
        """Wire a provider that entered mid-run into the accounts, reputations and catalogues."""
        uid = p.unique_id
        if uid >= self._uid_acct.size:
            self._uid_acct = np.concatenate([self._uid_acct, np.full(uid + 1 - self._uid_acct.size, -1)])
        self._uid_acct[uid] = p.acct
        if uid >= self.reputation.n_entities:
            self.reputation.add_entities(uid + 1 - self.reputation.n_entities)
        if self.bid_strategy is not None:
            self.bid_strategy._markup = np.concatenate([self.bid_strategy._markup, self.offers.markup[p.offer_ids]])
            self.bid_strategy.n_providers = self.offers.n
        for it in self.integrators:
            if it.catalogue is not None:
                it.catalogue.add_offers(p.offer_ids)

    def integrator_left(self, it):
        """An integrator left the market: its merchants choose again now."""
        for mer in self.merchants:
            for row in mer.rows:
                if self.mm.integrator[row] == it.index:
                    mer.choose(int(row), forced=True)

    def allowed_channels(self) -> set[str]:
        """Channels merchants may choose today (a scenario's restriction, or a shock's)."""
        if self.shockboard.allowed_channels is not None:
            return self.shockboard.allowed_channels
        return set(self.config.merchants.allowed_channels or self.world.channels)

    def channels_changed(self):
        """A shock changed the allowed channels: merchants on a forbidden one move at once."""
        if not getattr(self, "_ready", False):
            return
        allowed = self.allowed_channels()
        for mer in self.merchants:
            for row in mer.rows:
                if self.world.channels[self.mm.channel[row]] not in allowed:
                    mer.choose(int(row), forced=True)

    def stock_holder(self) -> np.ndarray:
        """(merchant, warehouse) -> integrator buying that stock's services, or -1 (the merchant)."""
        mm = self.mm
        out = np.full((len(self.merchants), len(self.warehouse_nodes)), -1, dtype=np.int64)
        for field in ("prev_warehouse", "warehouse"):       # the current channel wins
            w = getattr(mm, field)
            sel = w >= 0
            out[mm.merchant[sel], w[sel]] = mm.integrator[sel]
        return out

    def storage_rates(self, buyer_acct: np.ndarray, wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`storage_rate` for many (buyer, warehouse) pairs at once."""
        book, o = self.contracts, self.offers
        contracted: dict[tuple[int, int], tuple[int, float]] = {}
        cheapest: dict[int, tuple[int, float]] = {}
        for w in np.unique(wh):
            r = self.handling_resource[self.warehouse_nodes[int(w)]]
            for cid in reversed(book.by_resource.get(r, np.zeros(0, dtype=np.int64)).tolist()):  # first wins
                contracted[(int(book.buyer_acct[cid]), int(w))] = (int(book.offer[cid]), float(book.rate_storage[cid]))
            offs = o.by_resource.get(r)
            offs = offs[o.active[offs]] if offs is not None else np.zeros(0, dtype=np.int64)
            if offs.size:
                price = o.cost_storage[offs] * (1.0 + o.markup[offs])
                j = int(np.argmin(price))
                cheapest[int(w)] = (int(offs[j]), float(price[j]))
        offer = np.full(buyer_acct.size, -1, dtype=np.int64)
        rate = np.zeros(buyer_acct.size)
        for i, (b, w) in enumerate(zip(buyer_acct.tolist(), wh.tolist())):
            offer[i], rate[i] = contracted.get((b, w)) or cheapest.get(w, (-1, 0.0))
        return offer, rate

    def storage_rate(self, buyer_acct: int, wh: int) -> tuple[int, float]:
        """(offer, storage rate per unit-day) a buyer pays at a warehouse."""
        r = self.handling_resource[self.warehouse_nodes[wh]]
        book = self.contracts
        for cid in self.contracts.by_resource.get(r, ()):
            if book.buyer_acct[cid] == buyer_acct:
                return int(book.offer[cid]), float(book.rate_storage[cid])
        o = self.offers.by_resource.get(r)
        if o is None:
            return -1, 0.0
        o = o[self.offers.active[o]]
        if o.size == 0:
            return -1, 0.0
        price = self.offers.cost_storage[o] * (1.0 + self.offers.markup[o])
        j = int(np.argmin(price))
        return int(o[j]), float(price[j])

    def _end_to_end(self, row: int, opt: Option):
        """A merchant buying an integrator's service signs an end-to-end contract with it; the
        previous one ends (executed) when it switches."""
        mm, book = self.mm, self.contracts
        old = int(mm.e2e_contract[row])
        if old >= 0 and book.status[old] == ACTIVE:
            book.cols["status"][old] = EXECUTED
            book.cols["end"][old] = self.day
        mm.e2e_contract[row] = -1
        if opt.integrator < 0:
            return
        mer = self.merchants[mm.merchant[row]]
        it = self.integrators[opt.integrator]
        a, b = it.route_rates(opt.route)
        up = 1.0 + opt.markup
        mm.e2e_contract[row] = book.add(
            f"quote/{opt.service}", buyer=mer.unique_id, buyer_acct=mer.acct, provider=it.unique_id,
            provider_acct=it.acct, offer=-1, resource=-1, service=SERVICES.index("end_to_end"),
            rate_parcel=a * up, rate_kg=b * up, cost_factor=1.0, capacity=opt.orders,
            sla_days=int(np.ceil(opt.days)), penalty=self.config.integrators.service_credit,
            start=self.day, end=10 ** 6, status=ACTIVE, round=self.day, n_bids=1,
            winning_bid=float(a * up + b * up * self.reference_weight), second_bid=float("nan"),
            score=float(opt.profit))

    def assign_option(self, row: int, opt: Option, initial: bool = False, keep_learning: bool = False):
        """Record a merchant's choice for a market (and warm-start its stock on day 0).

        ``keep_learning``: the same channel and provider (another service level), so what the
        merchant has learned about its delivery times is kept.
        """
        mm, cfg = self.mm, self.config
        self._end_to_end(row, opt)
        old_wh = mm.warehouse[row]
        old_route, old_rep = int(mm.route[row]), int(mm.rep_route[row])
        if opt.rep_route >= 0 and old_route >= 0 and old_rep < 0:
            mm.fallback_route[row] = old_route   # ships as before until the warehouse has stock
        elif opt.rep_route < 0:
            mm.fallback_route[row] = -1
        mm.channel[row] = opt.channel
        mm.integrator[row] = opt.integrator
        mm.route[row] = opt.route
        mm.rep_route[row] = opt.rep_route
        new_wh = self.route_warehouse[opt.route] if opt.rep_route >= 0 else -1
        mm.warehouse[row] = new_wh
        if old_wh >= 0 and old_wh != new_wh:
            mm.prev_warehouse[row] = old_wh      # sell down what is left there
        mm.markup[row] = opt.markup
        mm.expected_days[row] = opt.days
        mm.time_factor[row] = time_factor(opt.days, cfg.demand.time_elasticity, cfg.demand.reference_days) \
            * (1.0 + cfg.integrators.visibility_uplift * opt.visibility)
        if not keep_learning:
            mm.lead_ema[row] = 0.0
            mm.lead_n[row] = 0
            mm.since[row] = self.day
        self.plan_dirty = True
        if initial and new_wh >= 0:
            self._warm_start_stock(row, opt)

    def _warm_start_stock(self, row: int, opt: Option):
        """Opening stock: one replenishment cycle plus safety stock, carrying its expected cost."""
        mm, cfg = self.mm, self.config
        mer = self.merchants[mm.merchant[row]]
        prods = mer.products
        wh = mm.warehouse[row]
        d = mm.base[row] * cfg.demand.scale * mm.time_factor[row] * self.prod_share[prods]
        lead = self.net.route_expected_days[opt.rep_route] + cfg.merchants.replenish_review_days
        cal = self.season_ahead(int(mm.market[row]), self.day)
        window = cal[: int(np.ceil(lead + cfg.merchants.order_cycle_days))].sum()
        units = np.ceil(d * window + cfg.merchants.service_level_z * np.sqrt(d * lead)).astype(np.int64)
        units = self.inventory.fit_to_space(int(wh), units)
        self.inventory.stock[prods, wh] += units
        per_unit_duty = self.expected_duty(prods, -1, opt.rep_route)
        buyer = mer.acct if opt.integrator < 0 else self.integrators[opt.integrator].acct
        up = self.quoter.replenish_cost(buyer, opt.rep_route, self.warehouse_nodes[wh], self.prod_weight[prods],
                                        max(float(d.sum() * cfg.merchants.order_cycle_days), 1.0), 0.0)
        self.inventory.pool_cost[prods, wh] += up * units
        self.inventory.pool_duty[prods, wh] += per_unit_duty * units
        self.inventory.opening_stock_cost += float((up * units).sum())

    def refresh_plan(self):
        """Expected daily volume per (buyer, resource) from merchants' current choices."""
        mm, cfg = self.mm, self.config
        plan: dict[tuple[int, int], float] = {}
        plan_routes: dict[tuple[int, int], float] = {}
        orders = mm.base * cfg.demand.scale * mm.time_factor
        for row in range(mm.n):
            if mm.route[row] < 0:
                continue
            mer = self.merchants[mm.merchant[row]]
            integ = mm.integrator[row]
            buyer = mer.acct if integ < 0 else self.integrators[integ].acct
            q = orders[row]
            key = (buyer, int(mm.route[row]))
            plan_routes[key] = plan_routes.get(key, 0.0) + q
            for r in self.world.routes[mm.route[row]].resources:
                plan[(buyer, r)] = plan.get((buyer, r), 0.0) + q
            if mm.rep_route[row] >= 0:
                kg = q * float((self.prod_share[mer.products] * self.prod_weight[mer.products]).sum())
                per_consignment = max(q * cfg.merchants.order_cycle_days, 1.0)
                for r in self.world.routes[mm.rep_route[row]].resources:
                    amount = kg if self.net.res_kind[r] == TRANSPORT else q / per_consignment
                    plan[(buyer, r)] = plan.get((buyer, r), 0.0) + amount
        self.plan = plan
        self.plan_routes = plan_routes
        # the same plan as a dense array per buyer, for vectorized lookups
        R = len(self.world.resources)
        self.plan_by_buyer: dict[int, np.ndarray] = {}
        for (acct, r), v in plan.items():
            self.plan_by_buyer.setdefault(acct, np.zeros(R))[r] = v
        self.plan_dirty = False

    # ------------------------------------------------------------------------------------
    # the day
    # ------------------------------------------------------------------------------------
    def step(self):
        cfg = self.config
        day = self.steps - 1
        self.day = day
        self.date = cfg.simulation.start_date + dt.timedelta(days=day)
        self.season_ahead(0, day)          # keeps the demand calendar ahead of the clock
        self.flow.reset_counters()
        self.metrics.start_day()
        self.network_changed = self.shockboard.update(day)
        if self.network_changed:
            self.quoter.invalidate()
            self.market_version += 1
        if day % cfg.carriers.review_days == 1:     # providers reviewed their prices yesterday
            self.market_version += 1
        self.offers.new_day()
        self.claims.reset_day()
        self.tenders_today = 0
        self.breaches_today = 0
        self._settle_contracts(self.contracts.start_day(day), day)
        self.evolution.review(day)
        # today's spot prices (from yesterday's utilisation) are known before tenders run
        self.offers.update_spot(cfg.market.spot_slope, cfg.market.spot_convexity, cfg.market.spot_markup)
        if day % cfg.market.tender_interval_days == 0:
            if self.plan_dirty:
                self.refresh_plan()
            tender_round(self, day)
            self.contracts.start_day(day)
            self.quoter.invalidate()
            self.market_version += 1
        self.active_contracts = np.flatnonzero((self.contracts.status == ACTIVE) & (self.contracts.offer >= 0))
        self._scale_contracts_to_capacity()

        for cls in (Carrier, WarehouseOperator, CustomsAgent, Integrator, Merchant):
            agents = self.agents_by_type.get(cls)
            if agents:
                agents.shuffle_do("step")
        if self.plan_dirty:
            self.refresh_plan()

        self._create_orders(day)
        self.flow.advance(day)
        self.inventory.advance(day)
        peak = self.date.month >= 10
        self.inventory.bill_storage(day, peak)
        act = np.flatnonzero(self.offers.active & (self.offers.fixed_cost_day > 0))
        self.ledger.post(self.offers.acct[act], self.acct_inputs, to_cents(self.offers.fixed_cost_day[act]), "fixed_cost")
        self.claims.settle(day)
        self.evolution.observe_day()
        if day % 7 == 0:
            for it in self.integrators:
                if it.in_market:
                    self.efficiency[it.index] = measure_efficiency(self, it)
        # credit: a merchant in the red pays late; reputations forget slowly
        buyers = self.merchants + self.integrators
        uids = np.array([b.unique_id for b in buyers], dtype=np.int64)
        accts = np.array([b.acct for b in buyers], dtype=np.int64)
        self.reputation.record_payments(uids, self.ledger.balances[accts] >= 0)
        self.reputation.decay(1.0)

        self._close_day(day)

    def _scale_contracts_to_capacity(self):
        """If a provider's capacity fell below what it promised (a disruption), ration its contracts."""
        a = self.active_contracts
        if a.size == 0:
            return
        book, offers = self.contracts, self.offers
        daily = ~self.net.res_bulk[book.resource[a]]
        a = a[daily]
        promised = np.bincount(book.offer[a], weights=book.capacity[a], minlength=offers.n)
        ratio = np.divide(offers.capacity, promised, out=np.ones(offers.n), where=promised > 0)
        ratio = np.where(offers.active, np.minimum(ratio, 1.0), 0.0)
        book.remaining_today[a] = book.capacity[a] * ratio[book.offer[a]]

    def _create_orders(self, day: int):
        """Consumers order; each order ships from stock if its market has some, else as chosen."""
        cfg, mm = self.config, self.mm
        lm, lp = self.lst_mm, self.lst_product
        if lm.size == 0:
            return
        mult = self.calendar[day, mm.market[lm]]
        lam = mm.base[lm] * cfg.demand.scale * mm.time_factor[lm] * self.prod_share[lp] * mult \
            * self.shockboard.demand[mm.market[lm]]
        lam = np.where(mm.route[lm] >= 0, lam, 0.0)   # a market with no channel allowed is not served
        n = self.rng.poisson(lam).astype(np.int64)

        wh_cur = mm.warehouse[lm]
        wh = np.where(wh_cur >= 0, wh_cur, mm.prev_warehouse[lm])
        # the seasonally adjusted order level per (product, warehouse), for replenishment
        observed = np.zeros_like(self.inventory.demand_ema)
        watched = np.zeros(observed.shape, dtype=bool)
        cur = wh_cur >= 0
        np.add.at(observed, (lp[cur], wh_cur[cur]), n[cur] / mult[cur])
        watched[lp[cur], wh_cur[cur]] = True
        self.inventory.observe_demand(observed, watched)

        from_stock = np.zeros_like(n)
        ucost = np.zeros(n.size)
        uduty = np.zeros(n.size)
        has = (wh >= 0) & (n > 0)
        if has.any():
            t, c, d = self.inventory.issue(lp[has], wh[has], n[has])
            from_stock[has], ucost[has], uduty[has] = t, c, d
        rest = n - from_stock
        stockout = (wh_cur >= 0) & (rest > 0)
        lacking = int(rest[stockout].sum())
        self.metrics.stockouts_today += lacking
        self.metrics.stockouts += lacking

        groups = []
        # (a) from stock: the warehouse's order route
        sel = from_stock > 0
        if sel.any():
            # from the channel's own route (an integrator may have chosen a variant), or, when
            # selling down stock of a channel it left, the warehouse's default route
            stock_route = np.where(wh_cur[sel] == wh[sel], mm.route[lm[sel]],
                                   self._order_route_for(mm.market[lm[sel]], wh[sel]))
            groups.append(dict(rows=np.flatnonzero(sel), count=from_stock[sel], route=stock_route,
                               status=WAITING, fallback=0, upstream=ucost[sel], updu=uduty[sel], goods=False))
        # (b) direct channels as chosen
        sel = (rest > 0) & (wh_cur < 0)
        if sel.any():
            groups.append(dict(rows=np.flatnonzero(sel), count=rest[sel], route=mm.route[lm[sel]],
                               status=WAITING, fallback=0, upstream=0.0, updu=0.0, goods=True))
        # (c) stock-outs on a warehouse channel
        sel = stockout
        if sel.any():
            rows = np.flatnonzero(sel)
            if cfg.merchants.stockout_policy == "direct":
                route = self._fallback_route(lm[rows])
                groups.append(dict(rows=rows, count=rest[sel], route=route, status=WAITING, fallback=1,
                                   upstream=0.0, updu=0.0, goods=True))
            else:
                groups.append(dict(rows=rows, count=rest[sel], route=mm.route[lm[rows]], status=WAITING_STOCK,
                                   fallback=0, upstream=0.0, updu=0.0, goods=False))
        for g in groups:
            self._append_parcels(day, g)

    def _order_route_for(self, market: np.ndarray, wh: np.ndarray) -> np.ndarray:
        """The order route from a warehouse to a market (table lookup)."""
        return self.order_route_table[market, wh]

    def _fallback_route(self, rows: np.ndarray) -> np.ndarray:
        """When its warehouse is empty a merchant ships direct: as it did before it moved to the
        warehouse (while the first stock is on its way), else by express from its origin."""
        out = np.empty(rows.size, dtype=np.int64)
        for i, row in enumerate(rows):
            prev = int(self.mm.fallback_route[row])
            if prev >= 0 and self.quoter.route_open(prev):
                out[i] = prev
                continue
            mer = self.merchants[self.mm.merchant[row]]
            mkt = self.world.markets[self.mm.market[row]]
            out[i] = self.world.direct_route[(mer.origin, mkt, "express")]
        return out

    def _append_parcels(self, day: int, g: dict):
        mm, P = self.mm, self.parcels
        lrows, count = g["rows"], g["count"]
        total = int(count.sum())
        if total == 0:
            return
        rep = lambda a: np.repeat(np.broadcast_to(a, lrows.shape), count)   # noqa: E731
        row = rep(self.lst_mm[lrows])
        prod = rep(self.lst_product[lrows])
        route = rep(g["route"])
        mer_idx = mm.merchant[row]
        integ_idx = mm.integrator[row]
        mer_acct = self.merchant_accts[mer_idx]
        mer_uid = np.array([m.unique_id for m in self.merchants], dtype=np.int64)[mer_idx]
        if self.integrators:
            it_acct = np.array([it.acct for it in self.integrators] + [-1], dtype=np.int64)[integ_idx]
            it_uid = np.array([it.unique_id for it in self.integrators] + [-1], dtype=np.int64)[integ_idx]
        else:
            it_acct = np.full(total, -1, dtype=np.int64)
            it_uid = np.full(total, -1, dtype=np.int64)
        buyer = np.where(integ_idx >= 0, it_acct, mer_acct)
        value = self.prod_value[prod]
        weight = self.prod_weight[prod]
        channel = self.net.route_channel[route]
        # the promise of the channel the parcel actually takes (a stock-out shipped by express
        # is promised express times)
        promised = self.promised_days[channel]
        rows = P.append(total, created_day=day, merchant=mer_uid, merchant_idx=mer_idx, mm_row=row,
                        product=prod, category=self.prod_category[prod],
                        origin_territory=self.prod_origin_territory[prod], market=mm.market[row],
                        channel=channel, route=route, n_stages=self.net.route_n[route], stage=0,
                        status=g["status"], ready_day=day, end_day=day, buyer_acct=buyer,
                        merchant_acct=mer_acct, integrator=it_uid, integrator_idx=integ_idx,
                        value=value, weight=weight, promised_days=promised, fallback=g["fallback"],
                        stockout_wait=int(g["status"] == WAITING_STOCK),
                        upstream_cents=to_cents(rep(g["upstream"])), upstream_duty_cents=to_cents(rep(g["updu"])))
        L = self.ledger
        L.post(self.acct_consumers, mer_acct, to_cents(value), "sale")
        if g["goods"]:
            L.post(mer_acct, self.acct_suppliers, to_cents(value * self.prod_cost_share[prod]), "goods")
        via = integ_idx >= 0
        if via.any():
            price = np.zeros(total)
            key = integ_idx[via] * len(self.world.routes) + route[via]
            for k in np.unique(key):
                i, r = divmod(int(k), len(self.world.routes))
                sel = np.flatnonzero(via)[key == k]
                price[sel] = self.integrators[i].route_cost(r, weight[sel]) * (1.0 + mm.markup[row[sel]])
            cents = to_cents(price[via])
            L.post(mer_acct[via], it_acct[via], cents, "service_fee")
            P["price_cents"][rows[via]] = cents
        # cargo insurance: a 4PL insures what it carries; a merchant insures if it chose to
        insured = np.where(integ_idx >= 0, self.config.integrators.insure, mm.insured[row])
        if insured.any():
            ins = np.flatnonzero(insured)
            ic = self.config.insurance
            loading = np.where(integ_idx[ins] >= 0, ic.integrator_loading, ic.loading)
            prem = insurance_premium(value[ins], self.net.route_risk[route[ins]], loading=loading,
                                     carrier_liability_limit=self.config.carriers.liability_per_kg * weight[ins],
                                     deductible=ic.deductible, expense=ic.expense)
            cents = to_cents(prem)
            L.post(buyer[ins], self.acct_insurer, cents, "premium")
            P["insured"][rows[ins]] = 1
            P["premium_cents"][rows[ins]] = cents
            self.metrics.insured_parcels += ins.size
        self.metrics.on_created(channel, integ_idx, g["fallback"])

    def _close_day(self, day: int):
        P = self.parcels
        status = P["status"]
        done = (status == DELIVERED) | (status == LOST)
        new = done & (P["collected"] == 0)
        if new.any():
            finished = P.take(new)
            P["collected"][new] = 1
            self.metrics.on_finished(finished)
            self._learn_lead_times(finished)
            self.sink.add(finished)
        # finished rows are dropped from memory in batches, not every day
        n_done = int(done.sum())
        if n_done and n_done >= 0.2 * P.n:
            P.compact(~done)
        self.ledger.close_day(day)
        self.today = self.metrics.daily(self)
        self.datacollector.collect(self)

    def _learn_lead_times(self, fin: dict):
        """Merchants update what delivery time they see on their current choice (EMA)."""
        mm = self.mm
        ok = fin["status"] == DELIVERED
        row = fin["mm_row"][ok]
        cur = (fin["channel"][ok] == mm.channel[row]) & (fin["integrator_idx"][ok] == mm.integrator[row]) \
            & (fin["created_day"][ok] >= mm.since[row])
        row = row[cur]
        if row.size == 0:
            return
        lead = (fin["finished_day"][ok][cur] - fin["created_day"][ok][cur]).astype(np.float64)
        n = np.bincount(row, minlength=mm.n)
        s = np.bincount(row, weights=lead, minlength=mm.n)
        has = n > 0
        mean = s[has] / n[has]
        alpha = np.minimum(1.0, n[has] / np.maximum(mm.lead_n[has] + n[has], 1)) * 0.5 + 0.05
        mm.lead_ema[has] = np.where(mm.lead_n[has] == 0, mean, mm.lead_ema[has] + alpha * (mean - mm.lead_ema[has]))
        mm.lead_n[has] += n[has]

    # ------------------------------------------------------------------------------------
    def finish(self):
        """Close the parcel file (writing parcels still in flight) and return the summary."""
        P = self.parcels
        live = (P["status"] != DELIVERED) & (P["status"] != LOST)
        self.sink.close(P.take(live) if live.any() else None)
        return self.metrics.summary(self)

    @property
    def agents_summary(self):
        return SimpleNamespace(merchants=len(self.merchants), carriers=len(self.carriers),
                               warehouse_operators=len(self.operators), customs_agents=len(self.brokers),
                               integrators=len(self.integrators))
