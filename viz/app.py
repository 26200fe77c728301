"""The browser app: watch a 4PL marketplace run unfold, day by day.

Serve it with ``make app`` or ``fourpl app`` (http://127.0.0.1:8765), or
``solara run viz/app.py``. Built on Mesa's SolaraViz: its ``ModelController`` plays, pauses,
steps and resets the model, at the speed set in the sidebar; the components are the app's own
(``viz/components/``):

* **Overview**: the network map (today's flows, disruptions, closed crossings) and the two
  headline plots;
* **Time series**: parcels by channel, delivery times, on-time rate, contract and spot prices,
  integrator markups and shares, provider utilisation;
* **Replay**: a kept ``fourpl run`` folder scrubbed with a day slider: that day's figures, the
  map of that run and each lane's history from its files (``viz/replay.py``);
* **Market**: the latest tenders (bids and winners) and the contract book;
* **Agents**: any merchant, provider or integrator: cash, profit and loss, volume, reputation,
  choices and contracts.

The sidebar holds the scenario picker (the built-in library), the seed and sliders generated
from the scenario schema; Reset rebuilds the model with them. Each browser session runs its
own model.
"""

from __future__ import annotations

import solara
import solara.server.settings
from mesa.visualization.utils import update_counter

from viz import store as run_store
from viz.components.agent_inspector import AgentInspector
from viz.components.analysis import ChartGrid, DifferenceView, DifferingParams, Explorer
from viz.components.composition import CompositionView, menu_history_for
from viz.components.controls import Controls
from viz.components.kpis import KpiStrip
from viz.components.map_card import MapCard
from viz.components.market_view import MarketView
from viz.components.replay_view import ReplayView
from viz.components.run_panel import RunPanel
from viz.components.runs_panel import RunsPanel, open_into
from viz.components.viewport import Layout, ViewportWatch, on_viewport  # noqa: F401 - Layout: solara's page layout
from viz.runs import LoadError, Sweep, run_from_model
from viz.state import AppModel, default_settings, ui_params
from viz.store import Entry, add_all_points

TITLE = "4PL Marketplace"
SUBTITLE = "cross-border e-commerce logistics, simulated"
TABS = ("Overview", "Charts", "Breakdowns", "Compare", "Replay", "Composition", "Market", "Agents")
OVERVIEW_CHARTS = ["parcels", "ontime"]
COMPARE_CHARTS = ["parcels", "ontime", "lead", "integrators", "prices", "landed"]

# a product page, not a Solara demo: no "This website runs on Solara" banner
solara.server.settings.theme.show_banner = False

CSS = """
.fourpl-kpis { margin: 4px 0 12px 0; }
.fourpl-kpi { background: white; border-radius: 8px; padding: 6px 10px; min-width: 96px; flex: 1 1 auto;
  box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.fourpl-kpi-label { font-size: 0.66rem; letter-spacing: .04em; text-transform: uppercase; color: #78909c;
  white-space: nowrap; }
.fourpl-kpi-value { font-size: 1.2rem; font-weight: 600; color: #263238; line-height: 1.45; white-space: nowrap; }
.fourpl-kpi-sub { font-size: 0.7rem; color: #78909c; white-space: nowrap; }
.fourpl-kpi-day { border-left: 4px solid #1565c0; }
.fourpl-card .v-card__title { font-size: 1.05rem; }
.fourpl-card .v-card__subtitle { font-size: 0.8rem; }
.fourpl-param-section { font-size: 0.72rem; letter-spacing: .05em; text-transform: uppercase; color: #1565c0;
  margin: 10px 0 0 0; font-weight: 600; }
.fourpl-param .v-input__slot { margin-bottom: 0; }
.fourpl-param .v-messages { min-height: 0; }
.fourpl-param label { font-size: 0.85rem; }
.fourpl-caption { display: block; margin-top: 4px; }
.fourpl-chart-img, .fourpl-map-img, .fourpl-agent-img { display: block; max-width: 100%; height: auto; }
.fourpl-main { max-width: 1500px; }
.fourpl-wrap { flex-wrap: wrap; }
.fourpl-table-wrap, .fourpl-contracts, .fourpl-tenders { overflow-x: auto; max-width: 100%; }
.fourpl-card { overflow: hidden; }
.fourpl-card table { max-width: 100%; }
.fourpl-figure .js-plotly-plot, .fourpl-replay-map .js-plotly-plot { width: 100%; }
.fourpl-figure { min-width: 0; }
.fourpl-kept .v-input { margin-top: 0; }
.fourpl-kept label { font-size: 0.8rem; }
.fourpl-tooltip { font-size: 0.8rem; line-height: 1.35; }
.fourpl-subtitle { color: rgba(255,255,255,.75); font-size: .85rem; margin-left: 12px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; min-width: 0; }
"""


def run_label(model) -> str:
    """'scenario baseline · seed 1 · Scale 1.2': what the running model was built with."""
    labels = {p.key: p.label for p in ui_params()}
    parts = [f"scenario {model.scenario_name}", f"seed {getattr(model, 'app_seed', '?')}"]
    for key, value in (getattr(model, "app_overrides", None) or {}).items():
        parts.append(f"{labels.get(key, key)} {value}")
    return " · ".join(parts)


OPEN_ENV = "FOURPL_APP_OPEN"  # set by `fourpl app RESULTS_DIR`: the folder the page opens onto


_LOCAL = {"n": 0, "last": None}  # pages rendered outside a server (tests, benchmarks)


def _session_ids() -> tuple[str, str] | None:
    """(browser session id, kernel id), or None outside a server."""
    try:
        return solara.get_session_id(), solara.get_kernel_id()
    except Exception:  # noqa: BLE001 - solara.render without a server has no session
        return None


def _page_store():
    """The browser session's store; outside a server a new one per page (no sharing)."""
    ids = _session_ids()
    if ids is None:
        _LOCAL["n"] += 1
        st = run_store.store_for(f"local-{_LOCAL['n']}")
        _LOCAL["last"] = st
        return st
    return run_store.store_for(ids[0])


def current_store():
    """The store of the page rendered last outside a server (for tests)."""
    return _LOCAL["last"]


def _on_kernel():
    ids = _session_ids()
    if ids is None:
        return None
    sid, kid = ids
    run_store.kernel_opened(sid, kid)
    run_store.drop_abandoned()

    def closed():
        run_store.kernel_closed(sid, kid)

    return closed


try:
    solara.lab.on_kernel_start(_on_kernel)
except Exception:  # noqa: BLE001 - older solara: sessions are not tracked (runs still kept)
    pass


def _open_from_env(store) -> None:
    import os

    path = os.environ.get(OPEN_ENV, "")
    if not path or path in store.opened:
        return
    try:
        res = open_into(store, path)
    except LoadError:
        return
    if isinstance(res, Sweep):
        add_all_points(store, res)


@solara.component
def Page(model: solara.Reactive | None = None, settings: solara.Reactive | None = None):
    """The whole app: app bar, sidebar (run, runs kept, scenario, parameters) and the tabs.

    ``model`` and ``settings`` (reactive variables) let a notebook or a benchmark hand the page
    its own model; by default each browser session builds the baseline with seed 1, or finds
    its model and kept runs again after a reload.
    """
    store = solara.use_memo(_page_store, [])
    solara.use_memo(lambda: _open_from_env(store), [])

    def first_settings():
        if store.model is not None and store.settings:
            return store.settings
        return default_settings()

    initial_settings = solara.use_memo(first_settings, [])
    settings = solara.use_reactive(settings if settings is not None else initial_settings)

    def first_model():
        if model is not None:
            return None
        if store.model is not None:  # a reload: the session's model, where it was
            m = store.model
            m.running = int(m.steps) < int(getattr(m, "horizon", 10**9))
            m.app_stopped = False
            return m
        return AppModel(**settings.value)

    initial_model = solara.use_memo(first_model, [])
    model = solara.use_reactive(model if model is not None else initial_model)
    play_interval = solara.use_reactive(150)
    render_interval = solara.use_reactive(1)
    tab = solara.use_reactive(0)
    tick = solara.use_reactive(0)
    include_live = solara.use_reactive(True)
    m = model.value
    store.model = m
    for it in getattr(m, "integrators", []) or []:
        menu_history_for(m, it)
    if store.settings is None or store.settings.get("scenario_name") != settings.value.get("scenario_name"):
        store.settings = dict(settings.value)

    def remember_settings():
        store.settings = dict(settings.value)

    solara.use_effect(remember_settings, [settings.value])

    solara.Title(f"{TITLE} · {m.scenario_name}")
    solara.Style(CSS)
    with solara.AppBar():
        solara.AppBarTitle(TITLE)
        solara.Text(f"{SUBTITLE} · {run_label(m)}", classes=["fourpl-subtitle"])
        ViewportWatch(event_viewport=on_viewport)

    with solara.Sidebar():
        with solara.Column(gap="8px"):
            RunPanel(model, settings, play_interval, render_interval)
            RunsPanel(store, m, settings, tick, include_live)
            Controls(settings, m)

    Dashboard(m, tab, store, tick.value, include_live.value)


def entries_for(model, store, include_live: bool, day: int) -> list[Entry]:
    """What the charts show: the live run (if shown) and the kept runs ticked."""
    out = []
    if include_live:
        out.append(Entry(run_from_model(model, key=f"live-{id(model)}-{day}", label=f"live: {run_label(model)}")))
    return out + store.chosen()


@solara.component
def Dashboard(model, tab: solara.Reactive, store=None, tick: int = 0, include_live: bool = True):
    """The main area: headline figures and the tabs (only the open tab is rendered).

    The one subscriber to Mesa's update counter: each step re-renders this, and so the open
    tab, in a single pass.
    """
    update_counter.get()
    day = int(model.steps)  # a prop that changes each step: the components re-render with it
    store = store if store is not None else run_store.RunStore()
    entries = solara.use_memo(lambda: entries_for(model, store, include_live, day),
                              dependencies=[id(model), day, tick, include_live, store.version])
    stamp = day * 100_000 + store.version
    with solara.Column(classes=["fourpl-main"], gap="0px"):
        KpiStrip(model, day=day)
        with solara.lab.Tabs(value=tab, lazy=True):
            with solara.lab.Tab(TABS[0]):
                with solara.Column(gap="12px"):
                    MapCard(model, day=day)
                    ChartGrid(entries, OVERVIEW_CHARTS, day=stamp)
            with solara.lab.Tab(TABS[1]):
                ChartGrid(entries, day=stamp)
            with solara.lab.Tab(TABS[2]):
                Explorer(entries, day=stamp)
            with solara.lab.Tab(TABS[3]):
                with solara.Column(gap="12px", classes=["fourpl-compare"]):
                    if len(entries) < 2:
                        solara.Info("Tick two or more runs in the sidebar's Runs card (keep the live run, or open "
                                    "a run or sweep folder) to overlay them here.")
                    DifferingParams(entries)
                    DifferenceView(entries, day=stamp)
                    ChartGrid(entries, COMPARE_CHARTS, day=stamp)
            with solara.lab.Tab(TABS[4]):
                ReplayView(store, version=store.version)
            with solara.lab.Tab(TABS[5]):
                CompositionView(model, day=day)
            with solara.lab.Tab(TABS[6]):
                MarketView(model, day=day)
            with solara.lab.Tab(TABS[7]):
                AgentInspector(model, day=day)


page = Page()
