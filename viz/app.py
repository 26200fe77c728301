"""The browser app: watch a 4PL marketplace run unfold, day by day.

Serve it with ``make app`` or ``fourpl app`` (http://127.0.0.1:8765), or
``solara run viz/app.py``. Built on Mesa's SolaraViz: its ``ModelController`` plays, pauses,
steps and resets the model, at the speed set in the sidebar; the components are the app's own
(``viz/components/``):

* **Overview**: the network map (today's flows, disruptions, closed crossings) and the two
  headline plots;
* **Time series**: parcels by channel, delivery times, on-time rate, contract and spot prices,
  integrator markups and shares, provider utilisation;
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

from viz.components.agent_inspector import AgentInspector
from viz.components.controls import Controls
from viz.components.kpis import KpiStrip
from viz.components.market_view import MarketView
from viz.components.network_map import NetworkMap
from viz.components.run_panel import RunPanel
from viz.components.time_series import TimeSeries
from viz.state import AppModel, default_settings, ui_params

TITLE = "4PL Marketplace"
SUBTITLE = "cross-border e-commerce logistics, simulated"
TABS = ("Overview", "Time series", "Market", "Agents")
OVERVIEW_CHARTS = ["parcels", "ontime"]

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
.fourpl-subtitle { color: rgba(255,255,255,.75); font-size: .85rem; margin-left: 12px; }
"""


def run_label(model) -> str:
    """'scenario baseline · seed 1 · Scale 1.2': what the running model was built with."""
    labels = {p.key: p.label for p in ui_params()}
    parts = [f"scenario {model.scenario_name}", f"seed {getattr(model, 'app_seed', '?')}"]
    for key, value in (getattr(model, "app_overrides", None) or {}).items():
        parts.append(f"{labels.get(key, key)} {value}")
    return " · ".join(parts)


@solara.component
def Page(model: solara.Reactive | None = None, settings: solara.Reactive | None = None):
    """The whole app: app bar, sidebar (run, scenario, parameters) and the tabs.

    ``model`` and ``settings`` (reactive variables) let a notebook or a benchmark hand the page
    its own model; by default each session builds the baseline with seed 1.
    """
    initial_settings = solara.use_memo(default_settings, [])
    settings = solara.use_reactive(settings if settings is not None else initial_settings)
    initial_model = solara.use_memo(lambda: None if model is not None else AppModel(**settings.value), [])
    model = solara.use_reactive(model if model is not None else initial_model)
    play_interval = solara.use_reactive(150)
    render_interval = solara.use_reactive(1)
    tab = solara.use_reactive(0)
    m = model.value

    solara.Title(f"{TITLE} · {m.scenario_name}")
    solara.Style(CSS)
    with solara.AppBar():
        solara.AppBarTitle(TITLE)
        solara.Text(f"{SUBTITLE} · {run_label(m)}", classes=["fourpl-subtitle"])

    with solara.Sidebar():
        with solara.Column(gap="8px"):
            RunPanel(model, settings, play_interval, render_interval)
            Controls(settings, m)

    Dashboard(m, tab)


@solara.component
def Dashboard(model, tab: solara.Reactive):
    """The main area: headline figures and the tabs (only the open tab is rendered).

    The one subscriber to Mesa's update counter: each step re-renders this, and so the open
    tab, in a single pass.
    """
    update_counter.get()
    day = int(model.steps)  # a prop that changes each step: the components re-render with it
    with solara.Column(classes=["fourpl-main"], gap="0px"):
        KpiStrip(model, day=day)
        with solara.lab.Tabs(value=tab, lazy=True):
            with solara.lab.Tab(TABS[0]):
                with solara.Column(gap="12px"):
                    NetworkMap(model, day=day)
                    TimeSeries(model, OVERVIEW_CHARTS, day=day)
            with solara.lab.Tab(TABS[1]):
                TimeSeries(model, day=day)
            with solara.lab.Tab(TABS[2]):
                MarketView(model, day=day)
            with solara.lab.Tab(TABS[3]):
                AgentInspector(model, day=day)


page = Page()
