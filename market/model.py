"""The Marketplace: a Mesa model that wires the world, the actors, the markets and the money,
and steps the day.

Where things live (see docs/ARCHITECTURE.md): the world in :mod:`market.world`, the flow of
goods in :mod:`market.goods`, money in :mod:`market.money`, procurement in
:mod:`market.procurement` (its algorithms in :mod:`market.mechanisms`), the 4PL's composition
and pricing in :mod:`market.integration`, and what each actor decides in :mod:`agents`.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import mesa
import numpy as np

from agents.carrier import Carrier
from agents.customs_agent import CustomsAgent
from agents.integrator import Integrator
from agents.merchant import Merchant
from agents.provider import TenderBidding
from agents.warehouse_operator import WarehouseOperator
from market.build import (CHINA, build_integrators, build_merchants, build_providers, open_outside_accounts,
                          size_capacity, size_storage)
from market.evolution import Evolution
from market.goods.aftersales import AfterSales
from market.goods.flows import ParcelFlow
from market.goods.inventory import Inventory
from market.goods.orders import Orders
from market.goods.parcels import DELIVERED, LOST, ParcelSink, ParcelTable
from market.goods.returns import Returns
from market.goods.tracking import Tracking
from market.integration.efficiency import measure as measure_efficiency
from market.mechanisms.reputation import ReputationBook
from market.metrics.recorder import Metrics
from market.money.claims import ClaimBook
from market.money.contracts import ACTIVE, ContractBook
from market.money.credit import MerchantCash, TradeCredit
from market.money.currency import Rates
from market.money.ledger import Ledger, to_cents
from market.money.payment import Payments
from market.procurement.offers import OfferBook
from market.procurement.planning import VolumePlan
from market.procurement.quotes import Quoter
from market.procurement.tendering import sla_days, tender_round
from market.scenario import Scenario, ScenarioError, load_scenario, short
from market.shocks import ShockBoard
from market.world import HANDLING, load_world
from market.world.customs import ClearanceTables, DutyCalculator, ExpectedDuties
from market.world.demand import DemandCalendar
from market.world.network import NetworkTables

# the order in which agents of each type act in a day (agents of one type in random order)
ACTING_ORDER = (Carrier, WarehouseOperator, CustomsAgent, Integrator, Merchant)


def check_rng(rng, name: str = "rng"):
    """The seed of a run as Mesa and numpy take it, or one clear ScenarioError naming ``name``.

    Accepted: None (fresh entropy), a non-negative integer, a sequence of them, a numpy
    SeedSequence, BitGenerator or Generator.
    """
    if rng is None or isinstance(rng, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return rng
    if isinstance(rng, np.integer) and rng >= 0:
        return int(rng)                     # Mesa seeds Python's random with it, which wants an int
    what = (f"{name} must be a non-negative integer seed, a numpy SeedSequence or Generator, or None "
            f"(got {short(rng)})")
    if isinstance(rng, (bool, np.bool_, str, bytes, float, np.floating)):
        raise ScenarioError(what)
    try:
        np.random.SeedSequence(rng)
    except (TypeError, ValueError, OverflowError):
        raise ScenarioError(what) from None
    return rng


def check_world_names(cfg: Scenario, world) -> None:
    """Scenario keys that name markets or channels must name ones the world has."""
    named = [(f"demand.peaks[{i}].markets", p.markets, world.markets) for i, p in enumerate(cfg.demand.peaks)]
    named.append(("merchants.allowed_channels", cfg.merchants.allowed_channels, world.channels))
    named.append(("merchants.export_markets", cfg.merchants.export_markets, world.markets))
    named.append(("returns.drawback_markets", cfg.returns.drawback_markets, world.markets))
    for key, names, known in named:
        for n in names:
            if n not in known:
                raise ScenarioError(f"scenario '{cfg.name}': key '{key}': unknown name {short(n)} "
                                    f"(known: {', '.join(known)})")


class Marketplace(mesa.Model):
    """A multi-agent 4PL marketplace for cross-border e-commerce logistics.

    Args:
        scenario: a built-in scenario name, a TOML file, or a :class:`Scenario`.
        rng: seed (or numpy SeedSequence / Generator) of the run's random streams.
        parcels_path: where to write finished parcels as Parquet (None: not kept).
        ledger_path: where to write the ledger's journal as Parquet as the run goes (None: kept
            in memory, ``ledger.journal()``); :meth:`finish` closes the file.
        **overrides: scenario keys to change, dotted (``**{"demand.scale": 2}``) or with
            double underscores (``demand__scale=2``), e.g. for ``mesa.batch_run``.
    """

    reference_weight = 1.0   # kg: the parcel prices are compared on

    def __init__(self, scenario: str | Path | Scenario = "baseline", rng=None, *,
                 parcels_path: str | Path | None = None, ledger_path: str | Path | None = None,
                 seed=None, **overrides):
        if rng is not None and seed is not None:
            raise ScenarioError("Marketplace: give 'rng' or 'seed' (the same thing), not both")
        rng = check_rng(seed if rng is None else rng, "rng" if seed is None else "seed")
        self.config = cfg = load_scenario(scenario, overrides)  # before Mesa draws any entropy
        super().__init__(rng=rng)
        self._summary: dict | None = None                       # set by finish()
        self._mesa_step = self.step                             # Mesa's step (events, then this class's step)
        self.step = self._step_unless_finished
        self.scenario_name = cfg.name
        self.world = load_world(cfg.world)
        check_world_names(cfg, self.world)
        self.day = 0
        self.date = cfg.simulation.start_date

        # ---- money ----
        self.rates = Rates(cfg.currency, self.world.markets, self.rng)   # exchange rates, their own stream
        self.ledger = Ledger()
        if ledger_path is not None:
            self.ledger.journal_to_file(ledger_path)
        open_outside_accounts(self)

        # ---- the world's tables ----
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
        self.demand_calendar = DemandCalendar(cfg.demand, cfg.simulation.start_date, self.world.markets,
                                              max(cfg.simulation.days, 1) + 366)

        # ---- actors ----
        self.offers = OfferBook()
        self.contracts = ContractBook()
        self.carriers: list[Carrier] = []
        self.operators: list[WarehouseOperator] = []
        self.brokers: list[CustomsAgent] = []
        self.integrators: list[Integrator] = []
        self.merchants: list[Merchant] = []
        build_providers(self)
        build_integrators(self)
        build_merchants(self)
        # goods made in China are bought in CNY, others in USD (market/money/currency.py)
        self.prod_in_cny = np.isin(self.prod_origin_territory, [self.world.territories.index(t) for t in CHINA
                                                                 if t in self.world.territories])
        # visibility and after-sales: providers' tracking coverage (one draw each), 4PLs' towers
        self.tracking = Tracking(self)
        self.aftersales = AfterSales(self)
        self.expected_duties = ExpectedDuties(self.world, self.duties, self.prod_value, self.prod_cost_share,
                                              self.prod_weight, self.prod_category, self.prod_origin_territory)
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
        self.claims = ClaimBook(cfg.claims, self.ledger, self.reputation, self.rng, self.acct_claims_handling)
        self.incumbents: dict[tuple[int, int], set[int]] = {}
        self.bidding = TenderBidding(cfg, self.offers, self.reputation, rng=self.rng)
        # trade credit: merchants and integrators buy on terms from providers (and merchants from integrators)
        self.credit = TradeCredit(cfg.credit, self.ledger, self.reputation,
                                  {b.acct: b.unique_id for b in self.merchants + self.integrators},
                                  [p.acct for p in self.carriers + self.operators + self.brokers + self.integrators])
        self.merchant_cash = (MerchantCash(self.ledger, self.merchant_accts, self.acct_capital,
                                           self.merchant_buffer_cents) if cfg.credit.enabled else None)

        # ---- engines ----
        self.parcels = ParcelTable(self.net.max_stages)
        labels = {"channel": self.world.channels, "market": self.world.markets,
                  "category": self.world.categories, "origin_territory": self.world.territories}
        self.sink = ParcelSink(parcels_path, labels, self.net.max_stages, cfg.output.parcel_chunk_rows)
        self.inventory = Inventory(self, len(self.prod_value), len(self.warehouse_nodes))
        self.quoter = Quoter(self)
        self.stage_sla = np.array([sla_days(self.net, self.clearance, r) for r in range(len(self.world.resources))])
        self.orders = Orders(self)
        self.payments = Payments(self)   # settlement delays, payment fees, exchange gains and losses
        self.flow = ParcelFlow(self)
        self.returns = Returns(self)
        self.metrics = Metrics(self.world.channels, len(self.warehouse_nodes), len(self.integrators))
        self.plan = VolumePlan()
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
        size_storage(self)               # operators keep room for the stock merchants may hold
        for mer in self.merchants:
            for row in mer.rows:
                mer.choose(int(row), initial=True)
        size_capacity(self)              # providers size their capacity to what merchants chose
        self.plan.refresh(self)
        self._ready = True

        self.today = self.metrics.daily(self)
        self.datacollector = mesa.DataCollector(
            model_reporters={k: (lambda m, k=k: m.today[k]) for k in self.today})

    # ------------------------------------------------------------------------------------
    # the day
    # ------------------------------------------------------------------------------------
    def step(self):
        """One day, stage by stage."""
        self._refuse_if_finished()             # run_for / run_until reach here through Mesa's events
        day = self._start_day()                # the date, shocks, yesterday's use
        self.breaches_today = self.contracts.settle_ended(self.contracts.start_day(day), self.ledger,
                                                          self.config.market, self.reference_weight)
        self.evolution.review(day)             # exits, entries, capacity (once a period)
        self._post_spot_prices()               # from yesterday's utilisation, before tenders
        self._run_tenders(day)                 # when a round is due: buyers tender, contracts signed
        self._ration_contracts()               # contracts share what a disruption left
        self._agents_act()                     # providers price, integrators re-route, merchants choose and restock
        self.orders.place(day)                 # consumers order; parcels are created and paid for
        self.payments.settle(day)              # sales whose settlement is due paid out at today's rate
        self.flow.advance(day)                 # parcels move through their stages under capacity
        self.inventory.advance(day)            # consignments move; stock arrives
        self.returns.advance(day)              # consumers return delivered orders; returns go back, resold or not
        self.inventory.bill_storage(day, peak=self.date.month >= 10)
        self._pay_fixed_costs()                # providers pay for the capacity they keep
        self.claims.settle(day)                # claims and disputes come due
        self.evolution.observe_day()
        self._measure_efficiency(day)          # integrators against the centralised optimum, weekly
        self._settle_credit(day)               # credit: invoices issued, paid (late), defaulted
        self._close_day(day)                   # finished parcels out, the day's figures in

    def _refuse_if_finished(self):
        if self._summary is not None:
            raise RuntimeError(f"Marketplace '{self.scenario_name}' has finished (finish() closed its "
                               "parcel file and summed it up); build a new Marketplace to run again")

    def _step_unless_finished(self):
        self._refuse_if_finished()             # before Mesa advances its clock
        self._mesa_step()

    def _start_day(self) -> int:
        cfg = self.config
        day = self.steps - 1
        self.day = day
        self.date = cfg.simulation.start_date + dt.timedelta(days=day)
        self.demand_calendar.ahead(0, day)     # keeps the demand calendar ahead of the clock
        self.flow.reset_counters()
        self.tracking.reset_day()
        self.aftersales.reset_day()
        self.metrics.start_day()
        if day > 0:
            self.rates.advance()               # today's exchange rates
        self.network_changed = self.shockboard.update(day)
        self.rates.record()
        if self.network_changed:
            self.quoter.invalidate()
            self.market_version += 1
        if day % cfg.carriers.review_days == 1:     # providers reviewed their prices yesterday
            self.market_version += 1
        self.offers.new_day()
        self.claims.reset_day()
        self.tenders_today = 0
        self.breaches_today = 0
        return day

    def _post_spot_prices(self):
        rules, carriers = self.config.market, self.config.carriers
        self.offers.update_spot(rules.spot_slope, rules.spot_convexity, rules.spot_markup,
                                carriers.utilisation_target[0], carriers.spot_smoothing_days,
                                getattr(self.flow, "queue_today", None))

    def _run_tenders(self, day: int):
        if day % self.config.market.tender_interval_days:
            return
        if self.plan.dirty:
            self.plan.refresh(self)
        tender_round(self, day)
        self.contracts.start_day(day)
        self.quoter.invalidate()
        self.market_version += 1

    def _ration_contracts(self):
        self.active_contracts = np.flatnonzero((self.contracts.status == ACTIVE) & (self.contracts.offer >= 0))
        self.contracts.ration_to_capacity(self.active_contracts, self.offers, self.net.res_bulk)

    def _agents_act(self):
        for cls in ACTING_ORDER:
            agents = self.agents_by_type.get(cls)
            if agents:
                agents.shuffle_do("step")
        if self.plan.dirty:
            self.plan.refresh(self)

    def _pay_fixed_costs(self):
        offers = self.offers
        paying = np.flatnonzero(offers.active & (offers.fixed_cost_day > 0))
        self.ledger.post(offers.acct[paying], self.acct_inputs, to_cents(offers.fixed_cost_day[paying]), "fixed_cost")

    def _measure_efficiency(self, day: int):
        if day % 7:
            return
        for it in self.integrators:
            if it.in_market:
                self.efficiency[it.index] = measure_efficiency(self, it)

    def _settle_credit(self, day: int):
        """The day's purchases become invoices on each buyer's terms; buyers pay what falls due
        from the cash they have (oldest first), late or not at all; payment records follow
        (:mod:`market.money.credit`). Reputations forget slowly."""
        self.credit.day(day)
        if self.merchant_cash is not None:
            self.merchant_cash.day()
        self.reputation.decay(1.0)

    def _close_day(self, day: int):
        parcels = self.parcels
        status = parcels["status"]
        done = (status == DELIVERED) | (status == LOST)
        new = done & (parcels["collected"] == 0)
        if new.any():
            finished = parcels.take(new)
            parcels["collected"][new] = 1
            self.aftersales.on_finished(finished, day)     # contacts and disputes, their cost
            ok = finished["status"] == DELIVERED
            self.tracking.spread.observe(finished["channel"][ok], finished["integrator_idx"][ok] + 1,
                                         (finished["finished_day"][ok] - finished["created_day"][ok]).astype(np.float64))
            self.metrics.on_finished(finished)
            self.mm.learn_lead_times(finished)
            self.sink.add(finished)
        # finished rows are dropped from memory in batches, not every day
        n_done = int(done.sum())
        if n_done and n_done >= 0.2 * parcels.n:
            parcels.compact(~done, return_dropped=False)
        self.ledger.close_day(day)
        self.today = self.metrics.daily(self)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------------------------
    # lookups and events used by agents and engines
    # ------------------------------------------------------------------------------------
    def lst_share_of(self, row: int) -> np.ndarray:
        """Order shares of a merchant's products (the same in each of its markets)."""
        return self.prod_share[self.merchants[self.mm.merchant[row]].products]

    def provider_acct_by_uid(self, uids) -> np.ndarray:
        """Ledger accounts of providers given their agent ids."""
        return self._uid_acct[np.asarray(uids, dtype=np.int64)]

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

    def provider_entered(self, provider):
        """Wire a provider that entered mid-run into the accounts, reputations, bidding and the
        integrators' catalogues."""
        uid = provider.unique_id
        if uid >= self._uid_acct.size:
            self._uid_acct = np.concatenate([self._uid_acct, np.full(uid + 1 - self._uid_acct.size, -1)])
        self._uid_acct[uid] = provider.acct
        if uid >= self.reputation.n_entities:
            self.reputation.add_entities(uid + 1 - self.reputation.n_entities)
        self.bidding.add_offers(provider.offer_ids)
        self.tracking.add_provider(provider)
        self.credit.add_creditor(provider.acct)
        for it in self.integrators:
            if it.catalogue is not None:
                it.catalogue.add_offers(provider.offer_ids)

    def integrator_left(self, integrator):
        """An integrator left the market: its merchants choose again now."""
        for mer in self.merchants:
            for row in mer.rows:
                if self.mm.integrator[row] == integrator.index:
                    mer.choose(int(row), forced=True)

    # ------------------------------------------------------------------------------------
    def finish(self) -> dict:
        """Close the parcel file (writing parcels still in flight) and return the summary.

        Called again, it returns the same summary (a fresh copy) and leaves the files as they
        are. A finished model does not step any more.
        """
        if self._summary is None:
            parcels = self.parcels
            live = (parcels["status"] != DELIVERED) & (parcels["status"] != LOST)
            self.sink.close(parcels.take(live) if live.any() else None)
            self.ledger.close_journal_file()
            self._summary = self.metrics.summary(self)
        return copy.deepcopy(self._summary)

    @property
    def finished(self) -> bool:
        """True once finish() has run."""
        return self._summary is not None

    @property
    def agents_summary(self):
        """How many agents of each kind there are."""
        return SimpleNamespace(merchants=len(self.merchants), carriers=len(self.carriers),
                               warehouse_operators=len(self.operators), customs_agents=len(self.brokers),
                               integrators=len(self.integrators))
