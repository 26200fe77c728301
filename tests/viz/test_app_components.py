"""The app's components rendered with ``solara.render`` (no server, no browser).

Every component renders for every built-in scenario (on a small market, a few days in); the
controls change the model (a slider, the seed, the scenario picker, then Reset); Step
advances the page's day counter and redraws the map.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("solara")

import ipyvuetify as v  # noqa: E402
import ipywidgets as widgets  # noqa: E402
import solara  # noqa: E402
from solara.components.datatable import DataTableWidget  # noqa: E402

from market.scenario import builtin_scenarios  # noqa: E402
from viz.components.agent_inspector import AgentInspector  # noqa: E402
from viz.components.controls import Controls, param_class  # noqa: E402
from viz.components.kpis import DAY_CLASS, KpiStrip  # noqa: E402
from viz.components.market_view import MarketView  # noqa: E402
from viz.components.network_map import IMG_CLASS as MAP_IMG  # noqa: E402
from viz.components.network_map import NetworkMap, map_caption, map_data  # noqa: E402
from viz.components.run_panel import RunPanel  # noqa: E402
from viz.components.time_series import TimeSeries  # noqa: E402
from plotly.graph_objs import FigureWidget  # noqa: E402
from viz.state import ROLES, AppModel, agents_of, default_settings  # noqa: E402

SMALL = {"merchants.exporters": 4, "merchants.importers": 2}
DAYS = 3
PNG = b"\x89PNG"


def small_model(name: str, days: int = DAYS, **extra) -> AppModel:
    m = AppModel(name, 1, None, **SMALL, **extra)
    for _ in range(days):
        m.step()
    return m


@pytest.fixture(scope="module")
def models():
    return {name: small_model(name) for name in builtin_scenarios()}


def render(element):
    box, rc = solara.render(element, handle_error=False)
    rc.box = box
    return rc


def walk(widget):
    """Every widget under ``widget`` (children, and the widgets in vuetify slots)."""
    yield widget
    kids = list(getattr(widget, "children", None) or [])
    for slot in getattr(widget, "v_slots", None) or []:
        kids.append(slot.get("children"))
    for kid in kids:
        if isinstance(kid, widgets.Widget):
            yield from walk(kid)


def images(rc, cls: str | None = None) -> list[bytes]:
    found = rc.find(widgets.Image).widgets
    return [bytes(w.value) for w in found if cls is None or cls in w._dom_classes]


def texts(rc) -> list[str]:
    return [w.children[0] for w in walk(rc.box) if isinstance(w, v.Html) and w.children
            and isinstance(w.children[0], str)]


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_component_renders_for_every_scenario(models, name):
    m = models[name]
    rc = render(NetworkMap(m))
    try:
        [png] = images(rc, MAP_IMG)
        assert png.startswith(PNG) and len(png) > 20_000
    finally:
        rc.close()

    rc = render(TimeSeries(m))
    try:
        pngs = images(rc)
        assert len(pngs) == 6 and all(p.startswith(PNG) for p in pngs)
    finally:
        rc.close()

    rc = render(KpiStrip(m))
    try:
        assert f"Day {DAYS}" in texts(rc)
    finally:
        rc.close()

    rc = render(MarketView(m))
    try:
        def tables_in(cls):
            return [w for card in rc.find(v.Card).widgets if cls in (card.class_ or "").split()
                    for w in walk(card) if isinstance(w, DataTableWidget)]

        if len(m.contracts.frame()):
            tables = tables_in("fourpl-tenders") + tables_in("fourpl-contracts")
            assert len(tables) == 2, "a scenario with contracts shows the tenders and the contracts"
            assert all(t.total_length > 0 for t in tables)
        if m.config.currency.enabled:  # the day's exchange rates, one row per currency other than the USD
            [rates] = tables_in("fourpl-currencies")
            assert rates.total_length == len(m.rates.names) - 1
    finally:
        rc.close()

    rc = render(AgentInspector(m))
    try:
        [png] = images(rc, "fourpl-agent-img")
        assert png.startswith(PNG)
    finally:
        rc.close()


def test_disruptions_and_closed_crossings_reach_the_map():
    m = small_model("ru-border-closure", days=0)
    start = m.config.shocks[0].start
    days = (start - m.config.simulation.start_date).days + 1
    for _ in range(days):
        m.step()
    data = map_data(m)
    assert data.disrupted.any()
    assert data.shocks  # the banner's text
    assert "suifenhe" in data.closed_nodes or "pogranichny" in data.closed_nodes


def test_the_inspector_shows_every_kind_of_agent(models):
    m = models["4pl-competition"]
    rc = render(AgentInspector(m))
    try:
        kind = rc.find(v.Select, label="Kind of agent")
        kind.assert_single()
        for role in ROLES:
            label = {"merchant": "Merchant", "carrier": "Carrier (3PL)", "warehouse_operator": "Warehouse operator",
                     "customs_agent": "Customs broker", "integrator": "4PL integrator"}[role]
            kind.widget.v_model = label
            first = agents_of(m, role)[0].name
            rc.find(v.Select, label="Agent", v_model=first).wait_for(timeout=5)
            rc.find(v.CardTitle, children=[f"{first} over time"]).wait_for(timeout=5)
    finally:
        rc.close()


# ---------------------------------------------------------------- controls change the model


class Harness:
    """The sidebar's run panel and controls around reactive settings and model."""

    def __init__(self, scenario="baseline"):
        self.settings = solara.Reactive(default_settings(scenario))
        self.settings.value = {**self.settings.value,
                               "values": {**self.settings.value["values"], "merchants.exporters": 4}}
        self.model = solara.Reactive(AppModel(**self.settings.value))
        harness = self

        @solara.component
        def Sidebar():
            RunPanel(harness.model, harness.settings, solara.use_reactive(0), solara.use_reactive(1))
            Controls(harness.settings, harness.model.value)

        self.rc = render(Sidebar())

    def reset(self):
        self.rc.find(v.Btn, children=["Reset"]).widget.click()

    def slider(self, key: str):
        box = self.rc.find(v.Html, class_=f"fourpl-param {param_class(key)}")
        box.assert_single()
        return box.find(v.Slider).widget

    def pending(self) -> list[str]:
        return [t for t in texts(self.rc) if t.startswith("Press Reset")]


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.rc.close()


def test_a_slider_changes_the_model_on_reset(harness):
    m0 = harness.model.value
    assert m0.config.demand.scale == 1.0
    harness.slider("demand.scale").v_model = 1.7
    assert harness.settings.value["values"]["demand.scale"] == 1.7
    assert harness.model.value is m0  # nothing happens until Reset
    assert harness.rc.find(v.Alert).widgets, "a note says Reset will apply the change"
    harness.reset()
    m1 = harness.model.value
    assert m1 is not m0 and m1.steps == 0
    assert m1.config.demand.scale == 1.7
    assert m1.app_overrides["demand.scale"] == 1.7
    assert len(m1.merchants) == 4 + m1.config.merchants.importers


def test_an_integer_slider_and_the_seed(harness):
    harness.slider("merchants.exporters").v_model = 3
    seed = harness.rc.find(v.TextField, label="Seed")
    seed.assert_single()
    seed.widget.v_model = "7"
    seed.widget.fire_event("focusout", None)  # InputInt commits on focus out or enter
    harness.reset()
    m = harness.model.value
    assert m.config.merchants.exporters == 3
    assert m.app_seed == 7


def test_the_scenario_picker_moves_the_sliders_and_rebuilds_the_model(harness):
    picker = harness.rc.find(v.Select, label="Scenario")
    picker.assert_single()
    picker.widget.v_model = "4pl-competition"
    s = harness.settings.value
    assert s["scenario_name"] == "4pl-competition"
    assert s["values"]["integrators.count"] == 3  # the slider shows the scenario's own value
    count = harness.slider("integrators.count")
    assert count.v_model == 3
    harness.slider("merchants.exporters").v_model = 4
    harness.reset()
    m = harness.model.value
    assert m.scenario_name == "4pl-competition"
    assert len(m.integrators) == 3
    assert m.app_overrides == {"merchants.exporters": 4}


def test_the_page_steps_and_redraws():
    """The project's page (viz/app.py): the sidebar holds the run controls, the scenario picker
    and the schema's sliders; the main area the day counter, the map and the overview's plots;
    Step advances the page's own model and redraws the map and the plots; Reset starts over."""
    from viz import app
    from viz.state import ui_params

    rc = render(solara.AppLayout(children=[app.Page()]))
    try:
        def day():
            return rc.find(v.Html, class_=DAY_CLASS).widget.children[0]

        def figure(card_class):
            """The Plotly figure widget inside the card of that class."""
            [card] = [w for w in rc.find(v.Card).widgets if card_class in (w.class_ or "").split()]
            [fig] = [w for w in walk(card) if isinstance(w, FigureWidget)]
            return fig

        def map_png():  # what the map draws: its traces' points and colours
            f = figure("fourpl-map")
            return repr([(list(t.x if t.x is not None else ()), t.line.color, t.line.width) for t in f.data])

        def chart(key):
            f = figure(f"fourpl-chart-{key}")
            return {t.name: list(np.asarray(t.y, dtype=float)) for t in f.data if t.y is not None}

        rc.find(v.Select, label="Scenario").assert_single()
        assert rc.find(v.Select, label="Scenario").widget.v_model == "baseline"
        n_sliders = sum(p.kind in ("int", "float") for p in ui_params())
        assert len(rc.find(v.Slider).widgets) >= n_sliders > 5
        for tab in app.TABS:
            rc.find(v.Tab, children=[tab]).assert_single()
        assert day() == "Day 0"
        before = map_png(), chart("parcels"), chart("ontime")
        step = rc.find(v.Btn, children=["Step"])
        step.assert_single()
        for _ in range(2):
            step.widget.click()
        assert day() == "Day 2"
        after = map_png(), chart("parcels"), chart("ontime")
        assert after[0] != before[0] and after[1] != before[1]
        # the chart draws the model's own daily record: delivered a day, days 1 and 2
        model = app.current_store().model
        delivered = [float(x) for x in model.datacollector.model_vars["parcels_delivered"]]
        assert after[1]["Parcels delivered"] == delivered and len(delivered) == 2
        for name in ("Reset", "▶"):
            rc.find(v.Btn, children=[name]).assert_single()
        rc.find(v.Btn, children=["Reset"]).widget.click()
        assert day() == "Day 0"
    finally:
        rc.close()



@pytest.mark.parametrize("kind", ["transit", "risk"])
def test_slowed_or_riskier_lanes_are_marked_disrupted_on_the_map(kind):
    """Not only capacity cuts: lanes a shock slows down or makes riskier are marked too."""
    shock = {"name": f"{kind} on the sea", "kind": kind, "day": 2, "days": 5, "modes": ["sea"], "factor": 2.0}
    m = small_model("baseline", days=0, shocks=[shock])
    sea = np.array([ln.spec.mode == "sea" for ln in m.world.lanes])
    assert not map_data(m).disrupted.any()
    for _ in range(3):
        m.step()
    data = map_data(m)
    assert (data.disrupted == sea).all()
    assert f"{sea.sum()} lanes disrupted" in map_caption(m, data)
    for _ in range(5):
        m.step()
    assert not map_data(m).disrupted.any()


def test_a_chart_grid_draws_its_first_charts_then_the_rest_in_later_renders():
    """The Charts tab's grid opens with its first few charts and draws the others in renders of
    their own (so one kernel message never holds the whole tab); in the end every chart of the
    run is there, in order, and none twice."""
    import threading
    import time

    from viz.components import analysis
    from viz.runs import run_from_model
    from viz.store import Entry

    run = run_from_model(small_model("baseline", days=6), key="grid", label="grid")
    want = [c.key for c in analysis.HEADLINE if analysis._columns_of(run, c)]
    assert len(want) > analysis.FIRST_CHARTS + analysis.MORE_CHARTS  # more than two batches

    def drawn(rc):
        return [c for w in rc.find(v.Card).widgets for c in (w.class_ or "").split()
                if c.startswith("fourpl-chart-")]

    box, rc = solara.render(analysis.ChartGrid([Entry(run)]), handle_error=False)
    try:
        first = drawn(rc)
        assert first == [f"fourpl-chart-{k}" for k in want[:analysis.FIRST_CHARTS]]
        deadline = time.monotonic() + 120  # not a speed limit: a hang guard
        while len(drawn(rc)) < len(want) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drawn(rc) == [f"fourpl-chart-{k}" for k in want]
        for t in [t for t in threading.enumerate() if t.name == "fourpl-more-charts"]:
            t.join(timeout=60)  # the last batch's thread ends after its render
        assert drawn(rc) == [f"fourpl-chart-{k}" for k in want]  # and asked for nothing more
    finally:
        rc.close()
