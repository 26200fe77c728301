"""Run one scenario headless and write its result files, all or nothing.

Files are written into a hidden staging folder next to the output folder and moved into
place only when the run has finished, so a failed or interrupted run leaves nothing behind
(see :mod:`experiments.outputs`: what may be replaced, the lock, the manifest).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w
from tqdm import tqdm

from experiments.outputs import MANIFEST, OutputError, OutputFolder, writing
from market.model import Marketplace
from market.scenario import ScenarioError, load_scenario, to_toml_dict

OUTPUT_FILES = ("summary.json", "timeseries.parquet", "parcels.parquet", "contracts.parquet",
                "config.toml", "ledger.parquet", "agents.parquet", "claims.parquet", "invoices.parquet",
                "returns.parquet", "settlements.parquet", MANIFEST)
VERSIONED = ("mesa", "numpy", "pandas", "pyarrow", "networkx", "scipy", "pydantic")

__all__ = ["OUTPUT_FILES", "OutputError", "RunResult", "run_scenario", "write_results", "package_versions"]


@dataclass
class RunResult:
    summary: dict
    model: Marketplace
    wall_seconds: float
    out: Path | None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "fourpl-market": metadata.version("fourpl-market")}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if math.isnan(x) or math.isinf(x) else x
    return x


def agents_frame(model: Marketplace) -> pd.DataFrame:
    rows = []
    for a in model.agents:
        cov = getattr(a, "tracking_coverage", None)
        rows.append({"agent_id": a.unique_id, "type": a.role, "name": a.name,
                     "group": getattr(a, "group", ""), "account": a.acct, "cash_usd": a.cash,
                     # providers: the chance they record a leg's event; 4PLs: the share of legs they saw
                     "tracking_coverage": np.nan if cov is None else float(cov)})
    return pd.DataFrame(rows).sort_values("agent_id", kind="stable").reset_index(drop=True)


def run_scenario(scenario: str | Path = "baseline", *, days: int | None = None, seed: int = 1,
                 out: str | Path | None = None, overrides: dict | None = None,
                 overwrite: bool = False, progress: bool = True) -> RunResult:
    """Run a scenario for ``days`` and write the result files into ``out``.

    Raises ScenarioError / OutputError before anything is written when the input is bad.
    ``overwrite`` replaces ``out`` only if an earlier ``fourpl run`` wrote it and it holds
    nothing else (:mod:`experiments.outputs`).
    """
    config = load_scenario(scenario, overrides)          # validate first: nothing written yet
    days = config.simulation.days if days is None else int(days)
    if days < 1:
        raise ScenarioError(f"--days must be at least 1 (got {days})")
    if out is None:
        return _run(config, days, seed, None, progress)
    with OutputFolder(out, "run", replace=overwrite) as folder:
        folder.prepare()
        result = _run(config, days, seed, folder, progress)
        folder.commit()
    result.out = Path(out)
    return result


def _run(config, days: int, seed: int, folder: OutputFolder | None, progress: bool) -> RunResult:
    staging = folder.staging if folder is not None else None
    where = folder.display if folder is not None else ""
    model = Marketplace(config, rng=seed, parcels_path=staging / "parcels.parquet" if staging else None,
                        ledger_path=staging / "ledger.parquet" if staging else None)
    with writing("parcels.parquet", where):          # the parcels and the ledger are written as the run goes
        t0 = time.perf_counter()
        with tqdm(total=days, desc=f"{config.name} seed {seed}", unit="day", disable=None if progress else True,
                  delay=2.0, leave=False, dynamic_ncols=True) as bar:
            for _ in range(days):
                model.step()
                bar.update()
                if progress and bar.n % 30 == 0:
                    bar.set_postfix(parcels=f"{model.metrics.created.sum():,}")
        wall = time.perf_counter() - t0
        summary = model.finish()
    summary["seed"] = seed
    if staging is not None:
        write_results(model, summary, staging, seed, days, where)
    return RunResult(summary, model, wall, None)


ROW_GROUP_ROWS = 1024 * 1024       # pyarrow's default largest row group


def _arrow(frame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def write_parquet_by_row_group(frame_of, rows: int, path: Path, group_rows: int = ROW_GROUP_ROWS):
    """Write a table of ``rows`` rows, made a row group at a time by ``frame_of(start, stop)`` (a
    pandas frame or an Arrow table): the same bytes as writing ``frame_of(0, rows)`` whole
    (``to_parquet(path, index=False)``, ``pq.write_table``) with the same row groups, holding one
    row group's frame in memory, not the whole table's."""
    if rows <= group_rows:
        pq.write_table(_arrow(frame_of(0, rows)), path, row_group_size=group_rows)
        return
    writer = None
    try:
        for start in range(0, rows, group_rows):
            table = _arrow(frame_of(start, min(start + group_rows, rows)))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=group_rows)
    finally:
        if writer is not None:
            writer.close()


def write_results(model: Marketplace, summary: dict, folder: Path, seed: int, days: int, where: str | Path = ""):
    """Write the result files (not the manifest) into folder; ``where`` names it in errors."""
    folder = Path(folder)
    where = where or folder
    with writing("summary.json", where), open(folder / "summary.json", "w") as fh:
        json.dump(_jsonable(summary), fh, indent=2)
        fh.write("\n")
    ts = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    with writing("timeseries.parquet", where):
        ts.to_parquet(folder / "timeseries.parquet", index=False)
    names = {a.unique_id: a.name for a in model.agents}
    with writing("contracts.parquet", where):
        model.contracts.frame(names).to_parquet(folder / "contracts.parquet", index=False)
    if model.ledger.journal_file is None:      # else written as the run went (Marketplace's ledger_path)
        with writing("ledger.parquet", where):
            write_parquet_by_row_group(model.ledger.journal, model.ledger.journal_lines(), folder / "ledger.parquet")
    with writing("agents.parquet", where):
        agents_frame(model).to_parquet(folder / "agents.parquet", index=False)
    with writing("claims.parquet", where):
        model.claims.frame(names).to_parquet(folder / "claims.parquet", index=False)
    with writing("invoices.parquet", where):
        model.credit.book.frame(model.ledger.names).to_parquet(folder / "invoices.parquet", index=False)
    with writing("returns.parquet", where):
        opened = model.returns.opened_rows()
        write_parquet_by_row_group(lambda start, stop: model.returns.frame(start, stop, opened), opened.size,
                                   folder / "returns.parquet")
    with writing("settlements.parquet", where):
        model.payments.frame().to_parquet(folder / "settlements.parquet", index=False)
    config = to_toml_dict(model.config)
    config["run"] = {"seed": seed, "days": days, "versions": package_versions()}
    with writing("config.toml", where), open(folder / "config.toml", "wb") as fh:
        tomli_w.dump(config, fh)
