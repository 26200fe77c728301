"""How buyers get capacity: providers' offers, price quotes, tenders that sign contracts.

- :mod:`~market.procurement.offers`: the offer book (each provider's capacity, cost and markup
  on each resource) and spot prices;
- :mod:`~market.procurement.quotes`: what a leg, route or replenishment costs a buyer today;
- :mod:`~market.procurement.tendering`: tender rounds in the scenario's format, and the
  contract net. The auction algorithms themselves are in :mod:`market.mechanisms`.
"""
