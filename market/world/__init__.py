"""The world the market runs on: facts that do not belong to any actor.

- :mod:`~market.world.spec`: the world file's schema (territories, nodes, lanes, warehouses,
  customs, dated duty rules), every figure with its source in ``market/data/world.toml``;
- :mod:`~market.world.world`: the built network, resources (stages) and routes per channel;
- :mod:`~market.world.network`: numeric tables per resource and route (transit, risk, costs);
- :mod:`~market.world.customs`: clearance times, inspection, duties and VAT under the rules in
  force on a date;
- :mod:`~market.world.demand`: the demand calendar (weekdays, seasonal peaks) and how orders
  answer delivery time.
"""

from market.world.spec import (EXPORT, HANDLING, IMPORT, MODES, REGIMES, STAGE_NAMES, TRANSPORT,
                               DutyRuleSpec, WorldSpec, load_world_spec)
from market.world.world import Lane, Resource, Route, World, build_world, load_world

__all__ = ["EXPORT", "HANDLING", "IMPORT", "MODES", "REGIMES", "STAGE_NAMES", "TRANSPORT", "DutyRuleSpec", "Lane",
           "Resource", "Route", "World", "WorldSpec", "build_world", "load_world", "load_world_spec"]
