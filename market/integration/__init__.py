"""The 4PL's work: composing end-to-end services, pricing them, and how good it is at it.

- :mod:`~market.integration.services`: an integrator's service graph and catalogue;
- :mod:`~market.integration.composition`: Pareto service composition (cost, time, risk);
- :mod:`~market.integration.pricing`: cost-plus, value-based and bandit pricing policies;
- :mod:`~market.integration.choice`: the multinomial logit merchants choose services by;
- :mod:`~market.integration.optimum`: the centralised min-cost multicommodity-flow optimum;
- :mod:`~market.integration.efficiency`: an integrator's cost against that optimum.
"""
