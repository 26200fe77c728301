"""Money and obligations: every cent moves through one double-entry ledger.

- :mod:`~market.money.ledger`: accounts in integer cents; transfers; the daily journal;
- :mod:`~market.money.contracts`: the contract book (rates, capacity, SLA, life cycle);
- :mod:`~market.money.claims`: loss and damage claims, disputes, insurance payouts.
"""
