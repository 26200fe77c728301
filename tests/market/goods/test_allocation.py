from __future__ import annotations


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.goods.allocation import allocate_capacity, stable_order


def reference(res, buyer, c_res, c_buyer, c_rem, c_off, o_res, spare, price):
    """A plain loop: each unit in order takes its buyer's first contract with room, else the cheapest offer."""
    c_rem, spare = c_rem.astype(float).copy(), spare.astype(float).copy()
    cs, os_ = [], []
    for r, b in zip(res, buyer):
        got_c = got_o = -1
        for j in range(len(c_res)):
            if c_res[j] == r and c_buyer[j] == b and c_rem[j] >= 1:
                got_c, got_o = j, c_off[j]
                c_rem[j] -= 1
                break
        if got_c < 0:
            cand = [j for j in range(len(o_res)) if o_res[j] == r and spare[j] >= 1]
            if cand:
                got_o = min(cand, key=lambda j: (price[j], j))
                spare[got_o] -= 1
        cs.append(got_c)
        os_.append(got_o)
    return np.array(cs), np.array(os_)


def test_matches_reference_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, R, B = rng.integers(0, 30), rng.integers(1, 4), rng.integers(1, 4)
        res, buyer = rng.integers(0, R, n), rng.integers(0, B, n)
        nc = rng.integers(0, 5)
        c_res, c_buyer = rng.integers(0, R, nc), rng.integers(0, B, nc)
        no = rng.integers(1, 6)
        o_res = rng.integers(0, R, no)
        c_off = np.array([rng.choice(np.flatnonzero(o_res == r)) if (o_res == r).any() else 0 for r in c_res], dtype=int)
        c_rem = rng.integers(0, 4, nc).astype(float)
        spare = rng.integers(0, 5, no).astype(float)
        price = rng.integers(1, 4, no).astype(float)
        got = allocate_capacity(res, buyer, c_res, c_buyer, c_rem, c_off, o_res, spare, price)
        want = reference(res, buyer, c_res, c_buyer, c_rem, c_off, o_res, spare, price)
        assert (got[0] == want[0]).all() and (got[1] == want[1]).all()



@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=300), st.integers(1, 200_000),
       st.integers(-100_000, 100_000), st.sampled_from([np.int64, np.int32]))
def test_stable_order_is_numpys_stable_argsort(values, span, offset, dtype):
    """The radix shortcut gives numpy's stable permutation whatever the keys' span (narrow
    spans take the shortcut, wide ones the general sort), sign and integer type."""
    keys = (np.array(values, dtype=np.int64) % span + offset).astype(dtype)
    keys = np.concatenate([keys, keys[::3], keys[::7]])      # repeated keys: stability matters
    assert np.array_equal(stable_order(keys), np.argsort(keys, kind="stable"))
    narrow = (keys % 300).astype(np.uint16)
    assert np.array_equal(stable_order(narrow), np.argsort(narrow, kind="stable"))
