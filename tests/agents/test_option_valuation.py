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
