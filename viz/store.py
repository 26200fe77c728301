"""The runs a browser session keeps: survives a page reload, dies with the abandoned session.

A browser session is Solara's session id (a cookie): a reload opens a new kernel in the same
session, and :func:`store_for` gives it back the same :class:`RunStore` (the runs kept, the
folders opened, the live model where it was). When a session's last kernel closes (the page
was closed; Solara culls a disconnected kernel after ``SOLARA_KERNEL_CULL_TIMEOUT``, which
``viz.serve`` sets short), :func:`kernel_closed` stops its live model at once (a playing model
stops computing) and the store is dropped ``ABANDONED_AFTER`` seconds later unless a kernel of
the session came back (:func:`drop_abandoned`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from viz.runs import Run, Sweep

ABANDONED_AFTER = 600.0  # seconds without a kernel before a session's store is dropped
MAX_RUNS = 24  # kept per session (the oldest are dropped first)


@dataclass
class SweepPoint:
    """A design point of a loaded sweep, over the chosen replications: a mean run with bands."""

    sweep: Sweep
    point: int
    replications: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        reps = "all" if self.replications is None else ",".join(map(str, self.replications))
        return f"sweep:{self.sweep.folder.resolve()}:point{self.point}:{reps}"

    @property
    def label(self) -> str:
        lab = dict(self.sweep.points).get(self.point, str(self.point))
        n = len(self.sweep.run_ids(self.point, list(self.replications) if self.replications else None))
        return f"{self.sweep.name} · {lab} (mean of {n})"

    def as_run(self) -> Run:
        """The mean daily record over the replications (numeric columns), as a Run."""
        ids = self.sweep.run_ids(self.point, list(self.replications) if self.replications else None)
        d = self.sweep.daily[self.sweep.daily["run_id"].isin(ids)]
        x = "date" if "date" in d.columns else "day"
        num = d.drop(columns=[c for c in ("run_id", "scenario") if c in d.columns])
        shocks = num.pop("shocks_in_force") if "shocks_in_force" in num.columns else None
        mean = num.groupby(x, sort=True).mean(numeric_only=True).reset_index()
        if shocks is not None:
            first = d[d["run_id"] == ids[0]] if ids else d.iloc[:0]
            mean["shocks_in_force"] = first.set_index(x)["shocks_in_force"].reindex(mean[x]).fillna("").values
        one = self.sweep.run(ids[0]) if ids else None
        return Run(key=self.key, label=self.label, scenario=one.scenario if one else "?", seed=None,
                   params=one.params if one else {}, daily=mean, source=str(self.sweep.folder))


@dataclass
class Entry:
    """A kept run: a :class:`Run`, or a sweep point (shown with confidence bands)."""

    run: Run
    point: SweepPoint | None = None

    @property
    def key(self) -> str:
        return self.run.key


@dataclass
class RunStore:
    """One browser session's runs, the folders it opened, and its live model."""

    entries: "OrderedDict[str, Entry]" = field(default_factory=OrderedDict)
    selected: list[str] = field(default_factory=list)  # overlaid on the charts
    opened: list[str] = field(default_factory=list)  # folders opened (reloaded on demand)
    model: Any = None  # the live model (kept across a reload)
    settings: dict | None = None
    kernels: set = field(default_factory=set)
    last_seen: float = field(default_factory=time.monotonic)
    version: int = 0  # bumped on every change

    def add(self, run: Run, point: SweepPoint | None = None, select: bool = True) -> Entry:
        e = Entry(run, point)
        self.entries[run.key] = e
        self.entries.move_to_end(run.key)
        while len(self.entries) > MAX_RUNS:
            old, _ = self.entries.popitem(last=False)
            if old in self.selected:
                self.selected.remove(old)
        if select and run.key not in self.selected:
            self.selected.append(run.key)
        self.version += 1
        return e

    def remove(self, key: str) -> None:
        self.entries.pop(key, None)
        if key in self.selected:
            self.selected.remove(key)
        self.version += 1

    def select(self, keys: list[str]) -> None:
        self.selected = [k for k in keys if k in self.entries]
        self.version += 1

    def chosen(self) -> list[Entry]:
        return [self.entries[k] for k in self.selected if k in self.entries]

    def stop_model(self) -> None:
        """A playing model stops after the step it is in (Mesa's controller loops on running)."""
        m = self.model
        if m is not None:
            m.running = False
            m.app_stopped = True


_STORES: dict[str, RunStore] = {}
_LOCK = threading.Lock()


def store_for(session_id: str) -> RunStore:
    with _LOCK:
        st = _STORES.get(session_id)
        if st is None:
            st = _STORES[session_id] = RunStore()
        st.last_seen = time.monotonic()
        return st


def sessions() -> dict[str, RunStore]:
    return dict(_STORES)


def kernel_opened(session_id: str, kernel_id: str) -> RunStore:
    st = store_for(session_id)
    with _LOCK:
        st.kernels.add(kernel_id)
    return st


def kernel_closed(session_id: str, kernel_id: str, now: float | None = None) -> None:
    """A kernel of the session closed: with none left, its live model stops computing."""
    with _LOCK:
        st = _STORES.get(session_id)
        if st is None:
            return
        st.kernels.discard(kernel_id)
        st.last_seen = time.monotonic() if now is None else now
        if not st.kernels:
            st.stop_model()


def drop_abandoned(now: float | None = None, after: float = ABANDONED_AFTER) -> list[str]:
    """Forget the stores of sessions with no kernel for ``after`` seconds (frees their memory)."""
    now = time.monotonic() if now is None else now
    gone = []
    with _LOCK:
        for sid, st in list(_STORES.items()):
            if not st.kernels and now - st.last_seen >= after:
                st.stop_model()
                del _STORES[sid]
                gone.append(sid)
    return gone


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as CSV (UTF-8, no index), for a download button."""
    return df.to_csv(index=False).encode("utf-8")


def add_all_points(store: RunStore, sweep: Sweep) -> None:
    """Keep every design point of a sweep (all replications)."""
    for p, _lab in sweep.points:
        sp = SweepPoint(sweep, int(p), None)
        store.add(sp.as_run(), point=sp)
