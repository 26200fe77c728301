"""Parcels as rows of numpy arrays (structure of arrays), processed a day at a time.

Only parcels in flight are held in memory. Finished parcels (delivered or lost) are moved out
by :meth:`ParcelTable.compact` and handed to a sink, which writes them to Parquet in chunks,
so memory grows with parcels in flight, not with parcels ever created.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# status codes
WAITING_STOCK, WAITING, IN_STAGE, DELIVERED, LOST = 0, 1, 2, 3, 4
STATUS_NAMES = ("waiting_stock", "waiting", "in_stage", "delivered", "lost")

# Per-parcel columns and their dtypes. Money in int64 cents.
COLUMNS: dict[str, np.dtype] = {
    "parcel_id": np.int64,
    "created_day": np.int32,
    "merchant": np.int32,        # merchant agent unique_id
    "merchant_idx": np.int32,    # merchant's index in the model's merchant list
    "mm_row": np.int32,          # the merchant-market row the order belongs to
    "product": np.int32,         # global product index
    "category": np.int8,
    "origin_territory": np.int8,
    "market": np.int8,
    "channel": np.int8,
    "route": np.int16,
    "n_stages": np.int8,
    "stage": np.int8,
    "status": np.int8,
    "ready_day": np.int32,       # day the parcel may start its current stage
    "end_day": np.int32,         # day its current stage ends
    "finished_day": np.int32,    # delivery or loss day (-1 in flight)
    "buyer_acct": np.int32,      # ledger account buying the legs: the merchant, or its 4PL
    "merchant_acct": np.int32,
    "integrator": np.int32,      # integrator unique_id, -1 when the merchant buys itself (DIY)
    "integrator_idx": np.int16,
    "value": np.float32,         # retail price (the customs value), USD
    "sale_cents": np.int64,      # what the consumer paid: the retail price plus the duty and VAT passed on
    "weight": np.float32,        # kg
    "promised_days": np.int16,
    "price_cents": np.int64,     # what the merchant pays for logistics (4PL fee, or legs when DIY)
    "cost_cents": np.int64,      # what the buyer paid providers for the legs
    "upstream_cents": np.int64,  # replenishment and storage allocated to a unit from stock
    "upstream_duty_cents": np.int64,  # bulk import duty allocated to a unit from stock
    "duty_cents": np.int64,      # import duty and VAT
    "claim_cents": np.int64,     # claims filed for loss or damage (carrier liability + insurance)
    "premium_cents": np.int64,   # cargo insurance premium paid for the parcel
    "insured": np.int8,
    "will_lose": np.int8,        # loss drawn for the current leg (revealed when it ends)
    "damaged": np.int8,
    "inspected": np.int8,
    "held": np.int8,
    "fallback": np.int8,         # 1: shipped direct because the warehouse had no stock
    "stockout_wait": np.int8,    # 1: waited for stock
    "spot_legs": np.int8,
    "wait_days": np.int16,       # days queued for capacity or stock
    "handoff_days": np.int16,    # days lost at hand-offs between providers (DIY)
    "damage_leg": np.int8,       # stage on which the parcel is damaged (-1: none)
    "collected": np.int8,        # 1: finished and already reported (awaits compaction)
    # visibility and after-sales (market/goods/tracking.py, market/goods/aftersales.py)
    "delays": np.int8,           # legs that ran late (carrier delay, inspection, hold)
    "delays_detected": np.int8,  # ... of which the buyer saw the exception before the leg ended
    "expedited_legs": np.int8,   # legs a 4PL paid to expedite
    "expedited_days": np.int16,  # days a 4PL recovered by expediting detected delays
    "wismo": np.int8,            # "where is my order" contacts
    "damage_contacts": np.int8,  # loss and damage contacts
    "consumer_dispute": np.int8, # 1: the consumer opened a payment dispute
    "contact_cents": np.int64,   # what the contacts cost the logistics buyer
}
# columns whose "nothing" value is -1
DEFAULTS = {"finished_day": -1, "damage_leg": -1, "integrator": -1, "integrator_idx": -1}
LEG_COLUMNS: dict[str, np.dtype] = {
    "leg_provider": np.int32,    # provider unique_id per stage (-1 not started)
    "leg_contract": np.int32,    # contract id per stage (-1 spot)
    "leg_start": np.int16,       # day the stage started (tracking event)
    "leg_end": np.int16,         # day the stage ended (tracking event)
    "leg_seen": np.int16,        # day the buyer saw the stage's end event (-1: never)
    "leg_detect": np.int16,      # day the buyer saw a delay on the stage before it ended (-1: none)
}


class ParcelTable:
    """Growable structure-of-arrays of parcels in flight."""

    def __init__(self, max_stages: int, capacity: int = 1024):
        self.max_stages = max_stages
        self.n = 0
        self._cap = capacity
        self.cols: dict[str, np.ndarray] = {k: np.zeros(capacity, dtype=t) for k, t in COLUMNS.items()}
        self.legs: dict[str, np.ndarray] = {k: np.full((capacity, max_stages), -1, dtype=t)
                                            for k, t in LEG_COLUMNS.items()}
        self.next_id = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        """The live slice of a column (a view into the first n rows)."""
        if name in self.cols:
            return self.cols[name][: self.n]
        return self.legs[name][: self.n]

    def _grow(self, need: int):
        cap = self._cap
        while cap < need:
            cap *= 2
        if cap == self._cap:
            return
        for k, a in self.cols.items():
            b = np.zeros(cap, dtype=a.dtype)
            b[: self.n] = a[: self.n]
            self.cols[k] = b
        for k, a in self.legs.items():
            b = np.full((cap, self.max_stages), -1, dtype=a.dtype)
            b[: self.n] = a[: self.n]
            self.legs[k] = b
        self._cap = cap

    def append(self, count: int, **values) -> np.ndarray:
        """Add ``count`` parcels; ``values`` are scalars or arrays per column. Returns row indices."""
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        self._grow(self.n + count)
        rows = np.arange(self.n, self.n + count)
        sl = slice(self.n, self.n + count)
        for k, a in self.cols.items():
            a[sl] = values.get(k, DEFAULTS.get(k, 0))
        for a in self.legs.values():
            a[sl] = -1
        self.cols["parcel_id"][sl] = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        self.n += count
        return rows

    def take(self, mask_or_idx) -> dict[str, np.ndarray]:
        """Copies of the selected rows, all columns."""
        idx = np.flatnonzero(mask_or_idx) if np.asarray(mask_or_idx).dtype == bool else mask_or_idx
        out = {k: a.take(idx) for k, a in self.cols.items()}
        for k, a in self.legs.items():
            out[k] = a.take(idx, axis=0)
        return out

    def compact(self, keep: np.ndarray, return_dropped: bool = True) -> dict[str, np.ndarray] | None:
        """Drop rows where ``keep`` is False; return the dropped rows (or None if none, or if
        not ``return_dropped``: the daily compaction has already written them out)."""
        if keep.all():
            return None
        gone = self.take(~keep) if return_dropped else None
        idx = np.flatnonzero(keep)
        k = idx.size
        for a in self.cols.values():
            a[:k] = a.take(idx)
        for a in self.legs.values():
            a[:k] = a.take(idx, axis=0)
        self.n = k
        return gone

    @property
    def nbytes(self) -> int:
        """Memory the table's columns take, in bytes."""
        return sum(a.nbytes for a in self.cols.values()) + sum(a.nbytes for a in self.legs.values())


# ------------------------------------------------------------------------------------------
# Output of finished parcels
# ------------------------------------------------------------------------------------------
class ParcelSink:
    """Collects finished parcels and writes them to one Parquet file in row-group chunks.

    ``labels`` turn integer codes into readable dictionary columns (channel, market, ...).
    With ``path=None`` parcels are counted and dropped (library use without output).
    """

    DROP = ("will_lose", "damage_leg", "collected", "stage", "ready_day", "end_day", "buyer_acct", "merchant_acct",
            "merchant_idx", "integrator_idx", "mm_row")

    def __init__(self, path: Path | None, labels: dict[str, list[str]], max_stages: int,
                 chunk_rows: int = 200_000):
        self.path = Path(path) if path is not None else None
        self.labels = labels
        self.max_stages = max_stages
        self.chunk_rows = chunk_rows
        self._buf: list[dict[str, np.ndarray]] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._pool: ThreadPoolExecutor | None = None   # one writer thread, made at the first flush
        self._pending: Future | None = None
        self.rows_written = 0
        self.closed = False

    def add(self, rows: dict[str, np.ndarray] | None):
        """Buffer finished parcels (columns of the parcel table); write a chunk when the buffer
        holds ``chunk_rows``."""
        if rows is None or rows["parcel_id"].size == 0 or self.path is None:
            return
        self._buf.append(rows)
        self._buffered += rows["parcel_id"].size
        if self._buffered >= self.chunk_rows:
            self.flush()

    def _table(self, rows: dict[str, np.ndarray]) -> pa.Table:
        cols = {}
        for k, v in rows.items():
            if k in self.DROP or k in LEG_COLUMNS:
                continue
            if k in self.labels:
                cols[k] = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)),
                                                         pa.array(self.labels[k]))
            elif k == "status":
                cols[k] = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)),
                                                         pa.array(STATUS_NAMES))
            elif k.endswith("_cents"):
                cols[k[: -len("_cents")] + "_usd"] = pa.array(v / 100.0)
            else:
                cols[k] = pa.array(v)
        fin = rows["finished_day"]
        lead = np.where(fin >= 0, fin - rows["created_day"], -1).astype(np.int32)
        cols["lead_time_days"] = pa.array(lead)
        cols["on_time"] = pa.array((fin >= 0) & (lead <= rows["promised_days"]))
        for s in range(self.max_stages):
            for k in LEG_COLUMNS:
                cols[f"leg{s + 1}_{k.removeprefix('leg_')}"] = pa.array(rows[k][:, s])
        return pa.table(cols)

    def flush(self):
        """Hand the buffered parcels to the writer thread, to be written in parcel id order as a
        row group of the Parquet file (Parquet encoding releases the GIL: on a second core it
        overlaps the simulation). One chunk at a time is in the writer's hands, so memory holds
        at most two chunks; chunks are written in the order they were flushed."""
        if not self._buf or self.path is None:
            return
        chunks, self._buf, self._buffered = self._buf, [], 0
        self.rows_written += sum(c["parcel_id"].size for c in chunks)
        self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parcel-sink")
        self._pending = self._pool.submit(self._write, chunks)

    def _wait(self):
        """Wait for the chunk being written; its error, if any, is raised here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _write(self, chunks: list[dict[str, np.ndarray]]):
        merged = {k: np.concatenate([b[k] for b in chunks]) for k in chunks[0]}
        order = np.argsort(merged["parcel_id"], kind="stable")
        merged = {k: v[order] for k, v in merged.items()}
        table = self._table(merged)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=self.chunk_rows)

    def close(self, in_flight: dict[str, np.ndarray] | None = None):
        """Write what is buffered plus the parcels still in flight, and close the file. Closing a
        closed sink does nothing (a second close must not overwrite the file with an empty one)."""
        if self.path is None or self.closed:
            return
        if in_flight is not None and in_flight["parcel_id"].size:
            self._buf.append(in_flight)
            self._buffered += in_flight["parcel_id"].size
        self.flush()
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        if self._writer is None:  # nothing at all: still write an empty file with the schema
            empty = {k: np.zeros(0, dtype=t) for k, t in COLUMNS.items()}
            empty.update({k: np.zeros((0, self.max_stages), dtype=t) for k, t in LEG_COLUMNS.items()})
            table = self._table(empty)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.close()
        self._writer = None
        self.closed = True
