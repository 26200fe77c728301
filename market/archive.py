"""Rows that no longer change (finished returns, closed invoices) kept on disk, column by column.

A year of a 1% sample of the real market finishes millions of returns and closes millions of
trade-credit invoices; kept in memory, they made a long run's memory grow with the rows it
finished. A :class:`ColumnArchive` appends each batch of finished rows to one temporary file per
column (raw numpy bytes, in the order the batches came) and reads a whole column back when a
report or an output file needs it, so the run holds only its live rows. The files live in a
temporary directory of their own (never in the user's folders) and go when the archive is
closed or garbage-collected.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class ColumnArchive:
    """Append-only columns on disk: ``append`` batches of rows, read a ``column`` whole.

    ``dtypes``: each column's name and numpy dtype (values are converted on the way in).
    """

    def __init__(self, dtypes: dict[str, type | np.dtype]):
        self.dtypes = {name: np.dtype(t) for name, t in dtypes.items()}
        self.n = 0
        self._dir: tempfile.TemporaryDirectory | None = None
        self._files: dict = {}

    def __len__(self) -> int:
        return self.n

    def _open(self):
        # created on the first batch: a run that finishes nothing makes no directory
        self._dir = tempfile.TemporaryDirectory(prefix="fourpl-archive-")
        self._files = {name: open(Path(self._dir.name) / f"{i}.bin", "wb") for i, name in enumerate(self.dtypes)}

    def append(self, rows: dict[str, np.ndarray]):
        """Add a batch of rows: every column, the same length."""
        sizes = {np.shape(rows[name])[0] for name in self.dtypes}
        if len(sizes) != 1:
            raise ValueError(f"columns of one batch differ in length: {sorted(sizes)}")
        k = sizes.pop()
        if k == 0:
            return
        if self._dir is None:
            self._open()
        for name, dtype in self.dtypes.items():
            np.ascontiguousarray(rows[name], dtype=dtype).tofile(self._files[name])
        self.n += k

    def column(self, name: str) -> np.ndarray:
        """Every archived row's value of one column, in the order the rows were appended."""
        dtype = self.dtypes[name]
        if self.n == 0:
            return np.zeros(0, dtype=dtype)
        f = self._files[name]
        f.flush()
        return np.fromfile(f.name, dtype=dtype, count=self.n)

    @property
    def nbytes(self) -> int:
        """Bytes the archive holds on disk."""
        return self.n * sum(d.itemsize for d in self.dtypes.values())

    def close(self):
        """Delete the files (the archive is empty afterwards)."""
        for f in self._files.values():
            f.close()
        self._files = {}
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self.n = 0
