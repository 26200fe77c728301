"""The marketplace engine: world, parcels, contracts, ledger, mechanisms and the Mesa model."""

from market.model import Marketplace
from market.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["Marketplace", "Scenario", "ScenarioError", "load_scenario"]
