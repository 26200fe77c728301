"""The array helpers the hot paths share give what numpy's general functions give."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market.arrays import broadcast, unique_inverse


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.integers(min_value=0, max_value=2**40), max_size=200),
       small=st.booleans(), dtype=st.sampled_from([np.int64, np.int32, np.uint16]))
def test_unique_inverse_is_numpys_unique_with_inverse(keys, small, dtype):
    keys = np.array(keys, dtype=np.int64)
    if small:
        keys = keys % 300                  # the binned path
    keys = (keys % np.iinfo(dtype).max).astype(dtype)
    want_u, want_inv = np.unique(keys, return_inverse=True)
    got_u, got_inv = unique_inverse(keys)
    assert got_u.dtype == want_u.dtype and got_inv.dtype == want_inv.dtype
    np.testing.assert_array_equal(got_u, want_u)
    np.testing.assert_array_equal(got_inv, want_inv)


def test_unique_inverse_takes_negative_keys_the_general_way():
    keys = np.array([3, -1, 3, 0, -1])
    u, inv = unique_inverse(keys)
    np.testing.assert_array_equal(u, [-1, 0, 3])
    np.testing.assert_array_equal(inv, [2, 0, 2, 1, 0])


def test_broadcast_is_numpys_broadcast_to():
    col = np.arange(4.0)
    assert broadcast(col, (4,)) is col                        # already the shape: itself
    np.testing.assert_array_equal(broadcast(2.5, (3,)), [2.5, 2.5, 2.5])
    np.testing.assert_array_equal(broadcast([[1], [2]], (2, 3)), np.broadcast_to([[1], [2]], (2, 3)))
