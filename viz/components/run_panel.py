"""Play, pause, step, reset and speed: Mesa's SolaraViz ``ModelController`` with its speed sliders.

Reset rebuilds the model as ``type(model)(**settings)`` (:class:`viz.state.AppModel`), so the
scenario, seed and sliders of the controls take effect there.
"""

from __future__ import annotations

import solara
from mesa.visualization.solara_viz import ModelController

from viz import style


@solara.component
def RunPanel(model: solara.Reactive, settings: solara.Reactive, play_interval: solara.Reactive,
             render_interval: solara.Reactive):
    """The run card of the sidebar."""
    m = model.value
    horizon = getattr(m, "horizon", None)
    with solara.Card("Run", classes=["fourpl-card", "fourpl-run"]):
        ModelController(model, model_parameters=settings, play_interval=play_interval,
                        render_interval=render_interval, use_threads=solara.use_reactive(False))
        with solara.Div(classes=["fourpl-play-interval"]):
            solara.SliderInt(f"Pause between days: {play_interval.value} ms", value=play_interval, min=0, max=1000,
                             step=10)
        with solara.Div(classes=["fourpl-days-per-step"]):
            solara.SliderInt(f"Days per step: {render_interval.value}", value=render_interval, min=1, max=30, step=1)
        solara.Text("Step advances 'days per step' and redraws; Play repeats it. "
                    + (f"The scenario ends after {horizon} days (Reset to run it again)." if horizon else ""),
                    style={"color": style.MUTED, "font-size": "0.8em"})
