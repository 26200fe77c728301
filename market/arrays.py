"""Small array helpers the daily hot paths share."""

from __future__ import annotations

import numpy as np


def broadcast(a, shape: tuple[int, ...]) -> np.ndarray:
    """``np.broadcast_to(a, shape)``, skipped where ``a`` already has the shape: the hot paths
    mostly pass whole columns, and numpy's broadcast costs microseconds a call in Python.
    Read the result; do not write to it (it may be ``a`` itself or a read-only view)."""
    a = np.asarray(a)
    return a if a.shape == shape else np.broadcast_to(a, shape)


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for non-negative integer keys: the sorted
    distinct keys and each key's index among them. Keys spanning a small range (a day's
    merchant x market x channel, payer x payee) are counted into bins instead of sorted."""
    keys = np.asarray(keys)
    if keys.size and keys.dtype.kind in "iu":
        top = int(keys.max())
        if int(keys.min()) >= 0 and top < max(4 * keys.size, 1 << 16):
            present = np.bincount(keys, minlength=top + 1) > 0
            uniq = np.flatnonzero(present)
            index = np.cumsum(present) - 1
            return uniq.astype(keys.dtype, copy=False), index[keys]
    return np.unique(keys, return_inverse=True)
