"""Procurement and market mechanisms for the 4PL marketplace (pure library).

Plain functions and small classes over numpy arrays and dataclasses: bids in,
allocation and payments out.  No Mesa, no model state.  Money is float USD.
Random functions take a ``numpy.random.Generator``.

Modules
-------
auctions        scoring tenders (MILP winner determination, VCG), reverse and
                clock auctions, first-price equilibrium bids
package         combinatorial (package) reverse auctions over several lanes
double_auction  zero-intelligence continuous double auction, call market
strategies      provider bidding strategies (truthful, cost-plus, adaptive, bandit)
spot            posted spot prices and cheapest-first spot allocation
contract_net    the contract net protocol with recursive subcontracting
reputation      Beta reputation with forgetting
insurance       cargo-insurance premiums and claim settlement
"""

from .auctions import (
    ClockAuctionResult,
    ReverseAuctionResult,
    ScoreRule,
    TenderAward,
    TenderBids,
    award_tender,
    descending_clock_auction,
    first_price_equilibrium_bid,
    reverse_auction,
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
    draw_losses,
    insurer_layer,
    premium,
    settle_claims,
    weight_based_liability_limit,
)
from .package import (
    PackageAward,
    PackageBids,
    brute_force_package_auction,
    solve_package_auction,
)
from .reputation import DIMENSIONS, ReputationBook
from .spot import (
    OrderSplit,
    SpotAllocation,
    allocate_cheapest_first,
    posted_spot_price,
    split_orders_cheapest_first,
)
from .strategies import (
    AdaptiveMarkup,
    BanditMarkup,
    BiddingStrategy,
    CostPlus,
    Truthful,
)

__all__ = [
    "AdaptiveMarkup", "Award", "BanditMarkup", "BiddingStrategy", "CallMarketResult",
    "ClaimSettlement", "ClockAuctionResult", "ContractNode", "Contractor", "CostPlus",
    "DIMENSIONS", "OrderSplit", "PackageAward", "PackageBids", "Proposal",
    "ReputationBook", "ReverseAuctionResult", "ScoreRule", "SimpleContractor",
    "SpotAllocation", "Task", "TenderAward", "TenderBids", "Truthful", "ZIResult",
    "allocate_cheapest_first", "award_tender", "brute_force_package_auction",
    "call_market_clear", "descending_clock_auction", "draw_losses",
    "first_price_equilibrium_bid", "insurer_layer", "max_surplus", "posted_spot_price",
    "premium", "reverse_auction", "run_contract_net", "settle_claims",
    "solve_package_auction", "split_orders_cheapest_first", "tender_award_fn",
    "weight_based_liability_limit", "zi_continuous_double_auction",
]
