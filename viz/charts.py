"""Matplotlib charts of the daily series, drawn server-side into PNG bytes.

Each ``chart_*`` function takes the model's daily series (``model.datacollector.model_vars``:
column -> list) and returns a :class:`matplotlib.figure.Figure`; :func:`png` turns a figure
into PNG bytes. Figures are built with the object-oriented API (no pyplot state), so several
sessions and the play thread can draw at once. A column the engine does not (yet) produce is
skipped; a chart with nothing to show says so.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from viz import style

DPI = 100
PNG_COMPRESSION = 3  # zlib level: fast to encode; these images only travel to a local browser
CHART_SIZE = (5.8, 2.8)  # inches at DPI: 580 x 280 px, about the size a chart card shows
FONT = {"font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
        "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "axes.edgecolor": "#b0bec5",
        "text.color": style.INK, "axes.labelcolor": style.INK}
LEGEND_RIGHT = 0.71  # the plot area ends here; the legend sits to its right


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, drawn with Agg (one draw, no tight-bbox second pass)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, pil_kwargs={"compress_level": PNG_COMPRESSION})
    return buf.getvalue()


def themed(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw with the app's font sizes and colours (a matplotlib rc context, not global state)."""

    def wrapper(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(FONT):
            return draw(*args, **kwargs)

    wrapper.__name__ = draw.__name__
    wrapper.__doc__ = draw.__doc__
    return wrapper


def new_figure(size=CHART_SIZE, legend_right: bool = True) -> tuple[Figure, object]:
    """A blank chart (figure and styled axes), leaving room on the right for a legend unless told not to."""
    fig = Figure(figsize=size, dpi=DPI, facecolor="white")
    ax = fig.add_subplot(1, 1, 1)
    _style_axes(ax)
    fig.subplots_adjust(left=0.12, right=LEGEND_RIGHT if legend_right else 0.98, top=0.96, bottom=0.12)
    return fig, ax


def _style_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#b0bec5")
    ax.tick_params(colors=style.INK, labelsize=7.5, length=3)
    ax.grid(True, color=style.GRID, linewidth=0.8)
    ax.set_axisbelow(True)


# ---------------------------------------------------------------- the x axis


def dates_of(cols: dict) -> np.ndarray:
    """The series' x values: calendar dates (datetime64[D])."""
    if "date" in cols and cols["date"]:
        try:
            return np.array(cols["date"], dtype="datetime64[D]")
        except (ValueError, TypeError):
            pass
    n = len(next(iter(cols.values()), []))
    return np.arange(n)


def _date_axis(ax, x) -> None:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.datetime64):
        span = int((x[-1] - x[0]) / np.timedelta64(1, "D")) if len(x) else 0
        if span < 12:  # a few days: one tick a day (AutoDateLocator would go to hours)
            ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, span // 6 + 1)))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        else:
            loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, show_offset=False))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("day")
    if len(x):  # the run so far, whatever is drawn (NaN-only series leave no data limits)
        pad = np.timedelta64(1, "D") if np.issubdtype(x.dtype, np.datetime64) else 1
        ax.set_xlim(x[0] - pad, x[-1] + pad) if len(x) < 3 else ax.set_xlim(x[0], x[-1])


def _arr(cols: dict, key: str, scale: float = 1.0) -> np.ndarray | None:
    v = cols.get(key)
    if v is None:
        return None
    try:
        return np.asarray(v, dtype=float) * scale
    except (TypeError, ValueError):
        return None


def _shade_shocks(ax, cols: dict, x) -> None:
    """Days with a shock in force, as light red bands."""
    s = cols.get("shocks_in_force")
    if not s or len(s) != len(x):
        return
    on = np.array([bool(v) for v in s])
    if not on.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        lo = x[a]
        hi = x[b - 1] + (np.timedelta64(1, "D") if np.issubdtype(np.asarray(x).dtype, np.datetime64) else 1)
        ax.axvspan(lo, hi, color=style.DISRUPTED, alpha=0.08, linewidth=0, zorder=0)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=style.MUTED, fontsize=9)


def _pct_axis(ax) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))


def _legend(ax, **kw) -> None:
    """The legend to the right of the plot area, top aligned."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        opts = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, ncol=1, handlelength=1.8,
                    borderaxespad=0.0, labelspacing=0.45, fontsize=7.5)
        opts.update(kw)
        ax.legend(**opts)


def _prefixed(cols: dict, prefix: str) -> list[str]:
    return [k[len(prefix):] for k in cols if k.startswith(prefix)]


# ---------------------------------------------------------------- the charts


@themed
def chart_parcels_by_channel(cols: dict) -> Figure:
    """Parcels created a day by channel (stacked), and parcels delivered a day (all channels)."""
    fig, ax = new_figure()
    x = dates_of(cols)
    channels = [c for c in _prefixed(cols, "created_") if _arr(cols, f"created_{c}") is not None]
    ys = [np.nan_to_num(_arr(cols, f"created_{c}")) for c in channels]
    if not len(x) or not channels:
        _empty(ax, "No days simulated yet: press Step or Play")
        return fig
    _shade_shocks(ax, cols, x)
    keep = [i for i, y in enumerate(ys) if y.any()] or list(range(len(ys)))
    labels = [style.channel_label(channels[i]) for i in keep]
    colors = [style.channel_color(channels[i], i) for i in keep]
    if len(x) < 3:  # an area needs a few days; the first days are stacked bars
        bottom = np.zeros(len(x))
        for i, lab, col in zip(keep, labels, colors):
            ax.bar(x, ys[i], bottom=bottom, width=0.6, color=col, alpha=0.85, label=lab)
            bottom = bottom + ys[i]
    else:
        ax.stackplot(x, *[ys[i] for i in keep], labels=labels, colors=colors, alpha=0.85, linewidth=0)
    delivered = _arr(cols, "parcels_delivered")
    if delivered is not None:
        ax.plot(x, delivered, color=style.INK, linewidth=1.0, label="Delivered (all channels)")
    ax.set_ylabel("parcels / day")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _date_axis(ax, x)
    _legend(ax)
    return fig


@themed
def chart_lead_times(cols: dict) -> Figure:
    """Mean and 95th-percentile delivery time (days) of the parcels delivered each day."""
    fig, ax = new_figure()
    x = dates_of(cols)
    mean, p95 = _arr(cols, "mean_lead_time_days"), _arr(cols, "p95_lead_time_days")
    if not len(x) or not any(a is not None and np.isfinite(a).any() for a in (mean, p95)):
        _empty(ax, "No deliveries yet")
        return fig
    _shade_shocks(ax, cols, x)
    if p95 is not None:
        ax.plot(x, p95, color="#c62828", linewidth=1.4, label="95th percentile")
    if mean is not None:
        ax.plot(x, mean, color=style.ACCENT, linewidth=1.6, label="Mean")
    ax.set_ylabel("delivery time (days)")
    ax.set_ylim(bottom=0)
    _date_axis(ax, x)
    _legend(ax)
    return fig


@themed
def chart_on_time(cols: dict) -> Figure:
    """Share of parcels delivered within their channel's promise, daily and as a 7-day mean."""
    fig, ax = new_figure()
    x = dates_of(cols)
    y = _arr(cols, "on_time_rate", 100.0)
    if not len(x) or y is None or not np.isfinite(y).any():
        _empty(ax, "No deliveries yet")
        return fig
    _shade_shocks(ax, cols, x)
    few = len(y) < 7
    ax.plot(x, y, color="#2e7d32", linewidth=1.8 if few else 1.0, alpha=1.0 if few else 0.45, label="Daily",
            marker="o" if few else None, markersize=3)
    if not few:
        k = np.ones(7)
        ok = np.isfinite(y)
        num = np.convolve(np.where(ok, y, 0.0), k, "full")[: len(y)]
        den = np.convolve(ok.astype(float), k, "full")[: len(y)]
        ax.plot(x, np.divide(num, den, out=np.full(len(y), np.nan), where=den > 0), color="#1b5e20",
                linewidth=1.8, label="7-day mean")
    lo = np.nanmin(y) if np.isfinite(y).any() else 0.0
    ax.set_ylim(max(0.0, min(80.0, lo - 5)), 101)
    ax.set_ylabel("delivered on time")
    _pct_axis(ax)
    _date_axis(ax, x)
    _legend(ax)
    return fig


@themed
def chart_prices(cols: dict) -> Figure:
    """Mean price (USD, log scale) of a leg for a 1-kg parcel by mode: contract solid, spot dashed."""
    fig, ax = new_figure()
    x = dates_of(cols)
    modes = [m for m in _prefixed(cols, "contract_price_")] + [
        m for m in _prefixed(cols, "spot_price_") if f"contract_price_{m}" not in cols]
    drawn = 0
    if len(x):
        _shade_shocks(ax, cols, x)
        for m in modes:
            c, s = _arr(cols, f"contract_price_{m}"), _arr(cols, f"spot_price_{m}")
            color = style.mode_color(m)
            if c is not None and np.isfinite(c).any():
                ax.plot(x, c, color=color, linewidth=1.6, label=style.mode_label(m))
                drawn += 1
            if s is not None and np.isfinite(s).any():
                ax.plot(x, s, color=color, linewidth=1.0, linestyle=(0, (3, 2)),
                        label=None if c is not None and np.isfinite(c).any() else f"{style.mode_label(m)} (spot)")
                drawn += 1
    if not drawn:
        _empty(ax, "No legs priced yet")
        return fig
    ax.plot([], [], color=style.MUTED, linewidth=1.6, label="contract")
    ax.plot([], [], color=style.MUTED, linewidth=1.0, linestyle=(0, (3, 2)), label="spot")
    ax.set_ylabel("USD per 1-kg parcel leg")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.2g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    _date_axis(ax, x)
    _legend(ax)
    return fig


@themed
def chart_integrators(cols: dict) -> Figure:
    """Each integrator's markup (dashed) and share of parcels, and the 4PL share of all parcels."""
    fig, ax = new_figure()
    x = dates_of(cols)
    names = _prefixed(cols, "markup_")
    share = _arr(cols, "fourpl_share", 100.0)
    if not len(x):
        _empty(ax, "No days simulated yet")
        return fig
    if not names and (share is None or not np.isfinite(share).any()):
        _empty(ax, "No 4PL integrator in this scenario")
        return fig
    _shade_shocks(ax, cols, x)
    if share is not None:
        ax.plot(x, share, color=style.INK, linewidth=1.8, label="4PL share of parcels (all)")
    for i, name in enumerate(names):
        color = style.SERIES[i % len(style.SERIES)]
        mk = _arr(cols, f"markup_{name}", 100.0)
        if mk is not None:
            ax.plot(x, mk, color=color, linewidth=1.4, linestyle=(0, (3, 2)), label=f"{name} markup")
        sh = _arr(cols, f"share_{name}", 100.0)
        if sh is not None and len(names) > 1:
            ax.plot(x, sh, color=color, linewidth=1.4, label=f"{name} share")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("percent")
    _pct_axis(ax)
    _date_axis(ax, x)
    _legend(ax)
    return fig


@themed
def chart_utilisation(cols: dict) -> Figure:
    """Capacity used on parcel lanes by mode, and each warehouse's space holding stock (dashed)."""
    fig, ax = new_figure()
    x = dates_of(cols)
    drawn = 0
    if len(x):
        _shade_shocks(ax, cols, x)
        for m in _prefixed(cols, "utilisation_"):
            y = _arr(cols, f"utilisation_{m}", 100.0)
            if y is not None and np.isfinite(y).any():
                ax.plot(x, y, color=style.mode_color(m), linewidth=1.5, label=style.mode_label(m))
                drawn += 1
        # warehouses: the share of their storage space holding stock (dashed)
        for i, node in enumerate(_prefixed(cols, "space_used_")):
            y = _arr(cols, f"space_used_{node}", 100.0)
            if y is not None and np.isfinite(y).any():
                ax.plot(x, y, color=style.SERIES[i % len(style.SERIES)], linewidth=1.2, linestyle=(0, (3, 2)),
                        label=f"space {node}")
                drawn += 1
    if not drawn:
        _empty(ax, "No capacity used yet")
        return fig
    ax.set_ylim(bottom=0)
    ax.set_ylabel("capacity used")
    _pct_axis(ax)
    _date_axis(ax, x)
    _legend(ax)
    return fig


@dataclass(frozen=True)
class ChartSpec:
    """A chart of the dashboard: its key, the title and subtitle its card shows, how to draw it."""

    key: str
    title: str
    subtitle: str
    draw: Callable[[dict], Figure]


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("parcels", "Parcels a day by channel", "orders shipped each day (stacked), and parcels delivered",
              chart_parcels_by_channel),
    ChartSpec("lead", "Delivery time", "mean and 95th percentile of parcels delivered that day", chart_lead_times),
    ChartSpec("ontime", "On-time rate", "share of parcels delivered within the channel's promise", chart_on_time),
    ChartSpec("prices", "Contract and spot prices by mode",
              "mean price of a leg for a 1-kg parcel: contract (solid) and spot (dashed)", chart_prices),
    ChartSpec("integrators", "Integrator markups and 4PL share",
              "each 4PL's markup on its cost (dashed) and its share of parcels", chart_integrators),
    ChartSpec("utilisation", "Provider utilisation",
              "capacity used on parcel lanes by mode; warehouse space holding stock (dashed)", chart_utilisation),
)
CHART_BY_KEY = {c.key: c for c in CHARTS}


def chart_png(key: str, cols: dict) -> bytes:
    """The chart ``key`` of these daily series, as PNG bytes."""
    return png(CHART_BY_KEY[key].draw(cols))


# ---------------------------------------------------------------- one agent over time


@themed
def chart_agent(dates, cash, pnl, volume, volume_kg, reputation, utilisation=None, role: str = "") -> Figure:
    """Cash and cumulative profit; volume a day (and utilisation); reputation, for one agent."""
    fig = Figure(figsize=(6.6, 5.4), dpi=DPI, facecolor="white")
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.2, 1.0, 0.8], "hspace": 0.18})
    fig.subplots_adjust(left=0.14, right=0.86, top=0.93, bottom=0.07)
    x = np.asarray(dates, dtype="datetime64[D]") if len(dates) else np.arange(0)
    for ax in axes:
        _style_axes(ax)
    money, vol, rep = axes
    if not len(x):
        _empty(money, "Nothing recorded yet")
        return fig
    usd = FuncFormatter(lambda v, _: style.fmt_usd(v, 0))
    money.plot(x, cash, color=style.ACCENT, linewidth=1.8, label="Cash (left)", zorder=3)
    money.yaxis.set_major_formatter(usd)
    money.set_ylabel("cash (USD)", color=style.ACCENT)
    money.set_zorder(2)
    money.patch.set_visible(False)  # the bars on the twin axis show through
    handles = list(money.get_lines())
    if pnl is not None and np.isfinite(pnl).any():
        day = money.twinx()
        day.set_zorder(1)
        p = np.nan_to_num(pnl)
        # filled steps, not one bar per day: a bar chart of a year is hundreds of patches to draw
        day.fill_between(x, 0, np.maximum(p, 0), step="mid", color="#a5d6a7", linewidth=0,
                         label="Profit that day (right)")
        day.fill_between(x, 0, np.minimum(p, 0), step="mid", color="#ef9a9a", linewidth=0)
        day.axhline(0, color="#90a4ae", linewidth=0.6)
        day.yaxis.set_major_formatter(usd)
        day.set_ylabel("profit a day (USD)", color="#2e7d32")
        day.spines["top"].set_visible(False)
        day.tick_params(labelsize=7.5)
        handles.append(day.collections[0])
    money.legend(handles=handles, labels=["Cash (left)", "Profit that day (right)"][: len(handles)],
                 loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, fontsize=7.5, ncol=2,
                 borderaxespad=0.2)

    unit = "parcels / day" if role in ("merchant", "integrator") else "units served / day"
    vol.fill_between(x, 0, np.nan_to_num(volume), step="mid", color="#90caf9", linewidth=0,
                     label=unit.replace(" / day", ""))
    vol.set_ylabel(unit)
    vol.set_ylim(bottom=0)
    if volume_kg is not None and np.isfinite(volume_kg).any():
        kg = vol.twinx()
        kg.plot(x, volume_kg / 1000.0, color=style.mode_color("sea"), linewidth=1.3, label="bulk tonnes / day")
        kg.set_ylabel("bulk t / day", color=style.mode_color("sea"))
        kg.set_ylim(bottom=0)
        kg.spines["top"].set_visible(False)
        kg.tick_params(labelsize=7.5)
    elif utilisation is not None and np.isfinite(utilisation).any():
        ut = vol.twinx()
        ut.plot(x, 100 * utilisation, color="#ef6c00", linewidth=1.3)
        ut.set_ylabel("utilisation", color="#ef6c00")
        ut.set_ylim(0, max(100.0, float(np.nanmax(100 * utilisation)) * 1.05))
        ut.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
        ut.spines["top"].set_visible(False)
        ut.tick_params(labelsize=7.5)

    if reputation is not None and np.isfinite(reputation).any():
        rep.plot(x, reputation, color="#6a1b9a", linewidth=1.6)
        lo = float(np.nanmin(reputation))
        rep.set_ylim(max(0.0, min(lo - 0.05, 0.5)), 1.0)
    else:
        _empty(rep, "No reputation record")
    rep.set_ylabel("reputation (0-1)")
    _date_axis(rep, x)
    return fig
