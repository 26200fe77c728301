"""Merchants value their options in batches (all ways of doing it themselves, then every
integrator service); a batch must give each option what valuing it alone gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.merchant import Merchant
from market import Marketplace

SMALL = {"merchants.exporters": 8, "merchants.importers": 3}


@pytest.mark.parametrize("scenario", ["baseline", "us-de-minimis-2025", "4pl-competition"])
def test_options_valued_in_a_batch_equal_options_valued_one_by_one(monkeypatch, scenario):
    model = Marketplace(scenario, rng=4, **SMALL)
    for _ in range(45):
        model.step()
    markets = [(m, int(row)) for m in model.merchants for row in m.rows]
    assert len(markets) > 10
    batched = {(m.index, row): m.options(row) for m, row in markets}
    alone = Merchant._value_options
    monkeypatch.setattr(Merchant, "_value_options",
                        lambda self, row, candidates: [alone(self, row, [c])[0] for c in candidates])
    n = kinds = 0
    for m, row in markets:
        one_by_one = m.options(row)
        assert len(one_by_one) == len(batched[(m.index, row)])
        for a, b in zip(batched[(m.index, row)], one_by_one):
            for f in dataclasses.fields(a):
                x, y = getattr(a, f.name), getattr(b, f.name)
                assert np.array_equal(x, y), (scenario, m.index, row, f.name, x, y)
            n += 1
        kinds += len({(o.channel, o.integrator) for o in one_by_one})
    assert n > 3 * len(markets) and kinds > 2 * len(markets)      # several channels and providers each


@pytest.mark.parametrize("scenario", ["baseline", "us-de-minimis-2025", "eu-duty-2026"])
def test_taxes_of_many_options_at_once_equal_each_option_alone(scenario):
    """Every (route, replenishment route) a merchant can choose, on dates across the scenario's
    rule changes, at prices around the products' values (so thresholds bind both ways)."""
    import datetime as dt
    model = Marketplace(scenario, rng=2, **SMALL)
    world, orders = model.world, model.orders
    rng = np.random.default_rng(0)
    checked = 0
    for m in model.merchants[:6]:
        prods = m.products
        pairs = set()
        for market in world.markets:
            for route0, rep0 in world.channel_routes(m.origin, market).values():
                for route in world.route_variants[world.routes[route0].family]:
                    reps = [-1] if rep0 is None else world.route_variants[world.routes[rep0].family]
                    pairs.update((route, rep) for rep in reps)
        pairs = sorted(pairs)
        assert pairs
        for day, date in enumerate(model.config.simulation.start_date + dt.timedelta(days=d) for d in (0, 150, 240, 400)):
            model.day, model.date = 1000 + day, date
            price = model.prod_value[prods] * rng.uniform(0.3, 3.0, (len(pairs), prods.size))
            fx = float(rng.uniform(0.8, 1.2))
            got = orders.taxes_rows(prods, [r for r, _ in pairs], [r for _, r in pairs], price, fx)
            want = np.array([orders.taxes(prods, r, rep, price[i], fx) for i, (r, rep) in enumerate(pairs)])
            np.testing.assert_array_equal(got, want)
            checked += int((want > 0).any(axis=1).sum())
    assert checked > 20          # options that do pay duty or VAT
