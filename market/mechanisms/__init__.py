"""Procurement and market mechanisms for the 4PL marketplace (pure library).

Plain functions and small classes over numpy arrays and dataclasses: bids in,
allocation and payments out.  No Mesa, no model state.  Money is float USD.
Random functions take a ``numpy.random.Generator``.

Modules
-------
auctions        scoring tenders (MILP winner determination, VCG), the clock
                auction, first-price equilibrium bids (with a reserve)
package         combinatorial (package) reverse auctions over several lanes,
                backhaul economies of scope
double_auction  zero-intelligence continuous double auction, call market
strategies      provider bidding strategies (truthful, cost-plus, adaptive,
                bandit markups; equilibrium and learned shading)
spot            posted spot prices rising with utilisation
contract_net    the contract net protocol with recursive subcontracting
reputation      Beta reputation with forgetting
insurance       cargo-insurance premiums and claim settlement

Every mechanism here is called by the model: the tender formats and bidding
rules from ``market.auction`` and ``market.bidding``, the spot double
auctions from ``market.spot``, the contract net from
``integrators.procurement``, the rest on every run.
"""

from .auctions import (
    ClockAuctionResult,
    ScoreRule,
    TenderAward,
    TenderBids,
    award_tender,
    descending_clock_auction,
    first_price_equilibrium_bid,
)
from .contract_net import (
    Award,
    ContractNode,
    Contractor,
    Proposal,
    SimpleContractor,
    Task,
    run_contract_net,
    tender_award_fn,
)
from .double_auction import (
    CallMarketResult,
    ZIResult,
    call_market_clear,
    max_surplus,
    zi_continuous_double_auction,
)
from .insurance import (
    ClaimSettlement,
    insurer_layer,
    premium,
    settle_claims,
)
from .package import (
    PackageAward,
    PackageBids,
    backhaul_bundles,
    solve_package_auction,
)
from .reputation import DIMENSIONS, ReputationBook
from .spot import posted_spot_price
from .strategies import (
    AdaptiveMarkup,
    BanditMarkup,
    BanditShading,
    BiddingStrategy,
    CostPlus,
    EquilibriumShading,
    Truthful,
)

__all__ = [
    "AdaptiveMarkup", "Award", "BanditMarkup", "BanditShading", "BiddingStrategy", "CallMarketResult",
    "ClaimSettlement", "ClockAuctionResult", "ContractNode", "Contractor", "CostPlus",
    "DIMENSIONS", "EquilibriumShading", "PackageAward", "PackageBids", "Proposal",
    "ReputationBook", "ScoreRule", "SimpleContractor", "Task", "TenderAward", "TenderBids",
    "Truthful", "ZIResult", "award_tender", "backhaul_bundles", "call_market_clear",
    "descending_clock_auction", "first_price_equilibrium_bid", "insurer_layer", "max_surplus",
    "posted_spot_price", "premium", "run_contract_net", "settle_claims", "solve_package_auction",
    "tender_award_fn", "zi_continuous_double_auction",
]
