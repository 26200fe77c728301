"""The scenario schema: every model parameter's default, range, unit and source, in one place.

A scenario is a TOML file validated against :class:`Scenario`. The CLI (``--set``), the
Solara app's sliders and the docs' parameter tables all read this schema; nothing else lists
parameters. Built-in scenarios live in ``experiments/scenarios/``; a scenario may
``extends = "other"`` and override keys.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import reprlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from market.limits import MAX_DAYS, one_line

SCENARIO_PACKAGE = "experiments"
SCENARIO_FOLDER = "scenarios"

# the calendar a run can represent: its demand calendar reaches a year before the start and
# a few years past the end, and dates must stay inside what datetime.date holds
FIRST_START = dt.date(1900, 1, 1)
LAST_START = dt.date(2999, 12, 31)
MAX_MONEY = 1e12                 # USD: any one amount of money (ledger cents stay within int64)
NAME_CHARS = 100                 # a scenario's name becomes part of file and folder names
WORLD_SAMPLE_RATE = 50000.0      # real parcels per simulated parcel at which world.toml's capacities are stated


class ScenarioError(ValueError):
    """A scenario (or an override) is invalid; the message is one line naming the key."""


def param(default, *, description: str, source: str = "assumption", unit: str = "",
          ui: bool = False, step: float | None = None, **constraints) -> Any:
    """A scenario field with its metadata: description, unit, source, and slider hints.

    Scalars are strict (``"2"`` is not a number, ``true`` is not 1; an int is a fine float);
    lists, tuples and dates accept what TOML and a dumped scenario give them (a list for a
    tuple, an ISO string for a date) while their items stay strict.
    """
    extra = {"source": source, "unit": unit, "ui": ui}
    if step is not None:
        extra["step"] = step
    if isinstance(default, (list, tuple, dt.date)):
        constraints.setdefault("strict", False)
    return Field(default, description=description, json_schema_extra=extra, **constraints)


LAX = {"strict": False}          # a container or date field: see param()


def _technical_limit(limit: float, unit: str) -> AfterValidator:
    """A cap on a key with no meaningful upper bound: beyond it the run's arithmetic breaks
    (money is kept in int64 cents). A validator, not a bound, so the schema's ranges (the docs,
    the app's sliders, EMA's default ranges) stay those of the model."""
    def check(v: float) -> float:
        if v > limit:
            raise ValueError(f"must be at most {limit:g} {unit} (a limit of the simulator's arithmetic)")
        return v
    return AfterValidator(check)


Money = Annotated[float, _technical_limit(MAX_MONEY, "USD")]
Volume = Annotated[float, _technical_limit(1e9, "parcels a day")]


class Section(BaseModel):
    """A table of the scenario file: unknown keys are errors, and assignments are validated."""

    # strict scalars, and no NaN or infinity anywhere: a bound does not stop them (NaN compares
    # false with every bound, and fields with no upper bound took inf)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


# ------------------------------------------------------------------------------------------
class Simulation(Section):
    """The calendar: the date of day 0 and the default horizon."""

    start_date: dt.date = param(dt.date(2024, 1, 1), description="calendar date of day 0 (1900-01-01 to 2999-12-31); dated customs rules in force on each day apply")
    days: int = param(365, ge=1, le=MAX_DAYS, unit="days", description="horizon of `make run` and of `fourpl run` without --days")
    sample_rate: float = param(
        WORLD_SAMPLE_RATE, ge=1, le=1e8, unit="real parcels per simulated parcel",
        source="set so that the baseline's direct-channel parcels from China into the US and the EU together are of the order of the published 2024 volumes (CBP/CRS: 1.36 bn US de minimis entries in FY2024, 60-70% from China and Hong Kong; European Commission: 4.6 bn EU low-value parcels in 2024, 91% from China); the model's EU/US split misses the published one (experiments/examples/calibration/report.md)",
        description="how many real parcels (and merchants) one simulated parcel (merchant) stands for: summary.json reports real-world equivalents (real_world); with network.capacity_from = 'world' the world file's capacities, stated at the default rate, are scaled by default / sample_rate (with capacities sized from demand they follow the simulated merchants by themselves)")

    @field_validator("start_date")
    @classmethod
    def _representable(cls, v):
        if not FIRST_START <= v <= LAST_START:
            raise ValueError(f"must be a date from {FIRST_START} to {LAST_START}")
        return v


class Peak(Section):
    """A seasonal peak of demand: a Gaussian bump on the daily order rate around a date (or
    around Black Friday), in some markets or all."""

    name: str
    anchor: Literal["date", "black_friday"] = "date"
    date: str = Field("11-11", pattern=r"^\d{2}-\d{2}$", description="MM-DD when anchor is 'date'")
    width: float = Field(3.0, gt=0, le=60, description="standard deviation of the peak in days")
    offset: float = Field(0.0, ge=-60, le=60, description="days after the anchor at which the peak centres (negative: before)")
    amplitude: float = Field(1.0, ge=0, le=20, description="extra demand at the centre, as a multiple of normal")
    markets: list[str] = Field(default_factory=list, description="markets affected (empty: all)", **LAX)

    @field_validator("date")
    @classmethod
    def _month_day(cls, v):
        try:
            dt.date(2023, *(int(x) for x in v.split("-")))      # a date in every year (not 02-29)
        except ValueError:
            raise ValueError("must be a month and day found in every year, MM-DD (e.g. 11-11; not 02-29)") from None
        return v


class Demand(Section):
    """Consumers' orders: base rates, seasonality, and how orders answer delivery time."""

    scale: float = param(1.0, gt=0, le=200, ui=True, step=0.1, description="multiplies every merchant's base order rate")
    base_orders_per_day: float = param(35.0, gt=0, le=100000, unit="orders/day", description="mean base orders a day of one merchant in one market (lognormal across merchants)")
    size_sigma: float = param(0.8, ge=0, le=3, description="log-sd of merchant size (lognormal)")
    time_elasticity: float = param(
        0.0107, ge=0, le=1, ui=True, step=0.001, unit="1/day",
        source="Fisher, Gallino & Xu (2019) J. Marketing Research 56(2), 'The Value of Rapid Delivery in Omnichannel Retailing': each business day less delivery time raised online sales 1.5% from a baseline of 7 business days (ama.org research insight); 0.015 x 5/7 per calendar day",
        description="semi-elasticity of orders to expected delivery days: orders x exp(-e (days - reference_days))")
    reference_days: float = param(7.0, ge=0, le=60, unit="days", description="delivery time at which the base order rate holds")
    price_elasticity: float = param(
        2.0, ge=0, le=20, ui=True, step=0.1,
        source="Einav, Knoepfle, Levin & Sundaresan (2014) AER 104(1), 'Sales Taxes and Internet Commerce': item-level price elasticity about -2 to the tax-inclusive price on eBay (siepr.stanford.edu); between the short-run import demand elasticity of the 2018 tariffs, 1.3 (Amiti, Redding & Weinstein 2019), and the long-run 3.7 (Tamberi 2025, CITP WP 027)",
        description="price elasticity of a listing's orders to the consumer's landed price: orders x (price / reference price)^-elasticity")
    pass_through: float = param(
        1.0, ge=0, le=2, step=0.05,
        source="complete pass-through of tariffs to duty-inclusive prices (Fajgelbaum, Goldberg, Kennedy & Khandelwal 2020 QJE 135(1); Amiti, Redding & Weinstein 2019); Fajgelbaum & Khandelwal (2024) NBER w32607 model direct-to-consumer trade with complete pass-through of linear tariffs and fees; logistics costs assumed passed through alike",
        description="share of a change in a unit's logistics cost (against the reference cost) the merchant passes into its retail price")
    tax_pass_through: float = param(
        1.0, ge=0, le=1, step=0.05,
        source="complete pass-through of tariffs to duty-inclusive prices (Fajgelbaum, Goldberg, Kennedy & Khandelwal 2020 QJE 135(1); Amiti, Redding & Weinstein 2019)",
        description="share of a unit's duty and VAT the consumer pays on top of the listed price (the merchant remits it and absorbs the rest)")
    reference_logistics_share: float = param(
        0.25, ge=0, le=2, unit="of the retail price",
        source="ssopdot.com/blog/6557.html: logistics costs of cross-border e-commerce are 20-30% of the transaction amount (indicative)",
        description="logistics cost per unit, as a share of a product's drawn retail value, at which that value is its retail price (the reference)")
    reference_date: dt.date = param(
        dt.date(2024, 1, 1), source="the calibration year of the baseline (2024 duty rules)",
        description="date whose duty rules define the reference consumer price (a product's value plus the duty and VAT on it by express into the market on that date)")
    late_churn: float = param(
        0.17, ge=0, le=1,
        source="Voxware survey of 600 US online shoppers (Internet Retailer, 29 Nov 2012): 83% would keep buying from a retailer after one order arrived later than promised",
        description="chance a late parcel loses its buyer: orders x (1 - late_churn x (1 - on-time share))")
    spread_penalty: float = param(
        0.02, ge=0, le=1, unit="1/day",
        source="assumption: consumers answer the delivery-time uncertainty they face (a learned standard deviation of the channel's and provider's delivery time), not a tracking flag",
        description="semi-elasticity of orders to the standard deviation of delivery days consumers see for the merchant's channel and provider: orders x exp(-p x sd)")
    weekly: list[float] = param([1.08, 1.06, 1.02, 0.98, 0.94, 0.92, 1.0], description="order multipliers Monday..Sunday (normalised to mean 1)")
    peaks: list[Peak] = param(
        [Peak(name="11.11 Singles' Day", date="11-11", width=2.5, amplitude=1.6),
         Peak(name="Black Friday / Cyber Monday", anchor="black_friday", width=2.5, offset=1.5, amplitude=1.4, markets=["US", "EU", "UK"]),
         Peak(name="Christmas", date="12-25", width=6.0, offset=-12.0, amplitude=0.6, markets=["US", "EU", "UK"]),
         Peak(name="618 mid-year sale", date="06-18", width=2.5, amplitude=0.8, markets=["CN"])],
        description="seasonal peaks: Gaussian bumps on the daily rate")

    @field_validator("reference_date")
    @classmethod
    def _representable(cls, v):
        if not FIRST_START <= v <= LAST_START:
            raise ValueError(f"must be a date from {FIRST_START} to {LAST_START}")
        return v

    @field_validator("weekly")
    @classmethod
    def _seven(cls, v):
        if len(v) != 7 or min(v) <= 0:
            raise ValueError("needs 7 positive multipliers, Monday..Sunday")
        return v


class Merchants(Section):
    """Cross-border sellers: how many, what they sell where, how they choose and replenish."""

    exporters: int = param(20, ge=0, le=5000, ui=True, description="merchants in Chinese seller clusters exporting to US/EU/UK/RU")
    importers: int = param(6, ge=0, le=5000, description="foreign merchants selling into China")
    markets_per_exporter: tuple[int, int] = param((2, 4), description="range of markets an exporter sells to")
    export_markets: list[str] = param([], description="markets exporters may sell to (empty: every market outside China); e.g. a sample of the China-to-US-and-EU trade alone")
    products: tuple[int, int] = param((2, 4), description="range of products per merchant")
    cash: Money = param(250000.0, ge=0, unit="USD", description="starting cash of each merchant when credit is off (credit.enabled = false); with credit on, credit.cash_buffer_days sets it")
    review_days: int = param(28, ge=1, le=365, unit="days", description="how often a merchant reviews channel and provider per market")
    switching_cost: Money = param(1500.0, ge=0, unit="USD", ui=True, step=100, description="one-off cost of moving a market to another provider or channel (onboarding, integration)")
    diy_transaction_cost: Money = param(400.0, ge=0, unit="USD", ui=True, step=50, description="cost of running one contract yourself for a tender period (sourcing, admin)")
    diy_handoff_delay: float = param(0.204, ge=0, le=10, unit="days", ui=True, step=0.1, source="assumption (no published figure), calibrated to the published 2024 targets: experiments/examples/calibration/report.md (fourpl calibrate experiments/calibrations/baseline-2024.toml, trial 53 of 120; 0.6 before)", description="mean extra days at each hand-off between providers when a merchant coordinates them itself")
    stockout_policy: Literal["direct", "wait"] = param("direct", description="an order that finds no stock ships direct by express ('direct') or waits for replenishment ('wait')")
    service_level_z: float = param(1.65, ge=0, le=4, description="safety-stock factor of the (s, S) replenishment policy")
    order_cycle_days: float = param(21.0, gt=0, le=180, unit="days", description="days of demand between replenishment orders (S - s)")
    replenish_review_days: int = param(7, ge=1, le=60, unit="days", description="how often warehouse stock is reviewed for replenishment")
    carrying_cost_rate: float = param(0.25, ge=0, le=1, unit="1/year", source="sig.org: 20-40% of value a year", description="inventory carrying cost in the merchant's channel choice")
    allowed_channels: list[str] = param([], description="channels merchants may choose (empty: all); e.g. to compare strategies")
    reliability_weight: float = param(0.357, ge=0, le=10, source="assumption (no published figure), calibrated to the published 2024 targets: experiments/examples/calibration/report.md (fourpl calibrate experiments/calibrations/baseline-2024.toml, trial 53 of 120; 0.5 before)", description="merchants' value of a fully reliable service, as a share of their typical daily profit (mean; lognormal across merchants)")
    taste_spread: float = param(0.08, ge=0, le=2, description="spread of merchants' persistent liking of each channel, doing it themselves or through a 4PL, relative to their typical daily profit")
    choice_noise: float = param(0.03, ge=0, le=2, description="scale of the unobserved part of a merchant's choice (nested logit), relative to its typical daily profit")
    nest_dissimilarity: float = param(
        0.2, gt=0, le=1, step=0.05,
        source="assumption: integrators' services on one channel are close substitutes (1 gives the multinomial logit, with its independence-of-irrelevant-alternatives artefact)",
        description="nested logit: dissimilarity of the 4PL services of one channel (a nest per channel and 4PL; doing it yourself on a channel is its own nest)")
    market_cost: Money = param(
        600.0, ge=0, unit="USD/month",
        source="assumption: a marketplace's professional plan is USD 39.99 a month (Amazon Seller Central); listing, customer service and compliance work assumed",
        description="fixed cost of serving one market (paid every 30 days while served; weighed in entry and exit)")
    exit_after_days: int = param(56, ge=1, le=730, unit="days", description="a merchant leaves a market after its best option's expected profit (less market_cost) has been negative at its reviews for this long")
    entry_after_days: int = param(28, ge=1, le=730, unit="days", description="a merchant re-enters a market it left after its best option's expected profit (less market_cost) has been positive at its reviews for this long")


class Carriers(Section):
    """Carriers, and the price and cost rules every provider follows: markups, costs, liability."""

    markup: float = param(0.075, ge=0, le=3, ui=True, step=0.01, source="EBIT margin 7.0%, DHL Group 2024 (Kuehne+Nagel 6.7%): m / (1 + m) = 7% at mid-band utilisation", description="initial cost-plus markup of carriers on their full unit cost (variable plus fixed at mid-band utilisation)")
    markup_bounds: tuple[float, float] = param((0.02, 0.8), description="range the adaptive markup stays in")
    markup_step: float = param(0.01, ge=0, le=0.5, description="markup change per review when utilisation is off target")
    utilisation_target: tuple[float, float] = param((0.55, 0.85), description="utilisation band: below it markups fall, above it they rise")
    cost_spread: float = param(0.08, ge=0, le=0.5, description="spread of carriers' cost factors around the lane cost (uniform +/-)")
    fixed_cost_share: float = param(0.2, ge=0, le=0.9, source="motor carriers: 70-90% of costs variable (ATRI 2021, via ecampusontario.pressbooks.pub logistics001oerfc ch. 3)", description="share of a resource's unit cost (at mid-band utilisation) that is a fixed daily cost of the capacity a provider keeps for this market; the rest is paid per unit served")
    spot_smoothing_days: float = param(7.0, ge=1, le=90, unit="days", description="days over which the tightness behind posted spot prices is averaged (exponential smoothing of utilisation); it starts at the middle of the utilisation band")
    density_discount: float = param(0.25, ge=0, le=0.6, source="sheffi-2004 (economies of density), size assumed", description="largest unit-cost saving from committed volume")
    density_half_volume: Volume = param(400.0, gt=0, unit="parcels/day", description="committed volume at which half the density saving is reached")
    liability_per_kg: Money = param(29.0, ge=0, unit="USD/kg", source="Montreal Convention 22 SDR/kg", description="carrier liability limit for loss or damage")
    review_days: int = param(7, ge=1, le=90, unit="days", description="how often providers review prices")


class Warehouses(Section):
    """Warehouse operators: markup and storage space."""

    markup: float = param(0.075, ge=0, le=3, source="EBIT margin 7.0%, DHL Group 2024: m / (1 + m) = 7% at mid-band utilisation", description="initial cost-plus markup of warehouse operators")
    space_scale: float = param(1.0, gt=0, le=100, ui=True, step=0.1, description="multiplies every warehouse's storage space (sized from the stock merchants open with, or world.toml storage_units; on top of network.capacity_scale); stock plus stock on its way never exceeds it")


class CustomsAgents(Section):
    """Customs brokers: markup and filing accuracy."""

    markup: float = param(0.075, ge=0, le=3, source="EBIT margin 6.7%, Kuehne+Nagel 2024 (DHL Group 7.0%): m / (1 + m) = 7% at mid-band utilisation", description="initial cost-plus markup of customs brokers")
    accuracy: tuple[float, float] = param((0.96, 0.995), description="range of brokers' filing accuracy; an error puts a parcel on hold")


class Integrators(Section):
    """4PL integrators: how many, how they price, procure and insure, and their starting cash."""

    count: int = param(1, ge=0, le=20, ui=True, description="number of 4PL integrators")  # 20: agents.merchant.MAX_INTEGRATORS
    markup: float = param(0.0477, ge=0, le=3, ui=True, step=0.01, source="assumption (no published figure), calibrated to the published 2024 targets: experiments/examples/calibration/report.md (fourpl calibrate experiments/calibrations/baseline-2024.toml, trial 53 of 120; 0.12 before)", description="initial markup of an integrator on its expected cost")
    service_credit: float = param(0.25, ge=0, le=1, description="share of the service price an integrator refunds for a late parcel")
    pricing: Literal["cost_plus", "value_based", "adaptive"] = param(
        "cost_plus", ui=True, description="how integrators price services: cost plus their markup, a share of the merchant's saving against doing it alone, or a markup learned by a bandit from acceptances and profit")
    pricing_by_integrator: list[Literal["cost_plus", "value_based", "adaptive"]] = param(
        [], description="pricing policy of each integrator in turn (overrides 'pricing' for the first ones; to let policies compete)")
    value_share: float = param(0.5, ge=0, le=1, description="value-based pricing: share of the merchant's saving the integrator keeps")
    min_markup: float = param(0.0, ge=0, le=2, description="lowest markup an integrator quotes (value-based floor, bandit grid start)")
    max_markup: float = param(0.4, ge=0, le=3, description="highest markup on the adaptive pricing grid")
    learning_discount: float = param(0.98, gt=0, le=1, description="adaptive pricing: how much old evidence is kept at each update (forgetting for a moving market)")
    learning: Literal["logistic", "thompson"] = param(
        "logistic", description="adaptive pricing's learner: Thompson sampling on a logistic acceptance curve over the markup (every answer informs every markup), or on each markup of the grid apart (a Beta-Bernoulli bandit)")
    overhead_per_parcel: Money = param(0.2, ge=0, unit="USD/parcel", source="assumption", description="an integrator's own cost per parcel it sells (platform, customer service, claims handling), times its cost factor")
    cost_spread: float = param(0.3, ge=0, le=0.9, source="assumption", description="spread of integrators' cost factors on their overhead (uniform +/-): some run leaner than others")
    coverage: float = param(0.85, ge=0, le=1, source="assumption", description="chance an integrator serves each channel (its network); it always serves at least one")
    procurement: Literal["tender", "contract_net"] = param(
        "tender", description="how an integrator buys legs: the market's tender format per resource, or the contract net protocol per route (a lead provider subcontracts the legs it does not serve)")
    lead_margin: float = param(0.05, ge=0, le=1, description="contract net: the lead provider's margin on legs it subcontracts")
    insure: bool = param(True, description="integrators insure the parcels and stock consignments they carry (they make merchants whole on loss)")
    planning_volume: Volume = param(300.0, gt=0, unit="parcels/day", description="volume an integrator plans its first quotes on, before it has contracts")
    cash: Money = param(2000000.0, ge=0, unit="USD", description="starting cash of each integrator")


class MarketRules(Section):
    """Market rules: tender format, bidding, spot market, contract terms and scoring."""

    auction: Literal["first_price", "vickrey", "clock", "package"] = param(
        "first_price", ui=True,
        description="tender format: first-price sealed bid, second-price (Vickrey/VCG), descending clock, or package (combinatorial) bids over all of a buyer's lanes")
    bidding: Literal["equilibrium", "learning", "truthful", "cost_plus", "adaptive"] = param(
        "equilibrium", ui=True,
        description="providers' bidding in tenders. Where winners are paid their bids (first price, package, contract net): 'equilibrium' shades cost by the first-price equilibrium for the number of bidders, rivals' costs believed uniform within carriers.cost_spread of the lane's cost and the buyer's reserve; 'learning' shades by a share of the room up to the highest winning ask learned from past tenders' profits (a bandit); under Vickrey and the clock both bid cost (truthful is dominant). 'truthful' always asks cost; 'cost_plus' (the provider's list markup) and 'adaptive' (a markup raised after wins, cut after losses) ignore the format")
    spot: Literal["posted", "double_auction", "zi_double_auction"] = param(
        "posted", description="spot market: posted prices rising with utilisation, a daily call auction (uniform-price double auction) per resource, or a continuous double auction per resource with zero-intelligence traders (Gode & Sunder 1993)")
    tender_interval_days: int = param(90, ge=7, le=730, unit="days", description="days between tender rounds")
    contract_days: int = param(90, ge=7, le=730, unit="days", description="contract duration")
    contract_cover: float = param(0.886, ge=0.1, le=5, source="assumption (no published figure), calibrated to the published 2024 targets: experiments/examples/calibration/report.md (fourpl calibrate experiments/calibrations/baseline-2024.toml, trial 53 of 120; 1.15 before)", description="capacity a buyer contracts as a multiple of its forecast volume")
    min_winners: int = param(1, ge=1, le=10, description="fewest providers a tender awards (when enough bid)")
    max_winners: int = param(2, ge=1, le=10, description="most providers a tender awards")
    w_reliability: float = param(1.0, ge=0, le=20, description="weight of unreliability in a bid's score: price x (1 + w (1 - reliability) + ...)")
    w_reputation: float = param(0.5, ge=0, le=20, description="weight of a poor reputation in a bid's score")
    incumbent_discount: float = param(0.03, ge=0, le=0.5, description="score advantage of the provider that held the contract before (switching is costly)")
    reserve_premium: float = param(0.15, ge=0, le=2, source="DAT Truckload Volume Index, Dec 2024 (Logistics Management): contract van $2.42/mile against spot $2.11, 15% above spot",
                                   description="the most a buyer pays over today's best spot price for assured contract capacity: its reserve in tenders is spot x (1 + this)")
    learning_epsilon: float = param(0.1, ge=0, le=1, description="learning bidders: chance a bid tries a random shading instead of the best so far")
    credit_premium: float = param(0.1, ge=0, le=2, description="surcharge providers ask from a buyer with no credit standing (scaled by 1 - its credit score)")
    commitment_share: float = param(0.6, ge=0, le=1, description="share of contracted capacity the buyer commits to use over the contract")
    shortfall_fee_share: float = param(0.3, ge=0, le=2, description="fee on committed volume not shipped, as a share of the rate")
    sla_target: float = param(0.9, ge=0, le=1, description="on-time share of legs below which a contract counts as breached")
    late_penalty_share: float = param(0.2, ge=0, le=2, description="penalty for a late leg under contract, as a share of its rate")
    clock_decrement: float = param(0.01, gt=0, le=0.5, description="clock auction price step, as a share of the start price")
    backhaul_share: float = param(0.2, ge=0, le=0.9, source="Convoy, What you need to know about empty miles in trucking (Aug 2019): recent estimates put empty miles around 20% of truck miles (ATRI 2018: 20.7% in 2017)",
                                  description="package bids: share of a lane's unit cost that repositions the empty vehicle; a carrier serving lanes both ways between two territories (same mode) saves it on the volume matched each way")
    spot_slope: float = param(0.6, ge=0, le=10, ui=True, step=0.05, source="spot 30-60% above contract in tight markets (Scott, Parker & Craighead 2017, Transportation Science): -15% + 60% = +45%", description="rise of the posted spot price, as a share of the list (contract) price, from a slack market (utilisation at or below the low end of carriers.utilisation_target) to a full one: spot = list x (1 + spot_markup + slope x x^convexity), x = (u - low) / (1 - low) in [0, 1]")
    spot_convexity: float = param(1.0, ge=1, le=8, description="how sharply the posted spot price rises with tightness between slack and full (1: linearly)")
    spot_markup: float = param(-0.15, ge=-0.9, le=3, source="DAT, Oct 2024: spot about 15% below contract in a soft market", description="posted spot price against the list (contract) price in a slack market (negative: below)")
    spot_urgency: float = param(0.15, ge=0, le=5, description="double-auction spot: how much more a waiting parcel's buyer bids per day waited")


class Claims(Section):
    """Loss and damage claims: settlement times, disputes and their cost."""

    processing_days: tuple[float, float, float] = param((7.0, 14.0, 30.0), unit="days", description="time to settle an undisputed claim [min, mode, max]")
    dispute_rate: float = param(0.08, ge=0, le=1, description="chance a carrier disputes a claim (times the multipliers below)")
    diy_dispute_multiplier: float = param(2.0, ge=0, le=10, description="disputes are this much likelier when a merchant files itself rather than through a 4PL")
    dispute_days: tuple[float, float, float] = param((30.0, 60.0, 120.0), unit="days", description="extra time a disputed claim takes [min, mode, max]")
    dispute_cost: Money = param(150.0, ge=0, unit="USD", description="cost to each side of handling a dispute")
    dispute_recovery: tuple[float, float] = param((0.3, 1.0), description="range of the share of a disputed claim finally paid")
    proof_speedup: float = param(0.5, ge=0, le=1, source="assumption: tracking logs are the evidence a claim needs (https://helpcenter.withreach.com/processing-disputes-evidence lists tracking logs and proof of delivery)", description="share of the processing time a claim saves when the claimant has tracking proof of the hand-over")
    proof_dispute_factor: float = param(0.5, ge=0, le=1, source="assumption", description="a claim with tracking proof is disputed this much as often")


class Insurance(Section):
    """Cargo insurance: premium loading and expense, deductible, merchants' risk aversion."""

    loading: float = param(0.3, ge=0, le=5, description="insurer's loading on the expected loss (premium = expected loss x (1 + loading) + expense)")
    expense: Money = param(0.05, ge=0, unit="USD", description="insurer's expense per insured parcel")
    deductible: Money = param(0.0, ge=0, unit="USD", description="loss the insured keeps per parcel")
    risk_aversion: tuple[float, float] = param((0.5, 3.0), description="range of merchants' weight on an uninsured loss: they insure when expected loss x weight exceeds the premium")
    integrator_loading: float = param(0.15, ge=0, le=5, description="loading a 4PL gets on its pooled cover")


class Evolution(Section):
    """Market evolution: exit after sustained losses, entry where expected margins beat a hurdle,
    capacity after demand."""

    enabled: bool = param(True, description="providers and integrators exit, enter and adjust capacity over time")
    period_days: int = param(30, ge=7, le=365, unit="days", description="how often profits are reviewed for exit and entry")
    exit_after: int = param(6, ge=1, le=60, description="periods of losses in a row after which an integrator exits (providers: exit_window and loss_tolerance)")
    exit_window: tuple[int, int] = param((2, 6), description="range of the number of review periods over which a provider sums its profit to decide whether to leave (one draw per provider: none leaves before its window has passed, and exits spread over time)")
    loss_tolerance: tuple[float, float] = param((0.25, 1.0), description="range of the loss a provider bears over its exit window before it leaves, as a share of its fixed cost of capacity over the window (one draw per provider; an idle provider loses about all of it)")
    entry_hurdle: tuple[float, float] = param((0.07, 0.14), source="EBIT margins 2024: DHL Group 7.0%, Kuehne+Nagel 6.7%, express 11-14% (annual reports)", description="range of the operating margin a newcomer must expect before entering a group: the group's margin over the last period once the newcomer's fixed cost is added (one draw per group and period)")
    capacity_review_days: int = param(1, ge=1, le=365, unit="days", description="how often providers move their capacity towards their demand (utilisation plus queues): they add capacity where parcels queue (not on a resource a disruption has cut) and shed it where even the recent peak of demand stays below the band")
    capacity_step: float = param(0.5, ge=0, le=1, description="share of the gap to mid-band utilisation a provider's capacity closes at a capacity review when parcels queued and demand ran above the band (half as much when even its recent peak stayed below; never below the spare capacity it sells from networks that serve others)")
    capacity_memory_days: float = param(21.0, gt=0, le=730, unit="days", description="half-life of the recent peak of demand providers keep capacity for (bursts such as stock-out fallbacks and the peak season are not shed the week they end)")
    max_entrants: int = param(1, ge=0, le=20, description="most new providers per group per period")


class Credit(Section):
    """Trade credit: payment terms, credit limits, late payment, default, and merchants' cash."""

    enabled: bool = param(True, description="sellers invoice logistics on terms (receivables, late payment, bad debt); off: buyers pay at the moment of service and merchants start with merchants.cash")
    terms_days: int = param(30, ge=0, le=180, unit="days",
        source="net 30 is the standard payment term across most freight contracts (routiqo.io/payment-terms; onupkeep.com: 'the most common net payment term for freight companies is net 30 days')",
        description="days from invoice to due date")
    grace_days: int = param(60, ge=1, le=365, unit="days",
        source="EU Late Payment Directive 2011/7/EU: businesses pay within at most 60 days unless expressly agreed; assumption: an invoice still unpaid that long after its due date is written off",
        description="days after its due date an unpaid invoice defaults (written off as bad debt)")
    late_interest: float = param(0.125, ge=0, le=1, unit="1/year",
        source="EU Late Payment Directive 2011/7/EU: statutory interest at least 8 points above the ECB reference rate (4.5% in the first half of 2024): 12.5% a year",
        description="interest a buyer pays on an invoice paid late, a year, per day late")
    limit: Money = param(50000.0, ge=0, unit="USD", description="most a buyer with a perfect payment score may owe in all (scaled by its score)")
    prepay_below: float = param(0.35, ge=0, le=1, description="payment score below which sellers want prepayment (no invoices); buyers start at 0.5")
    refuse_below: float = param(0.2, ge=0, le=1, description="payment score below which providers do not bid in the buyer's tenders (it buys at spot, prepaid)")
    cash_buffer_days: float = param(27.0, ge=0, le=3650, unit="days",
        source="JPMorgan Chase Institute (2016), 'Cash is King: Flows, Balances, and Buffer Days' (597,000 US small businesses): the median small business holds cash for 27 days of outflows",
        description="median merchant's starting cash, in days of its expected sales")
    cash_buffer_sigma: float = param(1.0, ge=0, le=3,
        source="assumption: wide spread, as JPMorgan Chase Institute (2019, 25 metro areas) reports half of small businesses under 15 buffer days and only 40% above three weeks",
        description="spread (lognormal sigma) of merchants' cash buffer days")


CURRENCIES = ("USD", "EUR", "GBP", "RUB", "CNY")   # the reporting currency (the ledger's) first
FX_SOURCE = ("federalreserve.gov/Releases/G5 (Fed G.5, release of 1 July 2024: June 2024 averages, "
             "USD per EUR 1.0763, per GBP 1.2716; CNY 7.2547 per USD)")


def _per_currency(v: dict, what: str, positive: bool = True) -> dict:
    bad = sorted(set(v) - set(CURRENCIES))
    if bad:
        raise ValueError(f"unknown currency {short(bad[0])} (known: {', '.join(CURRENCIES)})")
    missing = [c for c in CURRENCIES if c not in v]
    if missing:
        raise ValueError(f"{what} needs every currency; missing {', '.join(missing)}")
    for c, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                or (x <= 0 if positive else x < 0) or x > 1e6:
            raise ValueError(f"{what} of {c} must be a {'positive' if positive else 'non-negative'} finite number "
                             f"(got {short(x)})")
    return {c: float(v[c]) for c in CURRENCIES}


class Currency(Section):
    """Currencies and exchange rates: each market sells in its own currency, merchants buy goods
    in CNY and freight in USD, and the ledger keeps USD (the reporting currency) at the day's
    rates. Rates follow a mean-reverting log process per currency against the USD."""

    enabled: bool = param(True, description="markets sell in their own currencies at daily stochastic exchange rates, goods are bought in CNY, and payments settle after a delay with exchange gains and losses; off: every price in USD and sales paid at once")
    market_currency: dict[str, str] = param(
        {"US": "USD", "EU": "EUR", "UK": "GBP", "RU": "RUB", "CN": "CNY"}, **LAX,
        source="each market's legal tender (the EU market stands for the euro area)", description="the currency each market sells in (a market not listed sells in USD)")
    start_per_usd: dict[str, float] = param(
        {"USD": 1.0, "EUR": 1 / 1.0763, "GBP": 1 / 1.2716, "RUB": 89.0, "CNY": 7.2547}, **LAX, unit="units per USD",
        source=f"{FX_SOURCE}; RUB: assumption, about 89 per USD in mid-2024 (the Fed and the ECB stopped publishing a rouble rate in 2022)",
        description="exchange rates on the first day, in units of each currency per US dollar")
    volatility: dict[str, float] = param(
        {"USD": 0.0, "EUR": 0.076, "GBP": 0.085, "RUB": 0.15, "CNY": 0.045}, **LAX, unit="1/sqrt(year)",
        source="annualised s.d. of daily log changes against the USD. EUR 7.6%: Commerzbank, historical 3-month EUR/USD volatility over 2015-2025 (fxstreet.com/news/usd-still-feeling-the-heat-commerzbank-202506271105); GBP 8.5%: GBP/USD 1-month volatility 8-9.4% in 2020-2022 (fxstreet.com/news/gbp-volatility-gauge-hits-highest-since-june-15-202009090339, fxstreet.com/news/gbp-usd-to-test-the-12350-level-next-week-ing-202206100730); RUB 15%: 3-month rouble volatility 14.2% at a two-year low in 2016, 11.9-25.9% in 2018-2020 (Bloomberg, via freenews-en.tk/2016/09/26, bloomberg.com/news/articles/2018-04-09, oreanda-news.com article1308959); CNY 4.5%: one-month yuan implied volatility 2.3-5.8% in 2017-2024 (bloomberg.com/news/articles/2017-10-10, Bloomberg via binance.bh square post 32010319595809)",
        description="annual volatility of each currency's value against the USD (USD itself: 0)")
    volatility_scale: float = param(1.0, ge=0, le=10, ui=True, step=0.25, source="1: the cited volatilities; a knob for experiments", description="multiplies every currency's volatility (0: rates stay at their starting values unless a shock moves them)")
    mean_reversion: float = param(
        0.17, ge=0, le=50, unit="1/year",
        source="Rogoff (1996) J. Economic Literature 34(2), 'The Purchasing Power Parity Puzzle': deviations of real exchange rates die out with a half-life of 3-5 years; ln 2 / 4 years",
        description="speed at which a currency's log value reverts to its level (its start, moved by any currency shock in force): 0 gives a geometric Brownian motion")
    price_pass_through: float = param(
        0.6, ge=0, le=1, step=0.05,
        source="assumption between the long-run pass-through of exchange rates into US import prices invoiced in dollars (0.25) and in other currencies (0.95) (Gopinath, Itskhoki & Rigobon 2010, AER 100(1), 'Currency Choice and Exchange Rate Pass-Through'); merchants reprice at their reviews, so it comes with a lag",
        description="share of a change in the market currency's value merchants pass into its retail prices (in log terms) when they reprice: a 10% devaluation raises local prices by about this x 10%")

    @field_validator("start_per_usd")
    @classmethod
    def _start(cls, v):
        v = _per_currency(v, "currency.start_per_usd")
        if v["USD"] != 1.0:
            raise ValueError("currency.start_per_usd of USD (the reporting currency) must be 1")
        return v

    @field_validator("volatility")
    @classmethod
    def _vol(cls, v):
        v = _per_currency(v, "currency.volatility", positive=False)
        if v["USD"] != 0.0:
            raise ValueError("currency.volatility of USD (the reporting currency) must be 0")
        if max(v.values()) > 2:
            raise ValueError("currency.volatility must be at most 2 a year")
        return v

    @field_validator("market_currency")
    @classmethod
    def _markets(cls, v):
        for m, c in v.items():
            if c not in CURRENCIES:
                raise ValueError(f"market {short(m)}: unknown currency {short(c)} (known: {', '.join(CURRENCIES)})")
        return v


class Payment(Section):
    """Payment: cross-border payment fees and settlement delays by channel kind (marketplace
    payouts for stock sold from warehouses, payment service providers for direct shipping),
    and merchants' hedging of what is in settlement."""

    enabled: bool = param(True, description="sales reach merchants after their channel's settlement delay, less a payment fee (exchange gains and losses booked at settlement); off: paid at once, no fee")
    direct_fee: float = param(
        0.044, ge=0, le=0.5,
        source="PayPal commercial transactions 3.49% + fixed fee, plus 1.5% for international transactions (airwallex.com/us/blog/how-much-does-paypal-business-charge-for-international-payments; tipalti.com/resources/learn/paypal-international-transaction-fees); assumption: China sellers' independent stores pay about 4.4% in all through PayPal or card PSPs, net of volume discounts",
        description="payment fee on a direct channel's sale (independent store or platform paid through a payment service provider), as a share of what the consumer paid")
    direct_settlement_days: int = param(
        3, ge=0, le=120, unit="days",
        source="assumption: PSP balances are available within days of the sale and withdrawn to a China account in 1-3 business days (payoneer.com/solutions/marketplaces-networks/amazon-payments: 2-3 days to the bank)",
        description="days from a direct channel's sale to the money reaching the merchant")
    warehouse_fee: float = param(
        0.01, ge=0, le=0.5,
        source="third-party collection services (Payoneer, WorldFirst, LianLian, PingPong) for China sellers' marketplace payouts, against about 3.5% for a marketplace's own currency conversion (ssopdot.com/?p=19729; ssopdot.com/blog/33349.html); 1% is an assumption at the top of their published range",
        description="payment fee on a warehouse channel's sale (marketplace payout collected through a payment service provider), as a share of what the consumer paid")
    warehouse_settlement_days: int = param(
        14, ge=0, le=120, unit="days",
        source="Amazon settles a seller's account every 14 days and funds reach the bank 3-5 business days later (amazonsellersupportblog.com/2011/11/getting-paid-how-it-works-.html); a sale waits on average half a cycle plus the transfer plus the reserve after delivery: about 14 days",
        description="days from a warehouse channel's sale to the money reaching the merchant")
    hedge: bool = param(False, ui=True, source="assumption: most small cross-border sellers leave their currency exposure open (a switch for experiments)", description="merchants sell forward the hedged share of each day's sales in a foreign currency at the day's rate, for the settlement date")
    hedge_share: float = param(0.8, ge=0, le=1, source="assumption: a hedger covers most, not all, of its receivables, as what settles is uncertain (refunds, chargebacks)", description="share of each day's sales a hedging merchant sells forward")
    hedge_cost: float = param(
        0.002, ge=0, le=0.1,
        source="assumption: a bank's spread on a short forward for a small exporter, about 0.2% of the notional (interest differentials are not modelled: forwards are struck at the day's spot rate)",
        description="cost of a forward, as a share of the amount hedged")


class Network(Section):
    """The network's capacity: sized to the market on day 0, and scaled as a whole."""

    capacity_from: Literal["demand", "world"] = param(
        "demand", description="providers' day-0 capacity: sized from the volume merchants' first choices imply (their expected orders over the run's season, stock-out fallbacks, replenishment) at the middle of carriers.utilisation_target, so it follows any scenario's scale; or the fixed capacities of the world file")
    capacity_scale: float = param(1.0, gt=0, le=500, ui=True, step=0.1, description="multiplies every lane's, warehouse's and broker's capacity (after sizing)")
    fallback_share: float = param(0.05, ge=0, le=1, description="share of a warehouse channel's orders for which capacity is planned on its stock-out fallback route (shipped direct by express when the shelf is empty); about 2.6% of warehouse orders stocked out in the 2024 baseline")
    spare_share: float = param(0.0654, gt=0, le=2, source="assumption (no published figure), calibrated to the published 2024 targets: experiments/examples/calibration/report.md (fourpl calibrate experiments/calibrations/baseline-2024.toml, trial 53 of 120; 0.1 before)", description="spare capacity every lane, warehouse and customs point sells this market from networks that serve other markets, as a share of its planned capacity (for a resource nobody plans to use, of the median planned capacity of resources of its kind); it carries no fixed cost here, is never shed, and is all a resource nobody plans to use keeps")


class Tracking(Section):
    """Visibility (market/goods/tracking.py): which tracking events each provider records, how
    soon the buyer of the legs (a merchant, or its 4PL) sees them, and what a 4PL's control
    tower adds. Only a delay or hold that is seen before the leg ends can be acted on."""

    coverage_postal: float = param(0.55, ge=0, le=1, source="https://hongocean.com/how-do-i-track-a-china-post-package: economical China Post small packets are often tracked only within China and stop updating once they leave it; 0.55 assumed", description="chance a postal carrier (carrier groups named *post*) records a leg's tracking event")
    coverage_express: float = param(0.98, ge=0, le=1, source="assumption: integrated express carriers scan at every hand-off", description="chance an express or dedicated-line carrier records a leg's tracking event")
    coverage_freight: float = param(0.85, ge=0, le=1, source="assumption: line haul, sea, rail and trucking report milestones, not every scan", description="chance another carrier (trucking, sea, rail, drayage) records a leg's tracking event")
    coverage_warehouse: float = param(0.95, ge=0, le=1, source="assumption: warehouse management systems scan inbound and outbound", description="chance a warehouse operator records a leg's event (pick, pack, hand-off)")
    coverage_customs: float = param(0.9, ge=0, le=1, source="assumption: electronic release messages where brokers file electronically", description="chance a customs broker records the customs release (or hold)")
    provider_spread: float = param(0.1, ge=0, le=0.5, source="assumption", description="spread of providers' coverage around their kind's (uniform +/- this share), drawn per provider")
    coverage_scale: float = param(1.0, ge=0, le=1, ui=True, step=0.05, source="assumption (a what-if switch: 0 is no tracking at all)", description="multiplies every provider's coverage")
    latency_postal: float = param(2.0, ge=0, le=30, unit="days", source="assumption: postal scans reach portals in batches", description="mean days (Poisson) until a buyer without a control tower sees a postal carrier's event")
    latency_other: float = param(0.5, ge=0, le=30, unit="days", source="assumption", description="mean days (Poisson) until a buyer without a control tower sees another provider's event")
    portal_capture: float = param(0.5, ge=0, le=1, source="assumption: a merchant reading carriers' portals and e-mails misses much of what they record", description="share of recorded events a merchant doing it itself sees")
    fourpl_capture: float = param(0.8, ge=0, le=1, source="assumption: a 4PL's transport management system takes its contracted providers' status feeds (EDI, API), with gaps", description="share of recorded events a 4PL without a control tower sees (0: a 4PL with no visibility at all)")
    control_tower: Literal["decide", "always", "never"] = param("decide", ui=True, description="whether 4PLs run a control tower (every recorded event seen the same day): each decides by its expected saving against its cost ('decide'), all do, or none does")
    tower_by_integrator: list[Literal["decide", "always", "never"]] = param([], description="control tower rule of each integrator in turn (overrides control_tower for the first ones; to let 4PLs with and without one compete)")
    tower_cost: Money = param(10.0, ge=0, unit="USD/day", source="assumption: a visibility platform subscription for a small 4PL, about USD 300 a month", description="a control tower's cost a day")
    integration_cost: Money = param(0.5, ge=0, unit="USD/day per provider", source="assumption: maintaining an API or EDI feed with one provider", description="a control tower's cost a day of each provider the 4PL holds a contract with")
    tower_review_days: int = param(28, ge=1, le=365, unit="days", description="how often a 4PL reviews whether its control tower pays")
    eta_relief: float = param(0.5, ge=0, le=1, source="assumption: a consumer who can follow the parcel knows of a delay as it happens, so part of the uncertainty about the delivery day goes", description="share of the delivery-time spread consumers no longer face when they see every leg's event (pro rata to the share of legs seen for the channel and provider)")
    expedite_share: float = param(0.5, ge=0, le=1, source="assumption: re-booking, priority handling or a broker correcting a filing recovers about half of what is left of a delay", description="share of the remaining delay (transport delay, inspection, customs hold) a 4PL recovers when it sees the delay before the leg ends")
    expedite_cost: Money = param(2.0, ge=0, unit="USD/parcel", source="assumption", description="what a 4PL pays the leg's provider to expedite one delayed parcel")


class AfterSales(Section):
    """After-sales contacts and consumer disputes (market/goods/aftersales.py): "where is my
    order" (WISMO) contacts rise with lateness and fall with the tracking consumers see; loss
    and damage contacts; payment disputes, lost without proof of delivery."""

    wismo_rate: float = param(0.25, ge=0, le=5, unit="contacts/parcel", source="https://helmwms.com/glossary/wismo-(where-is-my-order): a retailer without proactive tracking updates sees a 25% WISMO rate per order and cut WISMO by 70% with proactive communication", description="WISMO contacts per parcel delivered on time with no tracking seen")
    tracking_reduction: float = param(0.7, ge=0, le=1, source="https://helmwms.com/glossary/wismo-(where-is-my-order): a retailer without proactive tracking updates sees a 25% WISMO rate per order and cut WISMO by 70% with proactive communication", description="share of the on-time WISMO contacts tracking avoids when every leg's event is seen (pro rata to the share seen)")
    wismo_per_late_day: float = param(0.1, ge=0, le=5, unit="contacts/day", source="assumption: late parcels drive WISMO (https://ignyteiq.com/glossary/wismo/: it moves first when something upstream breaks)", description="extra WISMO contacts per day a parcel is late")
    warn_reduction: float = param(0.5, ge=0, le=1, source="assumption: a proactive delay notice pre-empts contacts (https://www.getconvey.com/blog/wismo-avoid-customer-service-calls/)", description="share of the lateness contacts avoided when the buyer saw the delay and warned the consumer")
    damage_contacts: float = param(1.5, ge=0, le=10, unit="contacts/parcel", source="assumption", description="contacts per lost or damaged parcel")
    contact_cost: Money = param(5.0, ge=0, unit="USD/contact", source="https://www.getconvey.com/blog/wismo-avoid-customer-service-calls/: WISMO calls cost about USD 5 each to resolve (BenchmarkPortal: USD 4-7, https://www.eteria.biz/en/cose-wismo-where-is-my-order/)", description="cost of handling one after-sales contact, paid by the parcel's logistics buyer (the 4PL, or the merchant doing it itself)")
    dispute_rate_late: float = param(0.03, ge=0, le=1, source="assumption", description="chance a late parcel's consumer opens a payment dispute (item not received)")
    dispute_rate_hit: float = param(0.1, ge=0, le=1, source="assumption", description="chance a lost or damaged parcel's consumer opens a payment dispute")
    dispute_fee: Money = param(20.0, ge=0, unit="USD/dispute", source="https://help.solo.co/en/articles/6577365-chargeback-received: a USD 20 fee for every chargeback", description="fee the merchant pays per payment dispute")


class Output(Section):
    """What the run writes and how (parcel file chunks)."""

    parcel_chunk_rows: int = param(200000, ge=1000, le=10_000_000, description="finished parcels written per Parquet chunk (bounds memory)")


RETURN_RATE_SOURCE = ("getattribute.com/blog/return-rates-by-product-category (apparel 20-30%, electronics 8-12%, "
                      "home 10-15%, beauty 5-10%); bestforecommerce.com/ecommerce-statistics/delivery-returns/"
                      "return-rate-benchmarks (apparel 30-40%, electronics 8-15%, home 5-10%, beauty 5-12%)")


class Returns(Section):
    """Consumers' returns of delivered orders and what merchants do with the goods
    (market/goods/returns.py): each delivered, intact order is returned with its category's
    rate (higher when it arrived after the promise), within a window; the merchant refunds the
    consumer, pays the return freight, and resells it from its warehouse in the market,
    liquidates it, scraps it locally or ships it back to its origin, whichever recovers most."""

    enabled: bool = param(True, ui=True, description="consumers return delivered orders (off: every delivered order is kept)")
    rate_electronics: float = param(0.10, ge=0, le=1, unit="share of delivered orders", source=RETURN_RATE_SOURCE, description="return rate of electronics delivered on time")
    rate_apparel: float = param(0.25, ge=0, le=1, ui=True, step=0.01, unit="share of delivered orders", source=RETURN_RATE_SOURCE + "; footwear 25-35%", description="return rate of apparel (and footwear) delivered on time")
    rate_cosmetics: float = param(0.07, ge=0, le=1, unit="share of delivered orders", source=RETURN_RATE_SOURCE, description="return rate of cosmetics delivered on time")
    rate_home: float = param(0.10, ge=0, le=1, unit="share of delivered orders", source=RETURN_RATE_SOURCE, description="return rate of home goods delivered on time")
    rate_toys: float = param(0.08, ge=0, le=1, unit="share of delivered orders", source="assumption: toys sit with general merchandise (10-20%, bestforecommerce.com) less gifts kept; set a little below electronics", description="return rate of toys delivered on time")
    rate_other: float = param(0.10, ge=0, le=1, unit="share of delivered orders", source="assumption: the general-merchandise low end (bestforecommerce.com: 10-20%)", description="return rate of any other category of the world file")
    late_uplift: float = param(0.5, ge=0, le=10, ui=True, step=0.1, source="assumption, informed by ecommercebytes.com/2020/12/13/survey-finds-delivery-delays-lead-to-returns (33% of those who returned a gift before giving it said it took too long to arrive)", description="an order delivered after its promise is returned this much more often (rate x (1 + uplift))")
    window_days: int = param(30, ge=15, le=365, unit="days", source="assumption: the common 30-day return policy of marketplaces", description="days after delivery within which a consumer may return an order")
    lag_shares: tuple[float, float, float] = param((0.32, 0.44, 0.24), source="ecommercebytes.com/2020/12/13/survey-finds-delivery-delays-lead-to-returns: 24% return within a week, 33% in 1-2 weeks, 18% in 2 weeks to a month (normalised)", description="shares of returns opened in the first week, the second week, and the rest of the window after delivery")
    local_freight_parcel: Money = param(6.0, ge=0, unit="USD/return", source="assumption: a prepaid domestic return label (USPS Ground Advantage, Royal Mail, DHL Parcel: about USD 4-9)", description="return freight from the consumer to a return point in the market, per parcel (the merchant pays: free returns)")
    local_freight_kg: Money = param(0.5, ge=0, unit="USD/kg", source="assumption", description="... and per kg")
    local_days: tuple[float, float, float] = param((2.0, 4.0, 7.0), unit="days", source="assumption: drop-off, domestic parcel transit, receiving", description="days from the consumer to the return point in the market [min, mode, max]")
    restocking_cost: Money = param(3.0, ge=0, unit="USD/unit", source="assumption: inspection, cleaning, repacking and relabelling at the warehouse", description="cost of refurbishing and restocking one returned unit for resale")
    resale_share: float = param(0.7, ge=0, le=1, source="news.wpcarey.asu.edu/20180216-what-stores-do-90-billion-merchandise-returns (D. Rogers: a restocked return might sell at a 30% discount)", description="share of the retail price a refurbished return sells for in the market")
    liquidation_share: float = param(0.1, ge=0, le=1, source="assumption: liquidators buy returns 'for pennies on the dollar' (1280ksli.com/after-christmas-refunds-increases-again); 5-20% of retail", description="share of the retail price a liquidator pays for a returned unit")
    scrap_cost: Money = param(0.5, ge=0, unit="USD/unit", source="assumption: a returnless refund (the consumer keeps or discards the item) or local disposal", description="cost of scrapping a returned unit locally (no return freight)")
    ship_back_parcel: Money = param(8.0, ge=0, unit="USD/return", source="assumption: consolidated reverse cross-border freight with export and import entries", description="freight and customs entries to ship a returned unit back across the border (to the origin, or to a warehouse outside the market), per parcel")
    ship_back_kg: Money = param(5.0, ge=0, unit="USD/kg", source="assumption: consolidated air, about half the outbound express rate", description="... and per kg")
    ship_back_days: tuple[float, float, float] = param((15.0, 25.0, 45.0), unit="days", source="assumption: consolidation, line haul, export and import clearance", description="days to ship a return back across the border [min, mode, max]")
    origin_recovery: float = param(0.6, ge=0, le=2, source="assumption: returned to the supplier or sold in the origin's domestic market", description="share of its goods cost a unit shipped back to its origin recovers")
    drawback_share: float = param(0.99, ge=0, le=1, source="19 U.S.C. 1313(j) unused merchandise drawback: 99% of duties, taxes and fees; EU UCC art. 118 and UK rejected-imports relief repay duty on goods re-exported as not conforming to the contract", description="share of the import duty and VAT a unit paid that is refunded when it is shipped back out of a market that grants drawback")
    drawback_markets: list[str] = param(["US", "EU", "UK"], source="US: 19 U.S.C. 1313(j); EU: Union Customs Code art. 118; UK: rejected imports relief. Russia and China not modelled (assumption: no drawback)", description="markets whose customs refund duty and VAT on a return shipped back out")

    @model_validator(mode="after")
    def _check(self):
        a, b, c = self.lag_shares
        if min(a, b, c) < 0 or not math.isclose(a + b + c, 1.0, abs_tol=1e-6):
            raise ValueError("returns.lag_shares must be three non-negative shares summing to 1")
        for key in ("local_days", "ship_back_days"):
            lo, mode, hi = getattr(self, key)
            if not 0 <= lo <= mode <= hi <= 365:
                raise ValueError(f"returns.{key} must be [min, mode, max] with 0 <= min <= mode <= max <= 365")
        return self

    def rate_of(self, category: str) -> float:
        """The on-time return rate of a category of the world file."""
        return getattr(self, f"rate_{category}", self.rate_other)


SHOCK_KINDS = ("capacity", "transit", "risk", "clearance", "inspection", "cost", "demand", "duty_rule", "channels",
               "currency")


class Shock(Section):
    """A scheduled change to the world: what changes, where, from when, for how long.

    kind:
      capacity   - multiply the capacity of the selected lanes / warehouses / customs points
                   by ``factor`` (0 closes them: a border closure, a strike); with
                   ``recovery_days``, after it ends the capacity comes back in equal daily
                   steps over that many days, as carriers restore it
      transit    - multiply the transit times of the selected lanes by ``factor`` (congestion)
      risk       - multiply the loss and damage probabilities of the selected lanes by ``factor``
                   (theft, a storm season, rough handling at a hub)
      clearance  - multiply clearance times in the selected territories (and regimes)
      inspection - multiply inspection rates in the selected territories (and regimes)
      cost       - multiply providers' unit costs on the selected resources (a fuel shock)
      demand     - multiply orders in the selected markets
      duty_rule  - change the duty rule in force in the selected territories: ``rule`` holds
                   the fields that change (e.g. de_minimis = 0.0)
      channels   - only the listed ``channels`` may be chosen (merchants re-choose at once)
      currency   - multiply the value against the USD of the listed ``currencies`` by ``factor``
                   (0.7: a 30% devaluation); the rate then moves around its new level
    Selectors (all that are given must match): lanes (ids, shell patterns allowed), modes,
    nodes (lanes from/to, warehouses and customs points at them), territories, markets,
    regimes. Either ``start`` (a date) or ``day`` (days from the start) says when.
    """

    name: str
    kind: Literal[SHOCK_KINDS]
    start: dt.date | None = Field(None, description="first day it applies (a date)", **LAX)
    day: int | None = Field(None, ge=0, le=MAX_DAYS, description="first day it applies (days after the start)")
    days: int | None = Field(None, ge=1, description="how long it lasts (omit: to the end)")
    factor: float = Field(1.0, ge=0, le=100)
    recovery_days: int | None = Field(None, ge=1, le=MAX_DAYS, description="capacity shocks: days over which capacity comes back after it ends (omit: at once)")
    lanes: list[str] = Field(default_factory=list, **LAX)
    modes: list[str] = Field(default_factory=list, **LAX)
    nodes: list[str] = Field(default_factory=list, **LAX)
    territories: list[str] = Field(default_factory=list, **LAX)
    markets: list[str] = Field(default_factory=list, **LAX)
    regimes: list[str] = Field(default_factory=list, **LAX)
    channels: list[str] = Field(default_factory=list, **LAX)
    currencies: list[str] = Field(default_factory=list, **LAX)
    rule: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rule")
    @classmethod
    def _finite(cls, v):
        def bad(x):
            if isinstance(x, float):
                return not math.isfinite(x)
            if isinstance(x, dict):
                return any(bad(y) for y in x.values())
            if isinstance(x, (list, tuple)):
                return any(bad(y) for y in x)
            return False
        if bad(v):
            raise ValueError("a duty rule holds finite numbers only (no inf or nan)")
        return v

    @model_validator(mode="after")
    def _when(self):
        if (self.start is None) == (self.day is None):
            raise ValueError(f"shock '{self.name}' needs exactly one of 'start' (a date) or 'day'")
        if self.kind == "duty_rule" and not (self.rule and self.territories):
            raise ValueError(f"shock '{self.name}': a duty_rule shock needs 'territories' and a 'rule' table")
        if self.recovery_days is not None and self.kind != "capacity":
            raise ValueError(f"shock '{self.name}': recovery_days applies to capacity shocks only")
        if self.kind == "channels" and not self.channels:
            raise ValueError(f"shock '{self.name}': a channels shock lists the allowed 'channels'")
        if self.kind == "currency":
            if not self.currencies:
                raise ValueError(f"shock '{self.name}': a currency shock lists the 'currencies' it moves")
            bad = [c for c in self.currencies if c not in CURRENCIES]
            if bad:
                raise ValueError(f"shock '{self.name}': unknown currency {short(bad[0])} (known: {', '.join(CURRENCIES)})")
            if "USD" in self.currencies:
                raise ValueError(f"shock '{self.name}': the USD is the reporting currency; shock the others instead")
            if self.factor <= 0:
                raise ValueError(f"shock '{self.name}': a currency shock's factor must be above 0")
        elif self.currencies:
            raise ValueError(f"shock '{self.name}': 'currencies' applies to currency shocks only")
        return self


class Scenario(Section):
    """A whole scenario. Unknown keys are errors."""

    name: str = "custom"
    description: str = ""
    extends: str | None = None
    world: str = param("world", description="world data file: a name in market/data or a path")
    simulation: Simulation = Field(default_factory=Simulation)
    demand: Demand = Field(default_factory=Demand)
    merchants: Merchants = Field(default_factory=Merchants)
    carriers: Carriers = Field(default_factory=Carriers)
    warehouses: Warehouses = Field(default_factory=Warehouses)
    customs_agents: CustomsAgents = Field(default_factory=CustomsAgents)
    integrators: Integrators = Field(default_factory=Integrators)
    market: MarketRules = Field(default_factory=MarketRules)
    credit: Credit = Field(default_factory=Credit)
    currency: Currency = Field(default_factory=Currency)
    payment: Payment = Field(default_factory=Payment)
    claims: Claims = Field(default_factory=Claims)
    insurance: Insurance = Field(default_factory=Insurance)
    returns: Returns = Field(default_factory=Returns)
    network: Network = Field(default_factory=Network)
    evolution: Evolution = Field(default_factory=Evolution)
    tracking: Tracking = Field(default_factory=Tracking)
    aftersales: AfterSales = Field(default_factory=AfterSales)
    output: Output = Field(default_factory=Output)
    shocks: list[Shock] = Field(default_factory=list, max_length=1000, description="scheduled disruptions and policy changes", **LAX)

    @field_validator("name")
    @classmethod
    def _file_name(cls, v):
        if not (1 <= len(v) <= NAME_CHARS) or v.startswith(".") or v.strip() != v \
                or any(c in "/\\" or not c.isprintable() for c in v):
            raise ValueError(f"a scenario name becomes part of file names: 1 to {NAME_CHARS} printable "
                             "characters, no '/' or '\\', no leading '.' or surrounding spaces")
        return v

    @model_validator(mode="after")
    def _ranges(self):
        for key in ("markets_per_exporter", "products"):
            lo, hi = getattr(self.merchants, key)
            if not 1 <= lo <= hi:
                raise ValueError(f"merchants.{key} must be [low, high] with 1 <= low <= high")
        lo, hi = self.carriers.utilisation_target
        if not 0 <= lo < hi <= 1:
            raise ValueError("carriers.utilisation_target must be [low, high] with 0 <= low < high <= 1")
        for key in ("loss_tolerance", "entry_hurdle"):
            lo, hi = getattr(self.evolution, key)
            if not 0 <= lo <= hi <= 5:
                raise ValueError(f"evolution.{key} must be [low, high] with 0 <= low <= high <= 5")
        lo, hi = self.evolution.exit_window
        if not 1 <= lo <= hi <= 60:
            raise ValueError("evolution.exit_window must be [low, high] periods with 1 <= low <= high <= 60")
        lo, hi = self.customs_agents.accuracy
        if not 0 < lo <= hi <= 1:
            raise ValueError("customs_agents.accuracy must be [low, high] within (0, 1]")
        if self.integrators.min_markup > self.integrators.max_markup:
            raise ValueError("integrators.min_markup must not exceed integrators.max_markup")
        if self.market.min_winners > self.market.max_winners:
            raise ValueError("market.min_winners must not exceed market.max_winners")
        for key in ("processing_days", "dispute_days"):
            a, b, c = getattr(self.claims, key)
            if not 0 <= a <= b <= c:
                raise ValueError(f"claims.{key} must be [min, mode, max] with 0 <= min <= mode <= max")
        lo, hi = self.claims.dispute_recovery
        if not 0 <= lo <= hi <= 1:
            raise ValueError("claims.dispute_recovery must be [low, high] within [0, 1]")
        lo, hi = self.insurance.risk_aversion
        if not 0 <= lo <= hi:
            raise ValueError("insurance.risk_aversion must be [low, high] with 0 <= low <= high")
        # a shock no run can reach is an error; one past this scenario's own horizon is not (a
        # shorter simulation.days or --days is a common way to try a scenario): fourpl warns
        never = shocks_never_applying(self, MAX_DAYS, longest=True)
        if never:
            raise ValueError(never[0])
        return self


# ------------------------------------------------------------------------------------------
# Loading, overriding, reporting errors in one line.
# ------------------------------------------------------------------------------------------
def builtin_dir() -> Path:
    """The folder of the built-in scenario files."""
    return Path(str(resources.files(SCENARIO_PACKAGE) / SCENARIO_FOLDER))


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names and their files."""
    return {p.stem: p for p in sorted(builtin_dir().glob("*.toml"))}


def read_toml(path: Path, origin: str | None = None, error: type[ScenarioError] = ScenarioError) -> dict:
    """A TOML file as a dict; any reason it cannot be read is one line (``origin``: the file)."""
    origin = origin or str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        why = f"not a UTF-8 text file (byte {exc.start}); TOML files are UTF-8"
    except tomllib.TOMLDecodeError as exc:
        why = f"not valid TOML: {exc}"
    except OSError as exc:
        why = f"cannot read: {exc.strerror or exc}"
    except (ValueError, RecursionError) as exc:      # e.g. a NUL in the path, absurdly deep nesting
        why = f"cannot read: {type(exc).__name__}: {exc}"
    raise error(one_line(f"{origin}: {why}"))


def is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):        # a name too long, a NUL byte: not a file
        return False


def _locate(name_or_file: str | Path, relative_to: Path | None = None) -> Path:
    text = str(name_or_file)
    builtins = builtin_scenarios()
    if text in builtins:
        return builtins[text]
    candidates = [Path(text)]
    if relative_to is not None:
        candidates.insert(0, relative_to / text)
    for cand in candidates:
        if cand.suffix == "" and is_file(cand.with_suffix(".toml")):
            cand = cand.with_suffix(".toml")
        if is_file(cand):
            return cand
    close = difflib.get_close_matches(text, builtins, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ScenarioError(
        f"scenario {short(text)} is neither a built-in ({', '.join(builtins)}) nor a file{hint}")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge override into a copy of base (tables merge, other values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_raw(name_or_file: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a scenario file, resolving ``extends`` chains, without validating.

    A file's name is its own ``name``, else its file name without ``.toml``: never the name of
    the scenario it extends.
    """
    path = _locate(name_or_file, _seen[-1].parent if _seen else None).resolve()
    if path in _seen:
        raise ScenarioError(f"scenario 'extends' loops: {' -> '.join(p.stem for p in (*_seen, path))}")
    data = read_toml(path)
    own_name = data.get("name", path.stem)
    if "extends" in data:
        parent = data["extends"]
        if not isinstance(parent, str) or not parent.strip():
            raise ScenarioError(f"{path.name}: key 'extends' must be a scenario name or file "
                                f"(got {short(parent)})")
        data = deep_merge(load_raw(parent, (*_seen, path)), data)
    data["name"] = own_name
    return data


def parse_value(text: str) -> Any:
    """A --set value: TOML syntax (numbers, booleans, dates, [lists], "strings"), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):   # ValueError: an integer too long to read
        return text


def _plain(v: Any) -> Any:
    """numpy scalars (from a design, an optimiser, an array) as the Python values they hold."""
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0:
        return item()
    return v


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """Set dotted keys (``demand.scale``; ``demand__scale`` also works) in a raw scenario dict."""
    out = deep_merge(data, {})
    for dotted, value in overrides.items():
        if not isinstance(dotted, str):
            raise ScenarioError(f"scenario key {short(dotted)}: keys are text, e.g. 'demand.scale'")
        keys = dotted.replace("__", ".").split(".")
        if keys[0] == "extends":
            raise ScenarioError(f"scenario key {short(dotted)}: 'extends' cannot be overridden; write a "
                                "scenario file that extends the one you want and run that")
        node = out
        for k in keys[:-1]:
            child = node.get(k)
            if not isinstance(child, dict):
                child = {} if child is None else child
                if not isinstance(child, dict):
                    raise ScenarioError(f"scenario key {short(dotted)}: {short(k)} is not a table")
                node[k] = child = dict(child)
            else:
                node[k] = child = dict(child)
            node = child
        node[keys[-1]] = _plain(value)
    return out


# ------------------------------------------------------------------------------------------
# One-line messages
# ------------------------------------------------------------------------------------------
_repr = reprlib.Repr(maxlevel=3, maxtuple=6, maxlist=6, maxarray=6, maxdict=4, maxset=6,
                     maxfrozenset=6, maxdeque=6, maxstring=60, maxlong=40, maxother=60)


def short(value: Any) -> str:
    """A value as it appears in an error: its repr (a date as written in TOML), cut to a few dozen characters."""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        return one_line(_repr.repr(value), 200)
    except Exception:                   # noqa: BLE001 - a value whose repr fails is still an error to report
        return f"a {type(value).__name__}"


def dotted(loc: tuple) -> str:
    """An error location as a key: ``demand.peaks[0].date``."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return one_line(out, 200)


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _section_model(loc: tuple, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    model: Any = root or Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return model if fields else None
        ann = fields[part].annotation
        inner = getattr(ann, "__args__", ())
        cand = [a for a in (ann, *inner) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = cand[0] if cand else None
        if model is None:
            return None
    return model


def format_validation_error(exc: ValidationError, origin: str = "scenario",
                            root: type[BaseModel] | None = None) -> str:
    """One line naming the first bad key and what is allowed (``root``: the model validated)."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = dotted(loc)
    if err["type"] == "extra_forbidden":
        parent = _section_model(loc[:-1], root)
        allowed = _allowed_keys(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return one_line(f"{origin}: unknown key '{key}'{hint} (allowed here: {', '.join(allowed)})")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    got_text = "" if isinstance(got, (dict, BaseModel)) or err["type"] == "missing" else f" (got {short(got)})"
    where = f"key '{key}': " if key else ""
    return one_line(f"{origin}: {where}{msg}{got_text}")


def validate(data: dict, origin: str = "scenario") -> Scenario:
    """A raw scenario dict as a :class:`Scenario`; raises ScenarioError with one line naming
    the key (``origin`` says which scenario)."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, origin)) from None


def _origin(name: Any) -> str:
    return f"scenario '{one_line(name, 200)}'" if isinstance(name, str) else f"scenario {short(name)}"


def load_scenario(name_or_file: str | Path | Scenario = "baseline",
                  overrides: dict[str, Any] | None = None) -> Scenario:
    """Load, extend, override and validate a scenario; raises ScenarioError with one line."""
    if isinstance(name_or_file, Scenario):
        if not overrides:
            return name_or_file
        data = name_or_file.model_dump(mode="json")
        origin = _origin(name_or_file.name)
    elif isinstance(name_or_file, (str, Path)):
        data = load_raw(name_or_file)
        origin = _origin(data["name"])
    else:
        raise ScenarioError(f"scenario: expected a built-in name, a file or a Scenario (got {short(name_or_file)})")
    if overrides:
        data = apply_overrides(data, overrides)
    return validate(data, origin)


def shocks_never_applying(scn: Scenario, days: int | None = None, *, longest: bool = False) -> list[str]:
    """Why each shock that never applies in a run of ``days`` days (default: simulation.days) does not.

    A shock applies on days [first, first + days) counted from simulation.start_date; one
    wholly before day 0, or starting after the last day, would silently do nothing.
    (``longest``: ``days`` is the longest run there can be, and the message says so.)
    """
    days = scn.simulation.days if days is None else days
    start = scn.simulation.start_date
    last = start + dt.timedelta(days=days - 1)
    out = []
    for s in scn.shocks:
        first = (s.start - start).days if s.start is not None else s.day
        when = f"{s.start}" if s.start is not None else f"day {s.day}"
        name = f"'{one_line(s.name, 100)}'"
        if first >= days:
            run = f"the longest run's last day ({MAX_DAYS} days: {last})" if longest \
                else f"the run's last day ({last}, day {days - 1})"
            out.append(f"shock {name} starts on {when}, after {run}; it never applies")
        elif s.days is not None and first + s.days <= 0:
            end = start + dt.timedelta(days=first + s.days - 1)
            out.append(f"shock {name} ends on {end}, before the run starts ({start}); it never applies")
    return out


def to_toml_dict(scn: Scenario) -> dict:
    """The resolved scenario as plain TOML-writable data (None values dropped)."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    data = scn.model_dump(mode="python")
    data.pop("extends", None)
    return clean(data)


def parameter_table() -> list[dict]:
    """Every leaf parameter: dotted key, default, constraints, unit, source, description."""
    rows = []
    for sect_name, field in Scenario.model_fields.items():
        ann = field.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            continue
        for key, f in ann.model_fields.items():
            extra = f.json_schema_extra or {}
            bounds = {}
            for m in f.metadata:
                for attr in ("ge", "gt", "le", "lt"):
                    if getattr(m, attr, None) is not None:
                        bounds[attr] = getattr(m, attr)
            rows.append({
                "key": f"{sect_name}.{key}",
                "default": f.default if f.default_factory is None else f.default_factory(),
                "bounds": bounds,
                "unit": extra.get("unit", ""),
                "source": extra.get("source", ""),
                "ui": extra.get("ui", False),
                "step": extra.get("step"),
                "description": f.description or "",
                "annotation": f.annotation,
            })
    return rows
