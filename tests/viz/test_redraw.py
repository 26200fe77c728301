"""Redrawing a step cheaply: the Plotly widgets are kept and sent only what changed.

A new FigureWidget ships plotly.js again (megabytes) and a whole figure is validated trace by
trace, so a step must update the existing widgets in place: :func:`viz.figures.apply_figure`
sends one update holding only the changed properties of the changed traces, and the map keeps
the same traces from day to day (its lanes in a fixed number of slots). Checked against the
figures' own values and the model's lanes, not against what the code sends.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("plotly")

import ipyvuetify as v  # noqa: E402
import solara  # noqa: E402
from plotly.graph_objs import FigureWidget  # noqa: E402

from viz import figures, style  # noqa: E402
from viz.components.network_map import layout_for, map_data  # noqa: E402
from viz.lanes import LANE_SLOTS, map_figure  # noqa: E402
from viz.state import AppModel  # noqa: E402

SMALL = {"merchants.exporters": 4, "merchants.importers": 2}


def _sent(w):
    """Record the update messages a widget sends (restyle, relayout, trace indexes)."""
    log = []
    real = w._send_update_msg

    def spy(restyle_data, relayout_data, trace_indexes=None, **kw):
        log.append((restyle_data, relayout_data, list(trace_indexes)))
        return real(restyle_data, relayout_data, trace_indexes=trace_indexes, **kw)

    w._send_update_msg = spy
    return log


def _fig(ys, title="t", shapes=()):
    return {"data": [dict(type="scatter", x=np.arange(len(y), dtype=float), y=np.asarray(y, float), name=f"s{i}",
                          line=dict(color="#123456", width=2)) for i, y in enumerate(ys)],
            "layout": dict(title=dict(text=title), shapes=list(shapes))}


def test_a_new_day_sends_only_what_changed_and_the_widget_holds_the_new_figure():
    w = FigureWidget()
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2], [5, 6]]))) == "new"
    log = _sent(w)
    # day 2: the second series grows a point; the first and the layout stay as they were
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2], [5, 6, 7]]))) == "update"
    [(restyle, relayout, traces)] = log
    assert traces == [1] and set(restyle) == {"x", "y"} and relayout == {}
    assert list(w.data[1].y) == [5, 6, 7] and list(w.data[0].y) == [1, 2]
    # the same figure again: nothing to send
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2], [5, 6, 7]]))) == "none"
    assert len(log) == 1
    # a marked day (a layout shape) and a new colour: only those
    mark = figures.day_shapes(3.0)
    f = _fig([[1, 2], [5, 6, 7]], shapes=mark)
    f["data"][0]["line"]["color"] = "#abcdef"
    figures.apply_figure(w, figures.figure_json(f))
    restyle, relayout, traces = log[-1]
    assert traces == [0] and set(restyle) == {"line.color"} and set(relayout) == {"shapes"}
    assert w.data[0].line.color == "#abcdef" and w.layout.shapes[0].x0 == 3.0
    # a property dropped from the figure is reset, not left behind
    f2 = _fig([[1, 2], [5, 6, 7]])
    del f2["layout"]["title"]
    figures.apply_figure(w, figures.figure_json(f2))
    assert log[-1][1] == {"title.text": None, "shapes": []}
    assert w.layout.title.text is None
    # other traces (a third series): the figure is replaced whole
    assert figures.apply_figure(w, figures.figure_json(_fig([[1], [2], [3]]))) == "new"
    assert len(w.data) == 3


def test_dates_travel_as_iso_days_and_plotly_base64_arrays_as_arrays():
    import plotly.graph_objects as go

    x = np.array(["2025-05-01", "2025-05-02"], dtype="datetime64[ns]")
    j = figures.figure_json(go.Figure(go.Scatter(x=x, y=np.array([1.5, 2.5]), customdata=np.ones((2, 3)))))
    t = j["data"][0]
    assert t["x"] == ["2025-05-01", "2025-05-02"]
    assert np.array_equal(t["y"], [1.5, 2.5]) and t["customdata"].shape == (2, 3)
    # a column of a 2-D array (the map's curves) goes out as a contiguous buffer: the kernel
    # cannot send a strided one, and drops the whole update
    pts = np.arange(12.0).reshape(6, 2)
    j = figures.figure_json({"data": [dict(type="scatter", x=pts[:, 0], y=pts[:, 1])], "layout": {}})
    assert all(j["data"][0][k].flags["C_CONTIGUOUS"] for k in ("x", "y"))
    assert list(j["data"][0]["x"]) == [0, 2, 4, 6, 8, 10]


@pytest.fixture(scope="module")
def stepped_maps():
    m = AppModel("baseline", 1, None, **SMALL)
    out = []
    for _ in range(6):
        m.step()
        out.append((map_data(m), map_figure(m)))
    return m, out


def test_the_map_has_the_same_traces_every_day_and_draws_every_lane_once(stepped_maps):
    m, days = stepped_maps
    shapes = {tuple((t["type"], t.get("name")) for t in fig["data"]) for _, fig in days}
    assert len(shapes) == 1, "the map's traces changed from one day to the next: a new widget each day"
    lay = layout_for(m.world)
    pos = set(lay.nodes)
    drawn = [i for i, ln in enumerate(m.world.lanes) if ln.u in pos and ln.v in pos]
    for data, fig in days:
        slots = fig["data"][:LANE_SLOTS]
        # each lane is one curve (16 points, then a gap) in one slot
        curves = sum(int(np.isnan(np.asarray(t["x"], float)).sum()) for t in slots)
        assert curves == len(drawn)
        # a lane with flow today is drawn in its mode's colour (red if disrupted), an idle one grey
        colours = {t["line"]["color"] for t in slots if len(t["x"])}
        flow = np.nan_to_num(data.flow)
        want = {style.DISRUPTED if data.disrupted[i] else style.mode_color(m.world.lanes[i].spec.mode)
                if flow[i] > 0 else style.IDLE for i in drawn}
        assert colours == want
        [marks] = [t for t in fig["data"] if t.get("name") == "lanes"]
        assert [c[1] for c in marks["customdata"]] == drawn
        busiest = drawn[int(np.argmax(flow[drawn]))]
        assert f"today: {flow[busiest]:,.0f}" in marks["text"][drawn.index(busiest)]


def test_a_click_on_the_map_picks_the_lane_or_node_under_it(stepped_maps):
    """plotly's click event (trace and point indexes) read against the map's own figure."""
    from viz.lanes import clicked_item

    m, days = stepped_maps
    _, fig = days[-1]
    names = [t.get("name") for t in fig["data"]]
    lanes = names.index("lanes")
    marks = fig["data"][lanes]["customdata"]
    assert clicked_item(fig, {"points": {"trace_indexes": [lanes], "point_indexes": [2]}}) == ("lane", int(marks[2][1]))
    node_trace = next(i for i, t in enumerate(fig["data"]) if len(t.get("customdata") or []) and t["customdata"][0][0] == "node")
    node = fig["data"][node_trace]["customdata"][0][1]
    assert node in m.world.graph.nodes
    assert clicked_item(fig, {"points": {"trace_indexes": [node_trace], "point_indexes": [0]}}) == ("node", node)
    # a click beside anything of ours (a lane curve carries no customdata) or a malformed event
    assert clicked_item(fig, {"points": {"trace_indexes": [0], "point_indexes": [0]}}) is None
    assert clicked_item(fig, {"points": {"trace_indexes": [], "point_indexes": []}}) is None
    assert clicked_item(fig, {}) is None


def test_a_step_on_the_page_keeps_the_plotly_widgets():
    """Step redraws the map and the overview's charts in the widgets already in the page."""
    from viz import app

    box, rc = solara.render(solara.AppLayout(children=[app.Page()]), handle_error=False)
    try:
        def plots():
            cards = [w for w in rc.find(v.Card).widgets
                     if {"fourpl-map", "fourpl-chart-parcels", "fourpl-chart-ontime"} & set((w.class_ or "").split())]
            return [x for c in cards for x in _walk(c) if isinstance(x, FigureWidget)]

        step = rc.find(v.Btn, children=["Step"]).widget
        for _ in range(2):  # day 1 has no deliveries: the on-time chart gets its line on day 2
            step.click()
        before = plots()
        ys = [repr([list(np.asarray(t.y, float)) for t in w.data if t.y is not None]) for w in before]
        for _ in range(2):
            step.click()
        after = plots()
        assert len(before) >= 3 and [id(w) for w in after] == [id(w) for w in before]
        assert [repr([list(np.asarray(t.y, float)) for t in w.data if t.y is not None]) for w in after] != ys
        model = app.current_store().model
        delivered = [float(x) for x in model.datacollector.model_vars["parcels_delivered"]]
        [card] = [w for w in rc.find(v.Card).widgets if "fourpl-chart-parcels" in (w.class_ or "").split()]
        [fig] = [w for w in after if any(w is x for x in _walk(card))]
        [line] = [t for t in fig.data if t.name == "Parcels delivered"]
        assert list(np.asarray(line.y, float)) == delivered and len(delivered) == 4
    finally:
        rc.close()


def _walk(widget):
    yield widget
    kids = list(getattr(widget, "children", None) or [])
    for slot in getattr(widget, "v_slots", None) or []:
        kids.append(slot.get("children"))
    for k in kids:
        if isinstance(k, list):
            for kk in k:
                yield from _walk(kk)
        elif k is not None and not isinstance(k, str):
            yield from _walk(k)


def test_a_plot_widget_is_born_with_its_figure_and_ignores_later_initial_values():
    """The browser builds the widget from its initial state (a figure sent by a message right
    after creation was lost when plotly.js loaded slowly, leaving a blank plot for good)."""
    spec = figures.figure_json(_fig([[1, 2, 3]]))
    w = figures.KeptFigure(initial=spec)
    assert [list(t["y"]) for t in w._widget_data] == [[1, 2, 3]]
    w.initial = figures.figure_json(_fig([[9], [9]]))  # what a re-render passes: ignored
    assert len(w.data) == 1
    assert figures.apply_figure(w, spec) == "none"



def test_a_plot_widget_opens_its_browser_model_with_the_figure_in_it(monkeypatch):
    """Plotly's FigureWidget opens its comm with an empty figure and sends the figure in a
    message after; a plot drawn before that message was applied stayed blank for good (the
    map, when plotly.js loaded slowly). The state the browser's model is created with must
    hold the figure."""
    import ipywidgets.widgets.widget as widget_module

    opened = []
    real = widget_module.comm.create_comm

    def spy(**kwargs):
        state = kwargs["data"]["state"]     # as the browser gets it: arrays as binary buffers
        widget_module._put_buffers(state, kwargs["data"]["buffer_paths"], kwargs["buffers"])
        opened.append(state)
        return real(**kwargs)

    def ys(trace):
        y = trace["y"]
        return np.frombuffer(y["buffer"], dtype=y["dtype"]).tolist() if isinstance(y, dict) else list(y)

    monkeypatch.setattr(widget_module.comm, "create_comm", spy)
    w = figures.KeptFigure(initial=figures.figure_json(_fig([[1, 2, 3], [4, 5]], title="day 0")))
    [state] = [s for s in opened if "_widget_data" in s]
    assert [ys(t) for t in state["_widget_data"]] == [[1, 2, 3], [4, 5]]
    assert state["_widget_layout"]["title"]["text"] == "day 0"
    assert w.comm is not None and len(opened) == 1     # opened once
    # later updates go as messages on that comm, as before
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2, 3, 4], [4, 5]], title="day 1"))) == "update"
    assert list(w.data[0].y) == [1, 2, 3, 4]



def test_until_the_browser_listens_each_update_also_sends_the_whole_figure():
    """anywidget drops a widget's messages while its module loads (2 s, then for good) and
    plotly's front end applies an update only once its bundle is in: a plot drawn afterwards
    showed the older figure (the map kept day 0 after three quick steps). Until plotly's
    model says it listens (figures.PLOTLY_MODULE), the widget's state, which a late plot is
    drawn from, follows every update; afterwards only the update messages go."""
    w = figures.KeptFigure(initial=figures.figure_json(_fig([[1, 2, 3]], title="day 0")))
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2, 3, 4]], title="day 1"))) == "update"
    assert [list(t["y"]) for t in w._widget_data] == [[1, 2, 3, 4]]
    assert w._widget_layout["title"]["text"] == "day 1"
    w._handle_custom_msg({"fourpl": "listening"}, [])     # what the browser sends
    log = _sent(w)
    assert figures.apply_figure(w, figures.figure_json(_fig([[1, 2, 3, 4, 5]], title="day 2"))) == "update"
    assert len(log) == 1 and list(w.data[0].y) == [1, 2, 3, 4, 5]
    assert [list(t["y"]) for t in w._widget_data] == [[1, 2, 3, 4]]   # no longer resent whole
    assert w._widget_layout["title"]["text"] == "day 1"


def test_the_plotly_module_is_one_shared_copy_of_plotlys_bundle(tmp_path):
    import json
    from pathlib import Path

    import plotly

    from viz import plotly_bundle

    esm = figures.KeptFigure._esm
    assert isinstance(esm, str) and len(esm) < 2000          # not the 5 MB bundle per widget
    name = esm.split("/static/public/")[1].split("'")[0]
    bundle = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_bytes()
    assert (plotly_bundle.PUBLIC_DIR / name).read_bytes() == bundle
    # what the page's custom.js reads to load the same file when it opens
    assert json.loads((plotly_bundle.PUBLIC_DIR / plotly_bundle.INDEX).read_text()) == {"bundle": name}
    # published into another folder: the same name, the same bytes; again: nothing changes
    assert plotly_bundle.publish(tmp_path) == name
    assert (tmp_path / name).read_bytes() == bundle
    stamp = (tmp_path / name).stat().st_mtime_ns
    assert plotly_bundle.publish(tmp_path) == name and (tmp_path / name).stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, plotly_bundle.INDEX])
    # a folder that cannot be written: None (each widget then carries the bundle)
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert plotly_bundle.publish(blocked / "public") is None
    assert "context.model.send({ fourpl: 'listening' })" in esm
