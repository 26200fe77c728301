"""The flow of goods: orders become parcels, parcels and stock move through stages.

- :mod:`~market.goods.parcels`: the parcel table (numpy columns) and the Parquet sink;
- :mod:`~market.goods.flows`: parcels through their stages under capacity, customs, loss;
- :mod:`~market.goods.allocation`: who gets a resource's capacity today (contracts, then spot);
- :mod:`~market.goods.inventory`: warehouse stock, replenishment consignments, storage.
"""
