"""The marketplace engine: world, parcels, contracts, ledger, mechanisms and the Mesa model.

``from market import Marketplace`` works as ever, but the model (and Mesa, numpy, scipy,
pandas with it) is imported only when first used, so tools that need only the scenario schema
(the ``fourpl`` command's start, ``--help``) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.model import Marketplace
    from market.scenario import Scenario, ScenarioError, load_scenario

_LAZY = {"Marketplace": "market.model", "Scenario": "market.scenario",
         "ScenarioError": "market.scenario", "load_scenario": "market.scenario"}

__all__ = ["Marketplace", "Scenario", "ScenarioError", "load_scenario"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'market' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value          # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
