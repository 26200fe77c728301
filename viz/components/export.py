"""A chart with its export row: the figure, an "Image (SVG)" button, and the caller's buttons
(a "Data (CSV)" download).

Both images are drawn in the browser by plotly.js (no server-side renderer): the toolbar's
camera saves a PNG (``viz.figures.CONFIG``: twice the pixels shown, named after the chart), the
SVG button calls ``Plotly.downloadImage(plot, {format: 'svg'})`` on the chart beside it
(``figure_tools.vue``, which also keeps the chart as wide as its card). Every interactive chart
of the app is shown through :func:`ChartFigure`.
"""

from __future__ import annotations

import solara

from viz import figures


@solara.component_vue("figure_tools.vue")
def FigureTools(filename: str, label: str = "Image (SVG)"):
    """A button saving the chart in the same ``.fourpl-figure`` as ``filename``.svg; names its
    PNG; keeps it as wide as its box."""


@solara.component
def ChartFigure(fig, name: str, version=None, on_click=None, children=[]):
    """A Plotly figure (:func:`viz.figures.PlotlyFigure`) and its export row under it: the SVG
    button, then ``children`` (e.g. a CSV download). ``name`` names the image files."""
    stem = figures.file_stem(name)
    with solara.Div(classes=["fourpl-figure"]):
        figures.PlotlyFigure(fig, on_click=on_click, version=version, name=stem)
        with solara.Row(justify="end", classes=["fourpl-chart-actions", "fourpl-wrap"]):
            FigureTools(filename=stem)
            for child in children:
                solara.display(child)
