"""Colours, labels and number formats shared by the app's components.

One place for how things look, so the map's legend, the time-series plots and the tables
agree (a mode is the same colour everywhere, a channel has one label everywhere).
"""

from __future__ import annotations

import math

# transport modes (market.world.MODES); unknown modes get a grey
MODE_COLORS = {
    "truck": "#8c564b",
    "postal": "#ff7f0e",
    "express_air": "#9467bd",
    "dedicated_line": "#17becf",
    "sea": "#1f77b4",
    "rail": "#2ca02c",
    "last_mile": "#bcbd22",
}
MODE_LABELS = {
    "truck": "Truck",
    "postal": "Postal",
    "express_air": "Express air",
    "dedicated_line": "Dedicated line",
    "sea": "Sea (bulk)",
    "rail": "Rail (bulk)",
    "last_mile": "Last mile",
}

CHANNEL_COLORS = {
    "postal": "#ff7f0e",
    "express": "#9467bd",
    "dedicated_line": "#17becf",
    "overseas_warehouse": "#1b9e77",
    "border_warehouse": "#d95f02",
    "bonded_warehouse": "#7570b3",
}
CHANNEL_LABELS = {
    "postal": "Postal",
    "express": "Express",
    "dedicated_line": "Dedicated line",
    "overseas_warehouse": "Overseas warehouse",
    "border_warehouse": "Border warehouse",
    "bonded_warehouse": "Bonded (FTZ) warehouse",
}

# node kinds of the world graph: marker, face colour, size (points^2)
NODE_STYLE = {
    "origin": {"marker": "s", "color": "#3b4cc0", "size": 70, "label": "Seller cluster (origin)"},
    "gateway": {"marker": "^", "color": "#6b6b6b", "size": 60, "label": "Gateway (air hub, port, rail)"},
    "border": {"marker": "D", "color": "#e08214", "size": 60, "label": "Border crossing"},
    "warehouse": {"marker": "h", "color": "#1b9e77", "size": 110, "label": "Warehouse"},
    "market": {"marker": "o", "color": "#e7298a", "size": 150, "label": "Consumer market"},
}
WAREHOUSE_COLORS = {"overseas": "#1b9e77", "border": "#d95f02", "bonded": "#7570b3"}
WAREHOUSE_LABELS = {"overseas": "Overseas warehouse", "border": "Border warehouse", "bonded": "Bonded / FTZ warehouse"}

DISRUPTED = "#d62728"
IDLE = "#c9ccd1"
INK = "#263238"
MUTED = "#78909c"
GRID = "#e6e9ed"
ACCENT = "#1565c0"

# a qualitative palette for series that are not modes or channels (integrators, agents)
SERIES = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#4e342e", "#ad1457"]

ROLE_LABELS = {
    "merchant": "Merchant",
    "carrier": "Carrier (3PL)",
    "warehouse_operator": "Warehouse operator",
    "customs_agent": "Customs broker",
    "integrator": "4PL integrator",
}


def mode_color(mode: str) -> str:
    """The colour of a transport mode in charts and on the map."""
    return MODE_COLORS.get(mode, "#888888")


def mode_label(mode: str) -> str:
    """A readable name of a transport mode."""
    return MODE_LABELS.get(mode, mode.replace("_", " ").capitalize())


def channel_color(channel: str, i: int = 0) -> str:
    """The colour of a fulfilment channel (else the ``i``-th series colour)."""
    return CHANNEL_COLORS.get(channel, SERIES[i % len(SERIES)])


def channel_label(channel: str) -> str:
    """A readable name of a fulfilment channel."""
    return CHANNEL_LABELS.get(channel, channel.replace("_", " ").capitalize())


def humanize(key: str) -> str:
    """``merchants.diy_handoff_delay`` -> ``DIY hand-off delay``-ish: the last part, readable."""
    last = key.rsplit(".", 1)[-1].replace("_", " ")
    words = {"diy": "DIY", "4pl": "4PL", "p95": "p95"}
    out = " ".join(words.get(w, w) for w in last.split())
    return out[:1].upper() + out[1:]


def node_label(node_id: str, data: dict) -> str:
    """A short label: gateways by code (SZX, RTM...), the rest by a shortened name."""
    kind = data.get("kind")
    name = str(data.get("name", node_id))
    if kind == "gateway":
        code = node_id.split("_")[0]
        return code.upper() if len(code) <= 3 else code.capitalize()  # IATA-like codes in capitals
    if kind == "border":
        return name.split(" border crossing")[0]
    if kind == "origin":
        return name.split(" (")[0].replace(" seller cluster", " sellers")
    if kind == "warehouse":
        return name.split(" (")[0].replace("bonded free-trade zone", "FTZ").replace(" warehouse", " WH")
    return name.split(" (")[0]


# ---------------------------------------------------------------- numbers


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_int(x) -> str:
    """A whole number with thousands separators ("–" if missing)."""
    return f"{int(round(float(x))):,}" if _finite(x) else "–"


def fmt_num(x, digits: int = 1) -> str:
    """A number with ``digits`` decimals ("–" if missing)."""
    return f"{float(x):,.{digits}f}" if _finite(x) else "–"


def fmt_pct(x, digits: int = 1) -> str:
    """A share as a percentage ("–" if missing)."""
    return f"{100 * float(x):.{digits}f}%" if _finite(x) else "–"


def fmt_usd(x, digits: int = 2) -> str:
    """A USD amount, shortened to k, M or B when large ("–" if missing)."""
    if not _finite(x):
        return "–"
    x = float(x)
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 1e9:
        return f"{sign}${a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.2f}M"
    if a >= 1e4:
        return f"{sign}${a / 1e3:,.1f}k"
    return f"{sign}${a:,.{digits}f}"


def fmt_days(x) -> str:
    """Days with one decimal ("–" if missing)."""
    return f"{float(x):.1f} d" if _finite(x) else "–"
