"""The real app (viz/app.py) served for real and driven in headless Chromium, offline.

Loads the page, waits for the map and the plots, steps the model and checks the day counter
and a plot changed, moves a slider and resets (the model is rebuilt with the new value),
visits every tab, and checks nothing went wrong in the browser. Screenshots go to
test-artifacts/; with ``FOURPL_UPDATE_SCREENSHOT=1`` the overview is also copied to
docs/screenshot.png (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

pytest.importorskip("solara")

from viz.assets import REPO_ROOT  # noqa: E402

APP = REPO_ROOT / "viz" / "app.py"
DAY = ".fourpl-day-counter"
MAP = ".fourpl-map .js-plotly-plot"
PARCELS = ".fourpl-chart-parcels .js-plotly-plot"
LOADED = "img => img.complete && img.naturalWidth > 0"
STEPS = 3


def _day(page) -> int:
    text = page.locator(DAY).inner_text().strip()
    assert text.startswith("Day "), text
    return int(text.split()[1])


def _wait_loaded(page, selector: str) -> None:
    """An <img> drawn, or a Plotly plot drawn (its SVG layers in place)."""
    loc = page.locator(selector).first
    loc.wait_for(state="visible")
    page.wait_for_function(f"() => {{ const i = document.querySelector('{selector}'); "
                           "return i && (i.tagName === 'IMG' ? i.complete && i.naturalWidth > 0 "
                           ": !!i.querySelector('.main-svg') && Array.isArray(i.data)); }")


def _points(page, selector: str) -> list[int]:
    """How many points each trace of a Plotly plot has (what the browser holds now)."""
    return page.evaluate(f"() => Array.from(document.querySelector('{selector}').data || [])"
                         ".map(t => (t.y && t.y.length) || 0)")


def _png(page, selector: str, attempts: int = 5) -> bytes:
    """The element's pixels; retried, since Solara swaps the <img> when the plot is redrawn."""
    from playwright.sync_api import Error

    for attempt in range(attempts):
        try:
            _wait_loaded(page, selector)
            return page.locator(selector).first.screenshot()
        except Error as exc:
            if ("not attached" not in str(exc) and "detached" not in str(exc)) or attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def _wait_for_change(read, before, timeout: float = 30.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    current = read()
    while current == before and time.monotonic() < deadline:
        time.sleep(interval)
        current = read()
    return current


def _press_slider(page, css_class: str, key: str, times: int = 1) -> None:
    """Move a Vuetify slider with the keyboard, as a user can (arrows, Home, End)."""
    thumb = page.locator(f".{css_class} [role=slider]").first
    thumb.focus()
    for _ in range(times):
        thumb.press(key)
    thumb.blur()


@pytest.mark.browser
def test_app_renders_steps_resets_and_has_no_errors(solara_app_server, viz_page):
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()  # the server is shared: judge only what this test caused
    probe = viz_page
    page = probe.page
    page.goto(server.url, wait_until="domcontentloaded")

    # the sidebar: Mesa's controller, the scenario picker and the schema's sliders
    step = page.get_by_role("button", name="Step", exact=True)
    expect(step).to_be_visible(timeout=90_000)  # a cold server compiles the page first
    expect(page.get_by_role("button", name="Reset", exact=True)).to_be_visible()
    expect(page.locator(".fourpl-scenario-picker")).to_contain_text("baseline")
    expect(page.locator(".fourpl-param-demand-scale")).to_contain_text("Scale: 1.0")

    # the main area: the map and the overview's plots, drawn
    _wait_loaded(page, MAP)
    _wait_loaded(page, PARCELS)
    _wait_loaded(page, ".fourpl-chart-ontime .js-plotly-plot")
    expect(page.locator(".fourpl-map")).to_contain_text("lanes in use")
    probe.wait_until_quiet()
    probe.screenshot("loaded")
    assert _day(page) == 0
    # nothing was changed: no "Press Reset to run with ..." (sliders used to snap calibrated
    # values such as 0.0107 to their step and report the snapped value as a change)
    expect(page.locator(".fourpl-pending")).to_have_count(0)

    before_pts = _points(page, PARCELS)
    before_png = _png(page, PARCELS)
    before_map = _png(page, MAP)
    for i in range(1, STEPS + 1):
        step.click()
        expect(page.locator(DAY)).to_have_text(f"Day {i}")
    # each day's chart is a new plot: wait for the one holding the last day
    page.wait_for_function(f"() => {{ const g = document.querySelector('{PARCELS}'); "
                           f"return g && g.data && g.data.some(t => t.y && t.y.length === {STEPS}); }}")
    after_pts = _points(page, PARCELS)
    assert after_pts != before_pts and max(after_pts) == STEPS, f"the parcels plot has {after_pts} points"
    assert _wait_for_change(lambda: _png(page, PARCELS), before_png) != before_png, "the plot looks the same"
    assert _wait_for_change(lambda: _png(page, MAP), before_map) != before_map, "the map looks the same"
    probe.wait_until_quiet()
    probe.screenshot("stepped")

    # a slider, then Reset: the model is rebuilt with the new value, from day 0
    _press_slider(page, "fourpl-param-demand-scale", "ArrowRight", 2)
    expect(page.locator(".fourpl-param-demand-scale")).to_contain_text("Scale: 1.2")
    expect(page.locator(".fourpl-pending")).to_contain_text("Scale 1.2")
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(page.locator(DAY)).to_have_text("Day 0")
    expect(page.locator(".fourpl-subtitle")).to_contain_text("Scale 1.2")  # what the running model was built with
    expect(page.locator(".fourpl-pending")).to_have_count(0)

    # many days at once: "days per step" to its maximum, then one Step
    _press_slider(page, "fourpl-days-per-step", "End")
    expect(page.locator(".fourpl-days-per-step")).to_contain_text("Days per step: 30")
    step.click()
    expect(page.locator(DAY)).to_have_text("Day 30", timeout=120_000)

    # Play runs on by itself (30 days a redraw now); pause stops it
    page.get_by_role("button", name="▶").click()
    played = time.monotonic()
    page.wait_for_function(f"() => parseInt(document.querySelector('{DAY}').innerText.split(' ')[1]) >= 60",
                           timeout=120_000)
    step_time = time.monotonic() - played          # one 30-day step and its redraw, on this machine now
    page.get_by_role("button", name="❚❚").click()
    expect(page.get_by_role("button", name="▶")).to_be_visible()
    paused_at = _day(page)
    # the step in flight when Pause was clicked may still land (at most one more, of 30 days);
    # a model that kept running would land two or more in three steps' time. The window follows
    # the step time measured above (a fixed 2.5 s quiet period failed on a slow, busy machine:
    # the step in flight landed 3.5 s after Pause, 60 -> 90).
    seen, until = paused_at, time.monotonic() + max(10.0, 3 * step_time)
    while time.monotonic() < until:
        time.sleep(0.25)
        seen = max(seen, _day(page))
    assert seen <= paused_at + 30, f"the model kept running after Pause ({paused_at} -> {seen})"
    assert _day(page) == seen, "the model kept running after Pause"
    expect(step).to_be_enabled()
    _wait_loaded(page, MAP)
    _wait_loaded(page, PARCELS)
    probe.wait_until_quiet()
    page.set_viewport_size({"width": 1400, "height": 1250})
    probe.wait_until_quiet()
    overview = probe.screenshot("overview")
    assert overview.stat().st_size > 150_000, f"{overview} is suspiciously small (blank page?)"
    if os.environ.get("FOURPL_UPDATE_SCREENSHOT"):
        shutil.copyfile(overview, REPO_ROOT / "docs" / "screenshot.png")

    # every tab shows its content
    page.get_by_role("tab", name="Charts").click()
    for key in ("parcels", "lead", "ontime", "prices", "integrators", "utilisation"):
        _wait_loaded(page, f".fourpl-chart-{key} .js-plotly-plot")
    probe.wait_until_quiet()
    probe.screenshot("charts")
    page.get_by_role("tab", name="Market").click()
    expect(page.locator(".fourpl-tenders")).to_contain_text("Latest tenders: round of")
    expect(page.locator(".fourpl-contracts table tbody tr").first).to_be_visible()
    probe.wait_until_quiet()
    probe.screenshot("market")
    page.get_by_role("tab", name="Agents").click()
    _wait_loaded(page, "img.fourpl-agent-img")
    expect(page.locator(".fourpl-inspector")).to_contain_text("Profit and loss")
    probe.wait_until_quiet()
    probe.screenshot("agents")

    probe.wait_for_cdn_idle()
    assert not probe.cdn_failures, f"/_solara/cdn/ requests failed:\n{probe.problems()}"
    assert not probe.unexpected_console_errors, f"console errors:\n{probe.problems()}"
    assert not probe.unexpected_page_errors, f"uncaught page errors:\n{probe.problems()}"
    assert not probe.failed_requests, f"failed requests:\n{probe.problems()}"
    assert not probe.external_requests, f"the page reached for the internet:\n{probe.problems()}"
    misses = server.cdn_misses()
    assert not misses, f"assets missing from the cache (see {server.log_path}):\n" + "\n".join(misses)
    server.assert_no_errors(since=log_mark)


# the plot's traces as drawn, without plotly's generated ids, the mark its widget leaves on
# traces it restyled, and unset (null) properties
_DRAWN = ("sel => JSON.stringify(Array.from(document.querySelector(sel).data || []), "
          "(k, v) => (k === 'uid' || k === '_doNotReportToPy' || v === null ? undefined : v))")


@pytest.mark.browser
def test_a_map_drawn_after_quick_steps_shows_the_day_it_is_drawn_on(solara_app_server, viz_page):
    """Plotly's front-end module held back while the model steps three days: the map, drawn
    once it arrives, shows day 3 as a page that loaded normally does (not day 0: update
    messages that reach plotly before it listens are dropped by plotly's front end)."""
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()
    probe = viz_page
    page = probe.page
    held = []
    page.route("**/static/public/plotly-widget-*.js", lambda route: held.append(route))   # answered later
    index_asked = []   # by assets/custom.js when the page opens, to start loading the bundle early
    page.on("request", lambda request: index_asked.append(request.url) if request.url.endswith("/plotly-widget.json") else None)
    page.goto(server.url, wait_until="domcontentloaded")
    step = page.get_by_role("button", name="Step", exact=True)
    expect(step).to_be_visible(timeout=90_000)
    expect(page.locator(".fourpl-map")).to_contain_text("lanes in use")
    for i in range(1, STEPS + 1):
        step.click()
        expect(page.locator(DAY)).to_have_text(f"Day {i}")
    # asked for once (the page's custom.js and every chart import the same address)
    assert len(held) == 1, f"the page asked for the shared plotly bundle {len(held)} times"
    assert len(index_asked) == 1, "the page's custom.js did not look up the bundle when it opened"
    assert page.locator(MAP).count() == 0, "the map was drawn without plotly's module"
    for route in held:
        route.continue_()
    _wait_loaded(page, MAP)
    late = _wait_for_change(lambda: page.evaluate(_DRAWN, MAP), "[]")   # its traces, once drawn

    # the reference: a page of another browser session (same scenario and seed), drawn, then
    # stepped (a page of the same session would show the same model, already at day 3)
    other = page.context.browser.new_context(viewport=page.viewport_size)
    reference = other.new_page()
    reference.goto(server.url, wait_until="domcontentloaded")
    _wait_loaded(reference, MAP)
    day0 = reference.evaluate(_DRAWN, MAP)
    assert late != day0, "the map drawn late shows day 0"
    ref_step = reference.get_by_role("button", name="Step", exact=True)
    for i in range(1, STEPS + 1):
        ref_step.click()
        expect(reference.locator(DAY)).to_have_text(f"Day {i}")
    # its last update may still be on its way
    drawn, deadline = reference.evaluate(_DRAWN, MAP), time.monotonic() + 30
    while drawn != late and time.monotonic() < deadline:
        time.sleep(0.25)
        drawn = reference.evaluate(_DRAWN, MAP)
    assert drawn == late, "the map drawn late does not show the day it was drawn on"
    other.close()
    assert not probe.unexpected_page_errors, f"uncaught page errors:\n{probe.problems()}"
    server.assert_no_errors(since=log_mark)


# Makes each of the page's first two widget modules take 2.5 s to load: URL.createObjectURL is
# how anywidget turns a widget's module text into an address to import; a busy wait there holds
# the page as evaluating a big bundle or drawing many charts does on a loaded machine.
_SLOW_MODULES = """
(() => {
  const make = URL.createObjectURL.bind(URL);
  let slow = 2;
  URL.createObjectURL = (blob) => {
    if (slow > 0 && blob && /javascript/.test(blob.type || '')) {
      slow -= 1;
      const until = performance.now() + 2500;
      while (performance.now() < until) {}
    }
    return make(blob);
  };
})();
"""


@pytest.mark.browser
def test_charts_whose_module_loads_slowly_still_take_their_updates(solara_app_server, viz_page):
    """anywidget gives a widget's module 2 s to load and initialize, then drops every message
    to that widget for good ('[anywidget] Failed to initialize model.'): on a loaded machine the
    map and charts then stayed at the day they were first drawn. With the first two modules
    held 2.5 s each, the map still follows the steps and the page logs no error."""
    from playwright.sync_api import expect

    server = solara_app_server(APP)
    log_mark = server.mark()
    probe = viz_page
    page = probe.page
    page.add_init_script(_SLOW_MODULES)
    page.goto(server.url, wait_until="domcontentloaded")
    step = page.get_by_role("button", name="Step", exact=True)
    expect(step).to_be_visible(timeout=90_000)
    _wait_loaded(page, MAP)
    day0 = page.evaluate(_DRAWN, MAP)
    parcels0 = _points(page, PARCELS)
    for i in range(1, STEPS + 1):
        step.click()
        expect(page.locator(DAY)).to_have_text(f"Day {i}")
    assert _wait_for_change(lambda: page.evaluate(_DRAWN, MAP), day0) != day0, \
        "the map stayed at day 0: its widget's messages were dropped"
    assert _wait_for_change(lambda: _points(page, PARCELS), parcels0) != parcels0, \
        "the parcels chart stayed at day 0: its widget's messages were dropped"
    assert not probe.unexpected_page_errors, f"uncaught page errors:\n{probe.problems()}"
    server.assert_no_errors(since=log_mark)
