"""Chart export, the layout on a 1000 px screen and the parameters' tooltips, in headless
Chromium against the real app (viz/app.py, served for real, offline).

* Export: a chart's "Image (SVG)" button saves an SVG drawn by plotly.js whose lines are the
  chart's data (checked against the same chart's CSV download: one line per series, one point
  per day); the toolbar camera saves a PNG named after the chart, at twice the pixels shown.
* Layout at 1000x800: the sidebar starts closed and the app bar's ☰ opens and closes it; closed,
  the main area is at least 900 px wide; each chart is as wide as its card; on every tab no
  card is wider than the window and nothing sticks out of a card (a table may scroll inside
  its card).
* Tooltips: hovering a slider or a select shows its description, unit, range and source, read
  here from the schema (market/scenario.py), not from the app's own formatting.

Waits are on conditions in the page, never on the clock.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

pytest.importorskip("solara")
pytest.importorskip("plotly")

from viz.assets import REPO_ROOT  # noqa: E402

APP = REPO_ROOT / "viz" / "app.py"
TABS = ("Overview", "Charts", "Breakdowns", "Compare", "Composition", "Market", "Agents")
SVG_NS = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAV_ICON = "header .v-app-bar__nav-icon"
pytestmark = pytest.mark.browser

# Every card of the open tab: its problems (none: it fits). A card must not reach past the
# window, must not be wider inside than it shows (its overflow: hidden would cut content off),
# and no element in it may reach past its edges, except inside a scrolling box in the card
# (a table with overflow-x: auto is fine: the user scrolls it).
CARD_PROBLEMS = """() => {
    const vw = document.documentElement.clientWidth;
    const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    const tab = document.querySelector('.fourpl-main .v-window-item--active');
    const out = [];
    for (const card of tab.querySelectorAll('.v-card')) {
        const cr = card.getBoundingClientRect();
        if (cr.width === 0 || cr.height === 0) continue;
        const name = (card.className.match(/fourpl-[\\w-]+/g) || [card.className]).join(' ');
        const probs = [];
        if (cr.left < -1 || cr.right > vw + 1) probs.push(`card spans [${cr.left}, ${cr.right}], window ${vw}`);
        if (card.scrollWidth > vw) probs.push(`scrollWidth ${card.scrollWidth} > window ${vw}`);
        if (card.scrollWidth > card.clientWidth + 1) probs.push(`content ${card.scrollWidth} px wide in ${card.clientWidth}`);
        for (const el of card.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            let left = r.left, right = r.right;
            for (let a = el.parentElement; a && a !== card; a = a.parentElement) {
                if (scrolls(a)) {
                    const ar = a.getBoundingClientRect();
                    left = Math.max(left, ar.left);
                    right = Math.min(right, ar.right);
                }
            }
            if (right > left && (right > cr.right + 1 || left < cr.left - 1)) {
                probs.push(`<${el.tagName.toLowerCase()} class="${el.getAttribute('class') || ''}"> spans `
                           + `[${left.toFixed(0)}, ${right.toFixed(0)}], card [${cr.left.toFixed(0)}, ${cr.right.toFixed(0)}]`);
                if (probs.length > 5) break;
            }
        }
        if (probs.length) out.push(name + ': ' + probs.join('; '));
    }
    return out;
}"""

# the open tab has finished sliding in, and every chart on it is drawn as wide as its box
TAB_SETTLED = """() => {
    const tab = document.querySelector('.fourpl-main .v-window-item--active');
    if (!tab || /transition/.test(tab.className)) return false;
    if (document.querySelector('.fourpl-main .v-window-item[class*="transition"]')) return false;
    const plots = Array.from(tab.querySelectorAll('.js-plotly-plot')).filter(g => g.offsetParent !== null);
    return plots.every(g => g._fullLayout && Math.abs(g._fullLayout.width - g.clientWidth) <= 1);
}"""


def _ready(page):
    page.locator(".fourpl-map .js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=120_000)


def _drawn(page, css: str) -> str:
    sel = f"{css} .js-plotly-plot"
    page.locator(sel).first.wait_for(state="visible")
    page.wait_for_function(f"() => {{ const g = document.querySelector('{sel}'); "
                           "return g && g._fullLayout && Array.isArray(g.data) && g.data.length > 0; }")
    return sel


def _no_problems(probe, server, since=0):
    assert not probe.unexpected_console_errors, f"console errors:\n{probe.problems()}"
    assert not probe.unexpected_page_errors, f"uncaught page errors:\n{probe.problems()}"
    assert not probe.external_requests, f"the page reached for the internet:\n{probe.problems()}"
    server.assert_no_errors(since)


def _line_points(d: str) -> int:
    """The points of an SVG path made of M and L commands (plotly's line of a scatter trace)."""
    return sum(ch in "ML" for ch in d)


def test_a_chart_saves_as_svg_and_png(solara_app_server, viz_page, tmp_path):
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()
    probe, page = viz_page, viz_page.page
    page.goto(server.url, wait_until="domcontentloaded")
    _ready(page)
    step = page.get_by_role("button", name="Step", exact=True)
    for i in (1, 2, 3, 4):
        step.click()
        expect(page.locator(".fourpl-day-counter")).to_have_text(f"Day {i}")
    card = ".fourpl-chart-parcels"
    sel = _drawn(page, card)
    page.wait_for_function(f"() => document.querySelector('{sel}').data.every(t => t.y && t.y.length === 4)")

    # the chart's data, as the server has it: its CSV
    with page.expect_download() as dl:
        page.locator(f"{card} .fourpl-csv button").click()
    csv = tmp_path / "parcels.csv"
    dl.value.save_as(csv)
    table = pd.read_csv(csv)
    points = table.groupby("column").size()
    assert len(points) >= 2 and (points == 4).all(), points

    # SVG: one line per series of the CSV (its four days); the legend names them; the size shown
    shown = page.locator(f"{sel} .main-svg").first.bounding_box()
    with page.expect_download() as dl:
        page.locator(f"{card} .fourpl-svg").click()
    assert dl.value.suggested_filename == "parcels.svg"
    path = tmp_path / "parcels.svg"
    dl.value.save_as(path)
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg", root.tag
    assert (float(root.get("width")), float(root.get("height"))) == (round(shown["width"]), round(shown["height"]))
    layers = [g for g in root.iter(f"{SVG_NS}g") if "scatterlayer" in (g.get("class") or "").split()]
    assert len(layers) == 1
    lines = [p for p in layers[0].iter(f"{SVG_NS}path") if "js-line" in (p.get("class") or "").split()]
    assert len(lines) == len(points), f"{len(lines)} lines in the SVG, {len(points)} series in the CSV"
    # (plotly drops the middle points of a straight run: a flat series may be a 2-point line)
    assert all(2 <= _line_points(p.get("d")) <= 4 for p in lines), [p.get("d") for p in lines]
    legend = [t.text for t in root.iter(f"{SVG_NS}text") if "legendtext" in (t.get("class") or "").split()]
    assert sorted(legend) == sorted(page.evaluate(f"() => document.querySelector('{sel}').data.map(t => t.name)"))
    assert "Parcels delivered" in legend

    # PNG from the toolbar's camera: named after the chart, twice the pixels shown
    page.locator(sel).hover()
    camera = page.locator(f'{sel} .modebar-btn[data-title="Download plot as a PNG"]')
    with page.expect_download() as dl:
        camera.click()
    assert dl.value.suggested_filename == "parcels.png"
    png = tmp_path / "parcels.png"
    dl.value.save_as(png)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (round(2 * shown["width"]), round(2 * shown["height"])), (width, height, shown)
    # no button that uploads the chart to Plotly's cloud, no Plotly logo
    assert page.locator(f'{sel} .modebar-btn[data-title="Share chart..."]').count() == 0
    assert page.locator(f"{sel} .modebar-btn--logo").count() == 0

    # the map: its SVG holds its nodes' names, named after the day
    sel = _drawn(page, ".fourpl-map")
    with page.expect_download() as dl:
        page.locator(".fourpl-map .fourpl-svg").first.click()
    shown_date = pd.Timestamp(page.locator(".fourpl-kpi-day .fourpl-kpi-sub").inner_text().split("·")[0].strip())
    assert dl.value.suggested_filename == f"network-map-{shown_date.date()}.svg"
    path = tmp_path / "map.svg"
    dl.value.save_as(path)
    texts = {t.text for t in ET.parse(path).getroot().iter(f"{SVG_NS}text")}
    assert {"US consumers", "Russian consumers"} <= texts
    _no_problems(probe, server, log_mark)


def test_the_layout_at_1000_px(solara_app_server, viz_page):
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()
    probe, page = viz_page, viz_page.page
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto(server.url, wait_until="domcontentloaded")
    _ready(page)
    drawer = page.locator(".v-navigation-drawer")
    step = page.get_by_role("button", name="Step", exact=True)
    main_width = "() => document.querySelector('.fourpl-main').getBoundingClientRect().width"

    # a narrow window: the sidebar starts closed, the main area has the width
    closed, opened = re.compile(r"v-navigation-drawer--close\b"), re.compile(r"v-navigation-drawer--open\b")
    expect(drawer).to_have_class(closed)
    expect(step).not_to_be_in_viewport()
    assert page.evaluate(main_width) >= 900

    # ☰ opens it (a few days stepped for the tabs' tables), and closes it again
    page.locator(NAV_ICON).click()
    expect(drawer).to_have_class(opened)
    expect(step).to_be_in_viewport()
    for i in (1, 2):
        step.click()
        expect(page.locator(".fourpl-day-counter")).to_have_text(f"Day {i}")
    page.wait_for_function(f"() => ({main_width})() < 700")
    # the day's charts replace the empty ones (new plots, drawn at plotly's 700 px, then fitted)
    page.wait_for_function("() => ['.fourpl-chart-parcels', '.fourpl-chart-ontime'].every(c => "
                           "Array.from(document.querySelectorAll(c + ' .js-plotly-plot'))"
                           ".some(g => g._fullLayout && Array.isArray(g.data) && g.data.length > 0))")
    probe.wait_until_quiet()
    page.wait_for_function(TAB_SETTLED)  # the map and charts follow their narrower cards
    problems = page.evaluate(CARD_PROBLEMS)
    assert not problems, "with the sidebar open:\n" + "\n".join(problems)
    page.locator(NAV_ICON).click()
    expect(drawer).to_have_class(closed)
    page.wait_for_function(f"() => ({main_width})() >= 900")
    probe.wait_until_quiet()
    page.wait_for_function(TAB_SETTLED)  # and their wider ones

    # every tab: nothing wider than the window, nothing sticking out of its card
    for name in TABS:
        page.get_by_role("tab", name=name).click()
        expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
        page.locator(".fourpl-main .v-window-item--active .v-card").first.wait_for(state="visible")
        probe.wait_until_quiet()  # a tab's charts arrive a few at a time
        page.wait_for_function(TAB_SETTLED)
        problems = page.evaluate(CARD_PROBLEMS)
        probe.screenshot(f"1000-{name}")
        assert not problems, f"{name} tab at 1000x800:\n" + "\n".join(problems)
    # the Market tab's tables scroll inside their cards, if at all
    page.get_by_role("tab", name="Market").click()
    expect(page.locator(".fourpl-contracts table tbody tr").first).to_be_attached()
    _no_problems(probe, server, log_mark)


def _schema_field(key: str):
    from market.scenario import Scenario

    section, name = key.split(".")
    return Scenario.model_fields[section].annotation.model_fields[name]


def _bounds(field) -> dict:
    out = {}
    for m in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(m, attr, None) is not None:
                out[attr] = getattr(m, attr)
    return out


@pytest.mark.parametrize("key", ["demand.time_elasticity", "market.auction"])
def test_a_parameter_shows_its_schema_on_hover(solara_app_server, viz_page, key):
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()
    probe, page = viz_page, viz_page.page
    page.goto(server.url, wait_until="domcontentloaded")
    _ready(page)
    control = page.locator(".fourpl-param-" + key.replace(".", "-").replace("_", "-"))
    control.scroll_into_view_if_needed()
    control.hover()
    tip = page.locator(".fourpl-tooltip.menuable__content__active")
    expect(tip).to_be_visible()
    text = " ".join(tip.inner_text().split())

    field = _schema_field(key)
    extra = field.json_schema_extra or {}
    assert " ".join(field.description.split()) in text
    assert " ".join(str(extra.get("source", "")).split()) in text, text
    if extra.get("unit"):
        assert f"unit: {extra['unit']}" in text
    b = _bounds(field)
    if b:
        lo = f"[{b['ge']:g}" if "ge" in b else f"({b['gt']:g}"
        hi = f"{b['le']:g}]" if "le" in b else f"{b['lt']:g})"
        assert f"range: {lo}, {hi}" in text, text
    else:  # a choice: its options
        import typing

        for choice in typing.get_args(field.annotation):
            assert str(choice) in text
    # the tooltip goes when the mouse leaves, and the description stays in the page
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden()
    assert " ".join(field.description.split()) in " ".join(control.get_attribute("aria-description").split())
    _no_problems(probe, server, log_mark)
