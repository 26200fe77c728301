"""Keep docs/ODD.md true to the code: its tables are generated from the schema and the world.

``python -m experiments.odd`` rewrites every block of ``docs/ODD.md`` between

    <!-- BEGIN GENERATED: NAME (python -m experiments.odd) -->
    <!-- END GENERATED: NAME -->

from the source it names: ``parameters`` (the scenario schema, :func:`market.scenario.parameter_table`),
``scenarios`` (the built-in scenario files), and ``world-*`` (the default world file,
``market/data/world.toml``: channels, sellers and products, carrier groups, lanes, warehouses,
customs and duty rules). ``--check`` only reports whether the file is up to date (exit 1 if
not); the test suite runs it, so a changed parameter or world figure fails until the docs are
regenerated.
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from pathlib import Path

from market.scenario import Scenario, builtin_scenarios, load_raw, parameter_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "ODD.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: ([a-z0-9-]+) \(python -m experiments\.odd\) -->\n)(.*?)(<!-- END GENERATED: \2 -->)",
                   re.DOTALL)


def _cell(v) -> str:
    text = str(v).replace("|", "\\|").replace("\n", " ")
    return text


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _default(v) -> str:
    if isinstance(v, (list, tuple)):
        if v and hasattr(v[0], "model_dump"):
            return f"{len(v)} entries (see schema)"
        text = "[" + ", ".join(_default(x) for x in v) + "]"
        return text if len(text) <= 48 else text[:45] + "...]"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _bounds(b: dict) -> str:
    sym = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return ", ".join(f"{sym[k]} {v:g}" for k, v in b.items()) if b else ""


def _allowed(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " / ".join(str(a) for a in typing.get_args(annotation))
    return ""


def render_parameters() -> str:
    """One table per scenario section: key, default, allowed range, unit, description, source."""
    rows_by_section: dict[str, list] = {}
    for r in parameter_table():
        section, _key = r["key"].split(".", 1)
        allowed = _allowed(r["annotation"]) or _bounds(r["bounds"])
        rows_by_section.setdefault(section, []).append(
            [f"`{r['key']}`", f"`{_default(r['default'])}`", allowed, r["unit"], r["description"],
             r["source"] if r["source"] != "assumption" else "assumption"])
    out = []
    for section, rows in rows_by_section.items():
        doc = (Scenario.model_fields[section].annotation.__dict__.get("__doc__") or "").strip().splitlines()
        out.append(f"**{section}**" + (f": {doc[0]}" if doc else "") + "\n")
        out.append(_table(["key", "default", "allowed", "unit", "meaning", "source"], rows))
    return "\n".join(out)


def render_scenarios() -> str:
    rows = []
    for name, path in builtin_scenarios().items():
        raw = load_raw(path)
        shocks = raw.get("shocks", [])
        rows.append([f"`{name}`", raw.get("description", ""), raw.get("extends", "") or "",
                     "; ".join(f"{s.get('name')} ({s.get('kind')})" for s in shocks) or ""])
    return _table(["scenario", "what it is", "extends", "shocks"], rows)


def _world():
    from market.world import load_world_spec
    return load_world_spec("world")


def _tri(t) -> str:
    return "/".join(f"{x:g}" for x in t)


def render_world_channels() -> str:
    w = _world()
    rows = [[f"`{k}`", c.label, c.kind, c.warehouse or "", c.regime, c.replenish_regime or "", c.promised_days]
            for k, c in w.channels.items()]
    return _table(["channel", "label", "kind", "warehouse", "import regime", "bulk entry regime",
                   "promised days"], rows)


def render_world_sellers() -> str:
    """Where merchants sit and sell: seller clusters, markets, product categories."""
    w = _world()
    terr = {n.id: n.territory for n in w.nodes}
    names = {n.id: n.name for n in w.nodes}
    origins = _table(["seller cluster", "name", "territory", "weight", "categories (weight)"],
                     [[f"`{o}`", names.get(o, ""), terr.get(o, ""), f"{s.weight:g}",
                       ", ".join(f"{c} {v:g}" for c, v in s.categories.items())] for o, s in w.origins.items()])
    markets = _table(["market", "node", "territory", "weight"],
                     [[f"`{k}`", names.get(m.node, m.node), terr.get(m.node, ""), f"{m.weight:g}"]
                      for k, m in w.markets.items()])
    cats = _table(["category", "retail value (USD)", "weight (kg)", "goods cost share", "inspection multiplier"],
                  [[f"`{k}`", _range(c.value), _range(c.weight), f"{c.cost_share:g}", f"{c.inspection_multiplier:g}"]
                   for k, c in w.categories.items()])
    return origins + "\n" + markets + "\n" + cats


def render_world_carriers() -> str:
    """Carrier groups: how many companies share each group's lanes, and what they serve."""
    w = _world()
    rows = []
    for g, spec in w.carrier_groups.items():
        lanes = [ln for ln in w.lanes if ln.group == g]
        modes = sorted({ln.mode for ln in lanes})
        chans = sorted({c for ln in lanes for c in ln.channels})
        rows.append([f"`{g}`", spec.label, spec.count, sum(len(ln.pairs) for ln in lanes), ", ".join(modes),
                     ", ".join(chans)])
    return _table(["carrier group", "label", "carriers", "lanes", "modes", "channels"], rows)


def _by_regime(d: dict, fmt, sep: str = "; ") -> str:
    return sep.join(f"{k} {fmt(v)}" for k, v in d.items())


def _range(r) -> str:
    return f"{r[0]:g}-{r[1]:g}"


def render_world_customs() -> str:
    """Customs per territory: clearance, inspection, holds, brokers and fees."""
    w = _world()
    rows = []
    for t, c in w.customs.items():
        fees = [f"export {c.export_fee:g}/parcel, {c.export_fee_per_shipment:g}/shipment"] \
            if c.export_fee or c.export_fee_per_shipment else []
        if c.broker_fee:
            fees.append("import per parcel: " + _by_regime(c.broker_fee, lambda v: f"{v:g}", ", "))
        if c.broker_fee_per_shipment:
            fees.append(f"import {c.broker_fee_per_shipment:g}/shipment")
        if c.inspection_fee_per_shipment:
            fees.append(f"inspection {c.inspection_fee_per_shipment:g}/shipment")
        rows.append([t, c.brokers_per_point, f"{c.broker_capacity:g}", _by_regime(c.clearance, _tri) or "-",
                     _by_regime(c.inspection, lambda v: f"{v:g}") or "-", _tri(c.inspection_days), _tri(c.hold_days),
                     "; ".join(fees) or "-", c.source])
    return _table(["territory", "brokers per point", "broker capacity/day", "clearance days by regime (min/mode/max)",
                   "inspection rate by regime", "inspection days", "hold days", "fees (USD)", "source"], rows)


def render_world_lanes() -> str:
    w = _world()
    rows = []
    for ln in w.lanes:
        cost = []
        if ln.cost_per_parcel:
            cost.append(f"{ln.cost_per_parcel:g}/parcel")
        if ln.cost_per_kg:
            cost.append(f"{ln.cost_per_kg:g}/kg")
        if ln.cost_per_shipment:
            cost.append(f"{ln.cost_per_shipment:g}/shipment")
        pairs = ", ".join(f"{u}>{v}" for u, v in ln.pairs[:2]) + (f" +{len(ln.pairs) - 2}" if len(ln.pairs) > 2 else "")
        rows.append([ln.group, ln.mode, ", ".join(ln.channels), pairs, _tri(ln.transit), " + ".join(cost),
                     f"{ln.capacity:g} {'kg' if ln.bulk else 'parcels'}/day", f"{ln.loss:g}", f"{ln.damage:g}",
                     f"{ln.delay:g}", _tri(ln.delay_days), ln.source])
    return _table(["carrier group", "mode", "channels", "lanes (from>to)", "transit days min/mode/max", "cost (USD)",
                   "capacity", "loss", "damage", "delay", "delay days", "source"], rows)


def render_world_warehouses() -> str:
    w = _world()
    kinds = {n.id: n.warehouse for n in w.nodes}
    names = {n.id: n.name for n in w.nodes}
    rows = [[f"`{k}`", names[k], kinds.get(k, ""), s.operators, f"{s.storage_units:g}", f"{s.handling_per_day:g}",
             f"{s.storage_cost_per_unit_day:g}", f"{s.peak_storage_multiplier:g}", f"{s.handling_cost:g}", s.source]
            for k, s in w.warehouses.items()]
    return _table(["warehouse", "name", "kind", "operators", "storage units", "handling/day",
                   "storage USD/unit-day", "Oct-Dec multiplier", "handling USD/unit", "source"], rows)


def render_world_duties() -> str:
    w = _world()
    rows = []
    for terr, rules in w.duty_rules.items():
        for r in rules:
            extra = []
            if r.de_minimis_excluded_origins:
                extra.append("no de minimis for " + ", ".join(r.de_minimis_excluded_origins))
            if r.extra_by_origin:
                extra.append("extra " + ", ".join(f"{k} {v:g}" for k, v in r.extra_by_origin.items()))
            for k, by_cat in r.extra_by_origin_category.items():
                extra.append(f"extra {k} by category " + ", ".join(f"{c} {v:g}" for c, v in by_cat.items()))
            if r.postal is not None:
                p = r.postal
                rates = ", ".join(f"{k} {v:g}" for k, v in p.rate_by_origin.items()) if p.rate_by_origin else "the extra rate"
                extra.append(f"postal items{' of ' + ', '.join(p.origins) if p.origins else ''}: {rates}"
                             + (" or " + "/".join(f"{b.amount:g}" for b in p.per_item) + " per item" if p.per_item else "")
                             + ("; method " + ", ".join(f"{k} {v}" for k, v in p.method.items()) if p.method else ""))
            if r.flat_per_item_below_de_minimis:
                extra.append(f"flat {r.flat_per_item_below_de_minimis:g} per item below de minimis")
            if r.excess_rate is not None:
                extra.append(f"{r.excess_rate:g} of the excess" + (f", at least {r.excess_per_kg:g} a kg over"
                                                                   if r.excess_per_kg else ""))
            if r.retail_tax is not None:
                extra.append(f"retail tax {r.retail_tax:g} up to {r.retail_limit:g}")
            cur = r.de_minimis_currency or r.currency or w.territories[terr].currency
            rows.append([terr, r.start.isoformat(), f"{r.de_minimis:g} {cur}" + (f", {r.de_minimis_weight:g} kg" if r.de_minimis_weight else ""),
                         f"{r.vat:g}" + (" (also below)" if r.vat_below_de_minimis else ""), "; ".join(extra), r.source])
    return _table(["territory", "from", "de minimis", "VAT", "special rules", "source"], rows)


RENDERERS = {
    "parameters": render_parameters,
    "scenarios": render_scenarios,
    "world-channels": render_world_channels,
    "world-sellers": render_world_sellers,
    "world-carriers": render_world_carriers,
    "world-lanes": render_world_lanes,
    "world-warehouses": render_world_warehouses,
    "world-customs": render_world_customs,
    "world-duties": render_world_duties,
}


def regenerate(text: str) -> str:
    """The document with every generated block rendered afresh."""
    def sub(m: re.Match) -> str:
        name = m.group(2)
        if name not in RENDERERS:
            raise KeyError(f"docs/ODD.md: unknown generated block '{name}' (known: {', '.join(RENDERERS)})")
        return m.group(1) + "\n" + RENDERERS[name]() + "\n" + m.group(4)
    return BLOCK.sub(sub, text)


def stale_blocks(text: str) -> list[str]:
    """Names of the generated blocks whose content differs from what the code gives now."""
    new = regenerate(text)
    old_blocks = {m.group(2): m.group(3) for m in BLOCK.finditer(text)}
    new_blocks = {m.group(2): m.group(3) for m in BLOCK.finditer(new)}
    return [k for k in new_blocks if old_blocks.get(k) != new_blocks[k]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.odd", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/ODD.md is out of date, change nothing")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    text = args.doc.read_text()
    stale = stale_blocks(text)
    if args.check:
        if stale:
            print(f"{args.doc}: generated tables out of date: {', '.join(stale)} "
                  "(run: python -m experiments.odd)", file=sys.stderr)
            return 1
        print(f"{args.doc}: up to date")
        return 0
    if stale:
        args.doc.write_text(regenerate(text))
        print(f"{args.doc}: regenerated {', '.join(stale)}")
    else:
        print(f"{args.doc}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
