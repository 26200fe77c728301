"""Property-based tests: scenario documents and ``--set`` values generated from the schema.

Every generated input, valid or not, must end one of two ways:

* it runs (a few days) and the files it writes add up: every parcel created is in the parcels
  file exactly once with one status, and each agent's cash is what the ledger journal says it
  received minus what it paid (recomputed here from ledger.parquet, not read from the summary);
* or the command exits with status 2, one line on stderr, and writes nothing.

Values come from ``market.scenario.parameter_table()`` (its types and bounds): in range, out of
range, of the wrong type (``"2"``, ``true`` for a number), NaN and infinities, negative zero,
huge integers, odd strings and dates, unknown keys; documents are written as TOML in UTF-8,
UTF-16, with a BOM, or as bytes that are no text at all. The CLI runs in-process (click's
CliRunner), so a few dozen examples take seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
import typing
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from market.scenario import (FIRST_START, LAST_START, Scenario, ScenarioError, load_scenario,
                             parameter_table, to_toml_dict)

ROWS = [r for r in parameter_table() if r["key"] != "output.parcel_chunk_rows"]
DAYS = 2
# keys that make a run slow: generated valid values stay small so each run takes a second
# (demand.size_sigma = 3 or time_elasticity x reference_days = 60 make some merchants' orders e^9 times
# the mean: valid, but a minute a day)
SMALL_RANGE = {"merchants.exporters": (0, 5), "merchants.importers": (0, 2), "demand.scale": (0.05, 3.0),
               "demand.base_orders_per_day": (0.5, 80.0), "demand.size_sigma": (0.0, 1.0),
               "demand.time_elasticity": (0.0, 0.1), "demand.reference_days": (0.0, 15.0),
               "integrators.count": (0, 3), "warehouses.space_scale": (0.05, 5.0),
               "network.capacity_scale": (0.05, 5.0)}
SMALL = {"merchants.exporters": 4, "merchants.importers": 2}
CHANNELS = ["postal", "express", "dedicated_line", "overseas_warehouse", "border_warehouse", "bonded_warehouse"]
MARKETS = ["US", "EU", "UK", "RU", "CN"]

FAST = settings(max_examples=20, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------
def _limits(row) -> tuple[float | None, float | None, bool, bool]:
    b = row["bounds"]
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if row["key"] in SMALL_RANGE:
        lo, hi = SMALL_RANGE[row["key"]]
        return lo, hi, False, False
    return lo, hi, "gt" in b, "lt" in b


def valid_value(row) -> st.SearchStrategy:
    """Values the schema allows for this key (mostly: pairs may still be in the wrong order)."""
    ann, key = row["annotation"], row["key"]
    lo, hi, lo_open, hi_open = _limits(row)
    if ann is bool:
        return st.booleans()
    if ann is int:
        return st.integers(int(lo if lo is not None else -10) + lo_open, int(hi if hi is not None else 10 ** 6) - hi_open)
    if ann is float:
        floats = st.floats(lo if lo is not None else -1e6, hi if hi is not None else 1e6,
                           exclude_min=lo_open, exclude_max=hi_open, allow_nan=False, allow_infinity=False)
        first = math.floor(lo if lo is not None else 0) + 1 if lo_open else math.ceil(lo if lo is not None else 0)
        last = min(math.ceil(hi) - 1 if hi_open else math.floor(hi if hi is not None else 100), 100)
        return floats | st.integers(first, last) if first <= last else floats      # an int is a fine float
    if typing.get_origin(ann) is typing.Literal:
        return st.sampled_from(typing.get_args(ann))
    if typing.get_origin(ann) is list and typing.get_origin(typing.get_args(ann)[0]) is typing.Literal:
        # a choice per agent in turn (e.g. integrators.pricing_by_integrator, tracking.tower_by_integrator):
        # any of the allowed words, repeated or not, up to a few more than there are agents
        return st.lists(st.sampled_from(typing.get_args(typing.get_args(ann)[0])), max_size=4)
    if ann is dt.date:
        return st.dates(FIRST_START, LAST_START)
    if typing.get_origin(ann) is tuple:
        args = typing.get_args(ann)
        if args[0] is int:
            return st.lists(st.integers(1, 4), min_size=len(args), max_size=len(args)).map(sorted)
        top = 60.0 if "days" in key else (5.0 if "aversion" in key else 1.0)
        bottom = 0.01 if "accuracy" in key else 0.0
        return st.lists(st.floats(bottom, top), min_size=len(args), max_size=len(args), unique=True).map(sorted)
    if key == "demand.weekly":
        return st.lists(st.floats(0.1, 3.0), min_size=7, max_size=7)
    if key == "demand.peaks":
        peak = st.fixed_dictionaries({"name": st.text(min_size=1, max_size=20)}, optional={
            "anchor": st.sampled_from(["date", "black_friday"]),
            "date": st.dates(dt.date(2023, 1, 1), dt.date(2023, 12, 31)).map(lambda d: d.strftime("%m-%d")),
            "width": st.floats(0.5, 60), "offset": st.floats(-60, 60), "amplitude": st.floats(0, 20),
            "markets": st.lists(st.sampled_from(MARKETS), unique=True, max_size=3)})
        return st.lists(peak, max_size=3)
    if key == "merchants.allowed_channels":
        return st.lists(st.sampled_from(CHANNELS), unique=True, max_size=4)
    if key == "merchants.export_markets":
        # markets outside China; a list of China alone is refused (tests/cli hostile inputs)
        return st.lists(st.sampled_from([m for m in MARKETS if m != "CN"]), unique=True, max_size=4)
    if key == "returns.drawback_markets":
        return st.lists(st.sampled_from(MARKETS), unique=True, max_size=5)
    if key == "currency.market_currency":
        return st.dictionaries(st.sampled_from(MARKETS), st.sampled_from(["USD", "EUR", "GBP", "RUB", "CNY"]))
    if key in ("currency.start_per_usd", "currency.volatility"):
        first = 1.0 if key.endswith("start_per_usd") else 0.0
        low, high = (0.001, 1000.0) if key.endswith("start_per_usd") else (0.0, 2.0)
        return st.fixed_dictionaries({"USD": st.just(first), **{c: st.floats(low, high) for c in
                                                               ("EUR", "GBP", "RUB", "CNY")}})
    raise AssertionError(f"no strategy for {key}: {ann}")


ODD_TEXT = st.sampled_from(["", " ", "2", "1e3", "true", "nan", "inf", "[1, 2]", "\x00", "é€😀", "a\nb",
                            "[bold]x[/]", "../../etc", "x" * 300]) | st.text(max_size=30)
ODD_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, -1, -1e-300, 1e300, 2 ** 63,
                               -(2 ** 63) - 1, 10 ** 30, 1e-320])


def invalid_value(row) -> st.SearchStrategy:
    """Values of the wrong type, out of range, non-finite, odd strings and dates."""
    lo, hi, _, _ = _limits(row)
    b = row["bounds"]
    outside = []
    if b.get("le", b.get("lt")) is not None:
        top = b.get("le", b.get("lt"))
        outside.append(st.floats(top, top * 10 + 10, exclude_min="le" in b, allow_nan=False))
    if b.get("ge", b.get("gt")) is not None:
        bottom = b.get("ge", b.get("gt"))
        outside.append(st.floats(bottom - 1000, bottom, exclude_max="ge" in b, allow_nan=False))
    return st.one_of(
        ODD_NUMBERS, ODD_TEXT, st.booleans(), st.integers(-10 ** 40, 10 ** 40), *outside,
        st.lists(st.integers(0, 3), max_size=8), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)), st.datetimes(), st.times(),
    )


def any_value(row) -> st.SearchStrategy:
    return st.one_of(valid_value(row), valid_value(row), invalid_value(row))     # two thirds valid


def set_path(doc: dict, dotted: str, value):
    *head, last = dotted.split(".")
    node = doc
    for k in head:
        node = node.setdefault(k, {})
    node[last] = value


@st.composite
def shocks(draw, clean: bool) -> list[dict]:
    """Zero or one shock: clean, one that applies on a day of the run to lanes or markets that
    exist; otherwise any day or date, any duration, selectors that exist or not."""
    if not draw(st.booleans()):
        return []
    if clean:
        shock = {"name": draw(st.text(min_size=1, max_size=10)),
                 "kind": draw(st.sampled_from(["capacity", "transit", "cost", "risk"])),
                 "factor": draw(st.floats(0, 100)), "modes": [draw(st.sampled_from(["sea", "rail", "express_air", "truck"]))]}
        if draw(st.booleans()):
            shock = {"name": shock["name"], "kind": "demand", "factor": shock["factor"],
                     "markets": draw(st.lists(st.sampled_from(MARKETS), min_size=1, max_size=2, unique=True))}
        if draw(st.booleans()):
            shock["day"] = draw(st.integers(0, 364))
        else:
            shock["start"] = draw(st.dates(dt.date(2023, 6, 1), dt.date(2024, 12, 30)))
            shock["days"] = draw(st.integers(250, 10 ** 12))         # it reaches into 2024
        return [shock]
    shock = {"name": draw(st.text(max_size=10)),
             "kind": draw(st.sampled_from(["capacity", "transit", "demand", "cost", "risk", "clearance", "nonsense"])),
             "factor": draw(st.floats(0, 100) | ODD_NUMBERS)}
    if draw(st.booleans()):
        shock["day"] = draw(st.integers(-5, 4000))
    else:
        shock["start"] = draw(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)) | st.dates(dt.date(2023, 12, 1), dt.date(2024, 1, 10)))
    if draw(st.booleans()):
        shock["days"] = draw(st.integers(-1, 10 ** 12))
    selector = draw(st.sampled_from(["modes", "markets", "nodes", "territories", None]))
    if selector:
        shock[selector] = draw(st.lists(st.sampled_from(["sea", "rail", "air", "express_air", "US", "EU", "CN", "XX", "Shenzhen"]),
                                        min_size=1, max_size=2))
    return [shock]


@st.composite
def documents(draw, clean: bool | None = None) -> dict:
    """A scenario document extending the baseline: a few keys set, maybe an unknown key and a shock.

    Half the documents are clean (every value in range: they should run), the others have
    values of any kind, odd names, unknown keys and shocks that may never apply.
    """
    if clean is None:
        clean = draw(st.booleans())
    doc = {"extends": "baseline"}
    if draw(st.booleans()):
        doc["name"] = draw(st.sampled_from(["generated", "g-1", "a b", "Ünïcode €"]) if clean else ODD_TEXT)
    for k, v in SMALL.items():
        set_path(doc, k, v)
    for row in draw(st.lists(st.sampled_from(ROWS), min_size=1, max_size=4, unique_by=lambda r: r["key"])):
        set_path(doc, row["key"], draw(valid_value(row) if clean else any_value(row)))
    if not clean and draw(st.integers(0, 3)) == 0:
        section = draw(st.sampled_from(["demand", "merchants", "market", "nope"]))
        doc.setdefault(section, {})[draw(st.text(min_size=1, max_size=8))] = 1
    doc["shocks"] = draw(shocks(clean))
    if not doc["shocks"]:
        del doc["shocks"]
    return doc


def encode(doc: dict, how: str) -> bytes:
    text = tomli_w.dumps(doc)
    if how == "utf-8":
        return text.encode()
    if how == "utf-8-bom":
        return text.encode("utf-8-sig")
    if how == "utf-16":
        return text.encode("utf-16")
    return b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + text.encode()[:50]         # a binary file


# ------------------------------------------------------------------------------------------
# the two outcomes
# ------------------------------------------------------------------------------------------
def invoke(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback
        tb = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"fourpl {' '.join(args)[:500]} raised instead of exiting 2:\n{tb}")
    return result


def check_refused(result, folder: Path, before: set[str], out: Path):
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {result.stderr[:2000]!r}"
    assert lines[0].startswith("error: ") and len(lines[0]) <= 1100, lines[0][:300]
    assert "Traceback" not in result.stderr
    assert not out.exists(), "a refused run wrote its output folder"
    assert {p.name for p in folder.iterdir()} == before, "a refused run left files behind"


def check_conserved(out: Path):
    """Parcels and money add up, recomputed from the files (not from the summary's own totals)."""
    import json
    summary = json.loads((out / "summary.json").read_text())
    parcels = pd.read_parquet(out / "parcels.parquet", columns=["parcel_id", "status"])
    assert parcels["parcel_id"].is_unique
    counts = parcels["status"].astype(str).value_counts()
    assert len(parcels) == summary["parcels_created"]
    assert counts.get("delivered", 0) == summary["parcels_delivered"]
    assert counts.get("lost", 0) == summary["parcels_lost"]
    assert len(parcels) - counts.get("delivered", 0) - counts.get("lost", 0) == summary["parcels_in_transit"]
    ledger = pd.read_parquet(out / "ledger.parquet", columns=["payer", "payee", "amount_cents"])
    assert (ledger["amount_cents"] >= 0).all()
    received = ledger.groupby("payee")["amount_cents"].sum()
    paid = ledger.groupby("payer")["amount_cents"].sum()
    balance = received.sub(paid, fill_value=0)
    assert int(balance.sum()) == 0                  # every cent paid is a cent received
    agents = pd.read_parquet(out / "agents.parquet", columns=["account", "cash_usd"])
    for acct, cash in zip(agents["account"], agents["cash_usd"]):
        assert round(cash * 100) == int(balance.get(acct, 0)), f"account {acct}: cash {cash} vs the journal"


def run_either_way(args: list[str], folder: Path):
    out = folder / "out"
    before = {p.name for p in folder.iterdir()}
    result = invoke(["run", "--days", str(DAYS), "--seed", "3", "-q", "--out", str(out), *args])
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr[:2000])
    event("ran" if result.exit_code == 0 else "refused")      # --hypothesis-show-statistics shows the mix
    if result.exit_code == 2:
        check_refused(result, folder, before, out)
    else:
        check_conserved(out)
    return result.exit_code


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------
@FAST
@given(doc=documents(), how=st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8", "utf-8-bom", "utf-16", "binary"]))
def test_scenario_files_run_or_are_refused_in_one_line(doc, how):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "generated.toml"
        path.write_bytes(encode(doc, how))
        run_either_way(["--scenario", str(path)], folder)


def toml_text(value) -> str:
    return tomli_w.dumps({"v": value})[len("v = "):].strip()


@st.composite
def set_options(draw) -> list[str]:
    out = []
    clean = draw(st.booleans())
    rows = draw(st.lists(st.sampled_from(ROWS), min_size=1, max_size=3, unique_by=lambda r: r["key"]))
    for row in rows:
        if clean:
            text = toml_text(draw(valid_value(row)))
        elif draw(st.integers(0, 5)) == 0:
            text = draw(ODD_TEXT)                      # raw text, TOML or not
        else:
            text = toml_text(draw(any_value(row)))
        out += ["--set", f"{row['key']}={text}"]
    keys = {r["key"] for r in rows}
    for k, v in SMALL.items():
        if k not in keys:
            out += ["--set", f"{k}={v}"]
    if not clean and draw(st.integers(0, 3)) == 0:
        out += ["--set", draw(st.sampled_from(["extends=no-4pl", "demand.scael=2", "=3", "noequals", "demand.scale.x=1",
                                                "demand=5", "nope.deeper.key=1", "name=\"../x\""]))]
    return out


@FAST
@given(sets=set_options())
def test_set_values_run_or_are_refused_in_one_line(sets):
    with tempfile.TemporaryDirectory() as tmp:
        run_either_way(sets, Path(tmp))


@settings(max_examples=200, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=documents())
def test_library_accepts_or_refuses_in_one_line_and_round_trips(doc):
    """In-process and fast: many more documents through load_scenario.

    A refusal is one short line; an accepted scenario survives what the tools do with it:
    re-validation of its dump (``load_scenario(scn, overrides)``) and config.toml written and
    read back give the same scenario.
    """
    overrides = {}

    def flat(prefix, node):
        for k, v in node.items():
            if isinstance(v, dict) and prefix == "" and k not in ("shocks",):
                flat(f"{k}.", v)
            else:
                overrides[f"{prefix}{k}"] = v
    flat("", {k: v for k, v in doc.items() if k != "extends"})
    try:
        scn = load_scenario("baseline", overrides)
    except ScenarioError as exc:
        event("refused")
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg and len(msg) <= 1000, msg[:300]
        return
    event("accepted")
    assert isinstance(scn, Scenario)
    for v in (scn.demand.scale, scn.merchants.cash, scn.carriers.markup):
        assert math.isfinite(v)
    again = load_scenario(scn, {"demand.scale": scn.demand.scale})
    assert again == scn
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "config.toml"
        f.write_text(tomli_w.dumps(to_toml_dict(scn)))
        assert load_scenario(str(f)) == scn


NUMBERS = [r for r in ROWS if r["annotation"] in (int, float)]


@pytest.mark.parametrize("row", NUMBERS, ids=[r["key"] for r in NUMBERS])
def test_every_parameter_refuses_nan_and_infinity(row):
    """No key takes a non-finite number, whether or not it has an upper bound."""
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ScenarioError, match=row["key"].replace(".", r"\.")) as e:
            load_scenario("baseline", {row["key"]: bad})
        if row["annotation"] is float:               # said as it is, not as "less than or equal to ..."
            assert "finite number" in str(e.value)
