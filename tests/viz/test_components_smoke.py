"""Render the smoke SolaraViz page with ``solara.render`` (no server, no browser).

Fast checks that the page builds its widget tree, that the Step button advances the
model, and that the custom component and the matplotlib plot follow it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("solara")
pytest.importorskip("mesa.visualization")

import ipyvuetify as v  # noqa: E402
import ipywidgets as widgets  # noqa: E402
import solara  # noqa: E402
import solara.widgets  # noqa: E402

SMOKE_APP = Path(__file__).with_name("smoke_app.py")


@pytest.fixture
def smoke_app():
    """A fresh import of the smoke app (its module-level model is per import)."""
    name = "viz_smoke_app_under_test"
    spec = importlib.util.spec_from_file_location(name, SMOKE_APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def _render(smoke_app):
    # the server wraps a page in an AppLayout; without it SolaraViz's Sidebar (the
    # controls) has nowhere to go and is left out of the tree
    return solara.render(solara.AppLayout(children=[smoke_app.page]), handle_error=False)


def _texts(rc) -> list[str]:
    return [w.children[0] for w in rc.find(v.Html, tag="span").widgets if w.children and isinstance(w.children[0], str)]


def _counter_text(rc, smoke_app) -> str:
    counter = rc.find(v.Html, class_=smoke_app.COUNTER_CLASS)
    counter.assert_single()
    return counter.widget.children[0]


def _plot_png(rc) -> bytes:
    images = rc.find(widgets.Image, format="png")
    images.assert_single()  # the matplotlib plot (the space is drawn with altair)
    return bytes(images.widget.value)


def test_page_renders_sidebar_and_main_area(smoke_app):
    box, rc = _render(smoke_app)
    try:
        for label in ("Reset", "Step"):
            rc.find(v.Btn, children=[label]).assert_single()
        texts = _texts(rc)
        assert any(t.startswith("Time:") for t in texts), texts
        rc.find(solara.widgets.VegaLite).assert_single()  # the network space, drawn with altair
        assert _counter_text(rc, smoke_app) == f"{smoke_app.COUNTER_PREFIX} 0"
        assert _plot_png(rc).startswith(b"\x89PNG")
        rc.find(v.Slider).assert_not_empty()  # model parameters and controls
    finally:
        rc.close()


def test_step_button_advances_model_counter_and_plot(smoke_app):
    box, rc = _render(smoke_app)
    try:
        before_png = _plot_png(rc)
        step = rc.find(v.Btn, children=["Step"])
        for _ in range(3):
            step.widget.click()
        assert smoke_app.model.steps == 3  # module-level model instance driven by the page
        rc.find(v.Html, class_=smoke_app.COUNTER_CLASS).wait_for(timeout=5)
        assert _counter_text(rc, smoke_app) == f"{smoke_app.COUNTER_PREFIX} 3"
        assert "Time: 3.0" in _texts(rc)
        after_png = _plot_png(rc)
        assert after_png != before_png, "the matplotlib plot did not change after stepping"
    finally:
        rc.close()
